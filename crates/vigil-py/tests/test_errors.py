"""Bad input raises ValueError with vigil's message (what is wrong, what to do); nothing panics."""

from __future__ import annotations

import numpy as np
import pytest

import vigil


@pytest.fixture(scope="module")
def pca(series):
    train, _, _ = series
    return vigil.Detector("pca", window=5).fit(train)


def test_an_array_of_the_wrong_rank_is_refused(series):
    train, _, _ = series
    with pytest.raises(ValueError, match=r"X must be a 2-D array of steps × metrics, got a 1-D .*reshape\(-1, 1\)"):
        vigil.Detector("pca").fit(train[:, 0])
    with pytest.raises(ValueError, match=r"got a 3-D array of shape \[2, 200, 3\]"):
        vigil.Detector("pca").fit(train.reshape(2, 200, 3))
    with pytest.raises(ValueError, match=r"must be numbers"):
        vigil.Detector("pca").fit([["a", "b"]])


def test_a_missing_value_under_the_error_policy_names_its_place(series):
    train, _, _ = series
    bad = train.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"missing|NaN") as raised:
        vigil.Detector("pca", window=5).fit(bad)
    assert "interpolate" in str(raised.value)
    # The interpolate policy repairs it.
    vigil.Detector("pca", window=5, missing="interpolate").fit(bad)


def test_the_wrong_metric_count_names_the_models_metrics(pca, series):
    _, test, _ = series
    with pytest.raises(ValueError, match=r"X has 2 metrics \(columns\) but the model was trained on 3: m0, m1, m2"):
        pca.score(test[:, :2])


def test_unknown_detectors_config_keys_and_ranges_are_named():
    x = np.zeros((50, 2))
    with pytest.raises(ValueError, match=r"unknown detector `usda`; known detectors: .*usad"):
        vigil.Detector("usda").fit(x)
    with pytest.raises(ValueError, match=r"unknown field `windwo`"):
        vigil.Detector("usad", windwo=5).fit(x)
    with pytest.raises(ValueError, match=r"window must be at least"):
        vigil.Detector("usad", window=0).fit(x)
    with pytest.raises(ValueError, match=r"unknown normaliser|normaliser"):
        vigil.Detector("pca", normaliser="minmx").fit(x)
    with pytest.raises(ValueError, match=r"calibration_share .* must be in \[0, 0.5\]"):
        vigil.Detector("pca", calibration_share=0.9).fit(x)


def test_counts_beyond_memory_seeds_and_parameters_json_cannot_hold_are_refused():
    x = np.zeros((50, 2))
    with pytest.raises(ValueError, match=r"trees must be at most 16777216, got 1000000000000"):
        vigil.Detector("iforest", trees=10**12).fit(x)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\^64\), got -1"):
        vigil.Detector("pca", seed=-1).fit(x)
    with pytest.raises(ValueError, match=r"the usad config's parameter `learning_rate` is nan"):
        vigil.Detector("usad", learning_rate=float("nan")).fit(x)
    with pytest.raises(ValueError, match=r"the quantile threshold's level must be in \[0, 1\], got 2"):
        vigil.thresholds.Quantile(level=2)
    with pytest.raises(ValueError, match=r"metric_names names `a` twice"):
        vigil.Detector("pca").fit(x, metric_names=["a", "a"])


def test_a_series_shorter_than_the_window_is_refused():
    with pytest.raises(ValueError, match=r"window"):
        vigil.Detector("usad", window=10).fit(np.zeros((5, 2)))


def test_an_unfitted_detector_and_broken_bytes_say_so(tmp_path):
    with pytest.raises(ValueError, match=r"not fitted: call fit\(X\) first"):
        vigil.Detector("pca").score(np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"model archive|tar"):
        vigil.Detector.from_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"model directory"):
        vigil.Detector.load(tmp_path / "nothing-here")


def test_thresholds_and_metrics_refuse_bad_arrays(pca, series):
    _, test, labels = series
    with pytest.raises(ValueError, match=r"the spot threshold has no parameter `qq`; it has: level, q, horizon"):
        vigil.thresholds.Spot(qq=1e-3)
    with pytest.raises(ValueError, match=r"unknown threshold `spott`"):
        vigil.Detector("pca", threshold="spott").fit(test)
    with pytest.raises(ValueError, match=r"not fitted: call fit\(calibration_scores\)"):
        vigil.thresholds.Spot().predict(np.ones(10))
    with pytest.raises(ValueError, match=r"calibration holds a non-finite value \(NaN\) at index 3"):
        vigil.thresholds.Spot().fit(np.array([1.0, 2.0, 3.0, np.nan]))
    with pytest.raises(ValueError, match=r"only 0 \(normal\) and 1 \(anomalous\), got 2 at index 0"):
        vigil.metrics.f1([2, 0], [1, 0])
    with pytest.raises(ValueError, match=r"got 0.5 at index 1"):
        vigil.metrics.f1([1.0, 0.5], [1, 0])
    with pytest.raises(ValueError, match=r"pred has 3 steps but labels has 2"):
        vigil.metrics.f1([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match=r"scores has 199 steps but labels has 200"):
        vigil.metrics.vus_pr(pca.decision_function(test)[1:], labels)
    with pytest.raises(ValueError, match=r"got 18446744073709551615 at index 0"):
        vigil.metrics.f1(np.array([2**64 - 1, 0], dtype=np.uint64), [1, 0])
    scores = pca.decision_function(test)
    with pytest.raises(ValueError, match=r"thresholds must be in \[1, 100000\], got 1000000000000"):
        vigil.metrics.vus_pr(scores, labels, thresholds=10**12)
    with pytest.raises(ValueError, match=r"max_window \(1000000000000000\) must be at most the series' length \(200\)"):
        vigil.metrics.vus_pr(scores, labels, max_window=10**15)
