"""Evaluation measures: the code ``vigil eval`` reports with (docs/metrics.md names the
independent implementation each is checked against).

Alarms and labels are 0/1 arrays (ints, floats or booleans) of equal length; scores are finite
floats. Report the measures that do not inflate (point-wise F1, affiliation, VUS-PR) beside
point-adjusted F1, never the latter alone; ``best_f1`` looks at the labels (an oracle).
"""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from . import _arrays, _native


def _point(pred: Any, labels: Any) -> tuple[float, float, float, float]:
    return _native.point(_arrays.flags(pred, "pred"), _arrays.flags(labels, "labels"))


def precision(pred: Any, labels: Any) -> float:
    """Point-wise precision of the alarms ``pred`` (0 without alarms)."""
    return _point(pred, labels)[0]


def recall(pred: Any, labels: Any) -> float:
    """Point-wise recall of the alarms ``pred``."""
    return _point(pred, labels)[1]


def f1(pred: Any, labels: Any) -> float:
    """Point-wise F1 of the alarms ``pred``."""
    return _point(pred, labels)[2]


def mcc(pred: Any, labels: Any) -> float:
    """Matthews correlation of the alarms ``pred``."""
    return _point(pred, labels)[3]


def point_adjust(pred: Any, labels: Any) -> np.ndarray:
    """The alarms after point adjustment: a labelled segment with one alarm counts as found
    whole (inflating; report beside the point-wise figures)."""
    return _native.point_adjust(_arrays.flags(pred, "pred"), _arrays.flags(labels, "labels"))


def pa_f1(pred: Any, labels: Any) -> float:
    """Point-adjusted F1 (inflated: shown only beside the point-wise F1)."""
    return f1(point_adjust(pred, labels), labels)


def affiliation(pred: Any, labels: Any) -> Optional[dict[str, Optional[float]]]:
    """Affiliation precision (``None`` without alarms), recall and F1 (Huet et al., KDD 2022);
    ``None`` when no step is labelled anomalous."""
    found = _native.affiliation(_arrays.flags(pred, "pred"), _arrays.flags(labels, "labels"))
    if found is None:
        return None
    p, r, f = found
    return {"precision": p, "recall": r, "f1": f}


def _vus(scores: Any, labels: Any, max_window: int, thresholds: int) -> Optional[tuple[float, float]]:
    return _native.vus(
        _arrays.values(scores, "scores"), _arrays.flags(labels, "labels"), max_window, thresholds
    )


def vus_pr(scores: Any, labels: Any, max_window: int = 100, thresholds: int = 250) -> Optional[float]:
    """VUS-PR of the scores (Paparrizos et al., VLDB 2022; threshold-free); ``None`` without an
    anomalous label."""
    volumes = _vus(scores, labels, max_window, thresholds)
    return None if volumes is None else volumes[1]


def vus_roc(scores: Any, labels: Any, max_window: int = 100, thresholds: int = 250) -> Optional[float]:
    """VUS-ROC of the scores (threshold-free); ``None`` without an anomalous label."""
    volumes = _vus(scores, labels, max_window, thresholds)
    return None if volumes is None else volumes[0]


def roc_auc(scores: Any, labels: Any) -> Optional[float]:
    """ROC-AUC of the scores; ``None`` when the labels hold one class only."""
    return _native.auc(_arrays.values(scores, "scores"), _arrays.flags(labels, "labels"))[0]


def pr_auc(scores: Any, labels: Any) -> Optional[float]:
    """PR-AUC (average precision, as scikit-learn's) of the scores; ``None`` without an
    anomalous label."""
    return _native.auc(_arrays.values(scores, "scores"), _arrays.flags(labels, "labels"))[1]


def best_f1(scores: Any, labels: Any, adjusted: bool = False) -> Optional[dict[str, float]]:
    """The best F1 over every threshold (point-wise, or point-adjusted) — an oracle that looks
    at the labels: ``f1``, ``precision``, ``recall`` and the ``threshold`` that gives them."""
    found = _native.best_f1(_arrays.values(scores, "scores"), _arrays.flags(labels, "labels"), adjusted)
    if found is None:
        return None
    f, p, r, t = found
    return {"f1": f, "precision": p, "recall": r, "threshold": t}


def evaluate(scores: Any, alarms: Any, labels: Any) -> dict[str, Any]:
    """Everything ``vigil eval`` reports for scores, their alarms and the labels."""
    return json.loads(
        _native.evaluate(
            _arrays.values(scores, "scores"),
            _arrays.flags(alarms, "alarms"),
            _arrays.flags(labels, "labels"),
        )
    )
