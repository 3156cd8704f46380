"""vigil.metrics on cases small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest

import vigil.metrics as m

LABELS = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 1])
PRED = np.array([0, 1, 0, 1, 0, 0, 0, 0, 0, 0])


def test_point_wise_figures():
    # One true positive (step 3), one false positive (step 1), four missed.
    assert m.precision(PRED, LABELS) == 0.5
    assert m.recall(PRED, LABELS) == 0.2
    assert m.f1(PRED, LABELS) == pytest.approx(2 * 0.5 * 0.2 / 0.7)
    assert m.f1(PRED.astype(bool), LABELS.astype(float)) == m.f1(PRED, LABELS)
    assert m.precision(np.zeros(10), LABELS) == 0.0


def test_point_adjustment_credits_the_whole_segment():
    adjusted = m.point_adjust(PRED, LABELS)
    assert adjusted.tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    # precision 3/4, recall 3/5
    assert m.pa_f1(PRED, LABELS) == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_threshold_free_figures():
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.7, 0.3, 0.1, 0.2, 0.6, 0.95])
    assert m.roc_auc(scores, LABELS) == 1.0
    assert m.pr_auc(scores, LABELS) == 1.0
    assert m.roc_auc(scores, np.zeros(10)) is None
    best = m.best_f1(scores, LABELS)
    assert best == {"f1": 1.0, "precision": 1.0, "recall": 1.0, "threshold": 0.6}
    assert 0.0 < m.vus_pr(scores, LABELS) <= 1.0
    assert 0.0 < m.vus_roc(scores, LABELS) <= 1.0
    assert m.vus_pr(scores, np.zeros(10)) is None


def test_affiliation_and_the_whole_report():
    assert m.affiliation(LABELS, LABELS) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert m.affiliation(np.zeros(10), LABELS)["precision"] is None
    report = m.evaluate(np.linspace(0, 1, 10), PRED, LABELS)
    assert report["f1"] == m.f1(PRED, LABELS)
    assert report["pa_f1"] == m.pa_f1(PRED, LABELS)
    assert report["alarm_rate"] == 0.2
