"""``vigil.Detector``: a vigil detector in the habits of scikit-learn and PyOD."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _arrays, _native
from .thresholds import Threshold, by_name

# The training choices that are not the detector's own config (`vigil train`'s flags).
_SPEC = ("seed", "normaliser", "missing", "calibration_share", "threshold")


@dataclass(frozen=True)
class Scores:
    """A series' scores: ``total`` (steps,) float64, the anomaly score per step, and
    ``per_metric`` (steps × metrics) float32, each metric's contribution to it."""

    total: np.ndarray
    per_metric: np.ndarray
    metric_names: list[str]

    def __len__(self) -> int:
        return len(self.total)


def detectors() -> list[dict[str, Any]]:
    """Every registered detector: ``name``, ``summary`` (with its paper), ``defaults`` (every
    config key it accepts), ``layer_groups``, ``fine_tunes`` and ``supervised`` (it learns
    from training labels: ``fit(X, y)``)."""
    return json.loads(_native.detectors_json())


class Detector:
    """A vigil detector: ``Detector("usad", window=10, epochs=5, seed=0)``.

    ``name`` is a registered detector (``vigil.detectors()``); every keyword but the training
    choices below is a key of its config, over the detector's defaults (an unknown key or a
    value out of range raises ``ValueError`` naming it). Training choices, as ``vigil train``'s
    flags: ``seed`` (every random choice of the fit), ``normaliser`` (``minmax``, ``zscore``,
    ``robust`` or ``none``), ``missing`` (``error`` or ``interpolate``), ``calibration_share``
    (the share of training held out to calibrate thresholds on) and ``threshold`` (the rule
    ``predict`` applies: a name or a ``vigil.thresholds`` object; default ``auto``).

    The same data, config and seed give the same model and scores as the CLI, to the bit.
    """

    def __init__(
        self,
        name: str = "pca",
        *,
        seed: int = 0,
        normaliser: str = "minmax",
        missing: str = "error",
        calibration_share: float = 0.0,
        threshold: Union[str, Threshold] = "auto",
        **config: Any,
    ) -> None:
        self.name = name
        self.seed = seed
        self.normaliser = normaliser
        self.missing = missing
        self.calibration_share = calibration_share
        self.threshold = threshold
        self.config = dict(config)
        self.model_: Optional[_native.Model] = None

    # -- scikit-learn's parameter protocol -------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (config keys flattened beside the training choices)."""
        return {"name": self.name, **{k: getattr(self, k) for k in _SPEC}, **self.config}

    def set_params(self, **params: Any) -> "Detector":
        """Sets constructor arguments (a config key the detector does not have is refused, as
        scikit-learn refuses an unknown parameter); the model must be fitted again. A new
        ``name`` keeps only the config keys the new detector has too."""
        name = params.get("name", self.name)
        known = _config_keys(name)
        config = {k: v for k, v in self.config.items() if k in known}
        for key, value in params.items():
            if key == "name" or key in _SPEC:
                continue
            if key not in known:
                raise ValueError(
                    f"the {name} detector has no parameter `{key}`; its config keys: {', '.join(sorted(known))}"
                )
            config[key] = value
        for key in _SPEC:
            if key in params:
                setattr(self, key, params[key])
        self.name, self.config, self.model_ = name, config, None
        return self

    # -- training and scoring ----------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any = None,
        metric_names: Optional[Sequence[str]] = None,
        *,
        epochs: Optional[int] = None,
    ) -> "Detector":
        """Trains on ``X`` (steps × metrics: a NumPy array, a list of rows or a DataFrame, whose
        columns name the metrics). ``y`` (0/1 per step) is what the supervised detectors
        (``mtad-local``, ``mtad-transfer``: ``supervised`` in ``vigil.detectors()``) learn to
        classify, and they need it; the others learn without labels and ignore it (the
        argument is there for scikit-learn's pipelines). ``epochs`` overrides the config's for
        this fit, as ``vigil train --epochs`` does; ``0`` builds the network from the seed
        without training it (federated nodes start so from one shared network). Returns
        ``self``."""
        names = list(metric_names) if metric_names is not None else _arrays.column_names(X)
        rule = self._rule()
        self.model_ = _native.Model.train(
            _arrays.values(X, "X"),
            names,
            self.name,
            _arrays.params_json(self.config, f"the {self.name} config") if self.config else None,
            _arrays.count(self.seed, "seed"),
            self.normaliser,
            self.missing,
            float(self.calibration_share),
            rule.name,
            rule.params_json(),
            _arrays.flags(y, "y") if y is not None and _supervised(self.name) else None,
            None if epochs is None else _arrays.count(epochs, "epochs"),
        )
        return self

    def score(self, X: Any) -> Scores:
        """The anomaly score of every step of ``X`` and each metric's contribution, as
        ``vigil detect`` scores a file with this model."""
        model = self._fitted()
        names = _arrays.column_names(X)
        if names is not None:
            _arrays.same_names(names, model.metric_names, "X")
        total, per_metric = model.score(_arrays.values(X, "X"))
        return Scores(total, per_metric, model.metric_names)

    def decision_function(self, X: Any) -> np.ndarray:
        """The total anomaly score of every step of ``X`` (higher: more anomalous)."""
        return self.score(X).total

    def predict(self, X: Any, threshold: Union[str, Threshold, None] = None) -> np.ndarray:
        """1 at the steps of ``X`` alarmed by the model's threshold rule (or ``threshold``),
        calibrated on the model's calibration scores, else 0: ``vigil detect``'s alarms."""
        return self.decide(self.decision_function(X), threshold)[1]

    def decide(
        self, scores: Any, threshold: Union[str, Threshold, None] = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The threshold in force at each of ``scores`` and the alarms (0/1) under the model's
        rule (or ``threshold``), calibrated on the model's calibration scores."""
        model = self._fitted()
        scores = _arrays.values(scores, "scores")
        if threshold is None:
            return model.decide(scores)
        rule = _as_threshold(threshold)
        return model.decide(scores, rule.name, rule.params_json())

    # -- what the model is ----------------------------------------------------------------------

    @property
    def calibration_scores_(self) -> np.ndarray:
        """The scores the label-free thresholds are calibrated on (of the training steps, or
        of the held-out share when ``calibration_share`` > 0)."""
        return self._fitted().calibration()

    @property
    def manifest(self) -> dict[str, Any]:
        """The model's manifest: detector, full config, normaliser, metrics, training, threshold."""
        return json.loads(self._fitted().manifest_json())

    @property
    def metric_names(self) -> list[str]:
        return self._fitted().metric_names

    @property
    def window(self) -> int:
        """Steps of context each score looks at."""
        return self._fitted().window

    def fine_tune(self, X: Any, y: Any = None, *, epochs: Optional[int] = None, seed: int = 0) -> "Detector":
        """A new detector trained further on ``X`` from this one's weights, as ``vigil tune``
        does (this model's normaliser; ``y``, 0/1 per step, is what a supervised detector
        learns and what the others leave out of training). A federated round's local training."""
        model = self._fitted().fine_tune(
            _arrays.values(X, "X"),
            _arrays.flags(y, "y") if y is not None else None,
            None if epochs is None else _arrays.count(epochs, "epochs"),
            _arrays.count(seed, "seed"),
        )
        return type(self)._of_model(model)

    def export_tensors(self, groups: Optional[Sequence[str]] = None) -> dict[str, np.ndarray]:
        """The fitted parameters whose module path contains one of ``groups`` (all of them
        without), as float32 arrays by name: what federated training sends."""
        return self._fitted().export_tensors(list(groups or []))

    def with_tensors(self, tensors: dict[str, np.ndarray]) -> "Detector":
        """A new detector with the parameters in ``tensors`` (from ``export_tensors`` of a model
        of the same detector and config) set and every other kept; a name this model lacks or
        another shape raises ``ValueError`` and nothing changes."""
        arrays = {str(k): np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        return type(self)._of_model(self._fitted().with_tensors(arrays))

    def to_bytes(self) -> bytes:
        """The whole model as bytes (a tar archive of its model directory: ``tar -x`` gives a
        directory ``vigil detect --model`` reads)."""
        return self._fitted().to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Detector":
        """The model in ``data`` (from ``to_bytes``), verified before use."""
        return cls._of_model(_native.Model.from_bytes(data))

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the model directory at ``path`` (atomically)."""
        self._fitted().save(os.fspath(path))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Detector":
        """Reads a model directory written by ``vigil train`` or ``save``."""
        return cls._of_model(_native.Model.load(os.fspath(path)))

    def __getstate__(self) -> dict[str, Any]:
        # Pickled as the model's bytes (how Ray and multiprocessing pass detectors around).
        state = {k: v for k, v in self.__dict__.items() if k != "model_"}
        state["model_bytes"] = None if self.model_ is None else self.model_.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        data = state.pop("model_bytes")
        self.__dict__.update(state)
        self.model_ = None if data is None else _native.Model.from_bytes(data)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k != "name")
        fitted = "" if self.model_ is None else f" fitted on {len(self.model_.metric_names)} metrics"
        return f"Detector({self.name!r}, {params}){fitted}"

    # -- helpers ------------------------------------------------------------------------------

    @classmethod
    def _of_model(cls, model: _native.Model) -> "Detector":
        manifest = json.loads(model.manifest_json())
        training = manifest["training"]
        steps, held_out = training["train_steps"], training.get("calibration_steps", 0)
        detector = cls(
            manifest["detector"],
            seed=training["seed"],
            calibration_share=held_out / steps if steps else 0.0,
            normaliser=manifest["normaliser"]["kind"],
            missing=manifest["missing_policy"],
            **manifest["config"],
        )
        rule = json.loads(model.threshold_json())
        detector.threshold = by_name(rule.pop("method"), **rule)
        detector.model_ = model
        return detector

    def _rule(self) -> Threshold:
        return _as_threshold(self.threshold)

    def _fitted(self) -> _native.Model:
        if self.model_ is None:
            raise ValueError(f"this {self.name} detector is not fitted: call fit(X) first")
        return self.model_


def _config_keys(name: str) -> set[str]:
    """The config keys of detector ``name``, or ``ValueError`` naming the known detectors."""
    found = {d["name"]: d for d in detectors()}
    if name not in found:
        raise ValueError(f"unknown detector `{name}`; known detectors: {', '.join(found)}")
    return set(found[name]["defaults"])


def _supervised(name: str) -> bool:
    """Whether detector ``name`` learns from training labels (and so reads ``fit``'s ``y``)."""
    return any(d["name"] == name and d["supervised"] for d in detectors())


def _as_threshold(threshold: Union[str, Threshold]) -> Threshold:
    if isinstance(threshold, Threshold):
        return threshold
    if isinstance(threshold, str):
        return by_name(threshold)
    raise ValueError(
        f"threshold must be a rule's name (auto, spot, dspot, pot, pot-batch, ndt, quantile) or a "
        f"vigil.thresholds object, got {threshold!r}"
    )
