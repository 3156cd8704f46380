"""Label-free thresholds as objects: ``Auto().fit(calibration).predict(scores)``.

A rule is calibrated on scores of normal data (a fitted detector's ``calibration_scores_``) and
then judges new scores. The streaming rules (``Auto``, ``Spot``, ``Dspot``) learn along the
stream: successive ``predict`` calls continue it, so a stream judged in parts gets the
thresholds and alarms of one pass (as ``vigil detect --state`` does). ``PotBatch`` and ``Ndt``
judge each batch of scores on its own and need no calibration. Parameters are keywords over the
rule's defaults (``Spot(q=1e-3)``); an unknown one raises ``ValueError`` naming those it has.
The rules themselves are described in docs/thresholds.md.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Optional

import numpy as np

from . import _arrays, _native


class Threshold:
    """A label-free threshold rule (use one of the subclasses, or ``by_name``)."""

    name: str = ""

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        # Built now, so that a bad parameter fails here rather than at the first predict.
        self._rule = self._native_rule()
        # A rule is one stream's state: calls from several threads are taken one at a time.
        self._lock = threading.Lock()
        self._calibration: Optional[np.ndarray] = None
        self.thresholds_: Optional[np.ndarray] = None
        self.choice_: Optional[dict[str, Any]] = None

    def fit(self, calibration: Any) -> "Threshold":
        """Calibrates on ``calibration`` (scores of normal data) and starts a new stream."""
        # A copy: the rule (and its pickle) must not change when the caller's array does.
        calibration = np.array(_arrays.values(calibration, "calibration"), copy=True)
        with self._lock:
            self._rule.fit(calibration)
        self._calibration = calibration
        self.thresholds_ = None
        self.choice_ = None
        return self

    def predict(self, scores: Any) -> np.ndarray:
        """1 where each of the next ``scores`` reaches the threshold in force, else 0; the
        thresholds are kept in ``thresholds_`` and, under ``Auto``, what it chose (and why) in
        ``choice_``."""
        with self._lock:
            (thresholds, alarms), choice = self._rule.predict(_arrays.values(scores, "scores"))
        self.thresholds_ = thresholds
        if choice is not None:
            self.choice_ = json.loads(choice)
        return alarms

    def fit_predict(self, calibration: Any, scores: Any) -> np.ndarray:
        """``fit(calibration)`` then ``predict(scores)``."""
        return self.fit(calibration).predict(scores)

    def anomaly_score(self, scores: Any) -> np.ndarray:
        """``scores`` over the thresholds of the last ``predict`` (which judged them), so that
        1.0 is the alarm boundary whatever the detector: ``vigil detect``'s ``anomaly_score``."""
        if self.thresholds_ is None:
            raise ValueError("anomaly_score needs the thresholds of a predict over these scores first")
        return _native.anomaly_scores(_arrays.values(scores, "scores"), self.thresholds_)

    def params_json(self) -> str:
        """The parameters as the native module reads them (refused by name if JSON cannot hold one)."""
        return _arrays.params_json(self.params, f"the {self.name} threshold")

    def _native_rule(self) -> "_native.Rule":
        return _native.Rule(self.name, self.params_json())

    @property
    def method(self) -> dict[str, Any]:
        """The rule with every parameter, defaults included."""
        return json.loads(self._rule.method_json())

    def __eq__(self, other: object) -> bool:
        # Equal rules: the same rule with the same parameters, defaults included (what it has
        # learnt of a stream is not compared).
        return isinstance(other, Threshold) and self.method == other.method

    __hash__ = None  # type: ignore[assignment]  (mutable: learns along its stream)

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_rule", "_lock")}
        with self._lock:
            state["rule_state"] = self._rule.state_json()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        rule_state = state.pop("rule_state")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._rule = self._native_rule()
        if self._calibration is not None:
            self._rule.set_state(self._calibration, rule_state)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({params})"


class Auto(Threshold):
    """The default: SPOT calibrated on the calibration scores, or SPOT fitted on the stream's
    first scores when those sit above what calibration saw (chosen once, from label-free
    evidence; ``choice_`` says which and why)."""

    name = "auto"


class Spot(Threshold):
    """SPOT (Siffer et al., KDD 2017): POT calibrated on the calibration scores, updated along
    the stream. ``q`` (risk), ``level`` (initial quantile), ``horizon`` (recalibration)."""

    name = "spot"


class Dspot(Threshold):
    """DSPOT: SPOT on each score's residual from a moving level of the last ``depth`` normal
    scores, for drifting scores."""

    name = "dspot"


class Pot(Threshold):
    """POT fitted on the calibration scores: one fixed threshold. ``q``, ``level``."""

    name = "pot"


class PotBatch(Threshold):
    """POT fitted on the scores being judged (each batch on its own; offline)."""

    name = "pot-batch"


class Ndt(Threshold):
    """LSTM-NDT's non-parametric dynamic threshold (Hundman et al., KDD 2018) on the scores
    being judged (each batch on its own)."""

    name = "ndt"


class Quantile(Threshold):
    """A fixed quantile (``level``, default 0.99) of the calibration scores."""

    name = "quantile"


_RULES = {rule.name: rule for rule in (Auto, Spot, Dspot, Pot, PotBatch, Ndt, Quantile)}


def by_name(name: str, **params: Any) -> Threshold:
    """The rule called ``name`` (``vigil detect --threshold``'s names) with ``params``."""
    try:
        return _RULES[name](**params)
    except KeyError:
        raise ValueError(
            f"unknown threshold `{name}`; use {', '.join(_RULES)} "
            "(best-f1 looks at the labels: vigil.metrics.best_f1)"
        ) from None


def anomaly_scores(scores: Any, thresholds: Any) -> np.ndarray:
    """Each score over the threshold in force at it (1.0 is the alarm boundary)."""
    return _native.anomaly_scores(_arrays.values(scores, "scores"), _arrays.values(thresholds, "thresholds"))
