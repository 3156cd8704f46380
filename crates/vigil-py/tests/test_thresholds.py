"""Threshold objects: the streaming rules judge a stream in parts as in one pass (and across a
pickle), the batch rules need no calibration, parameters reach the rule."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import vigil


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(7)
    calibration = rng.exponential(size=3000)
    stream = rng.exponential(size=2000)
    stream[1500:1520] += 12.0  # an anomaly
    stream[1700:] += 0.5  # a shift that stays
    return calibration, stream


@pytest.mark.parametrize(
    "rule",
    [vigil.thresholds.Auto(), vigil.thresholds.Spot(), vigil.thresholds.Spot(horizon=100),
     vigil.thresholds.Dspot(), vigil.thresholds.Pot(), vigil.thresholds.Quantile(level=0.995)],
    ids=repr,
)
def test_a_stream_judged_in_parts_gets_the_alarms_of_one_pass(rule, scores):
    calibration, stream = scores
    whole = pickle.loads(pickle.dumps(rule)).fit(calibration)
    one_pass = whole.predict(stream)
    thresholds = whole.thresholds_
    rule.fit(calibration)
    parts = [rule.predict(stream[:700])]
    in_force = [rule.thresholds_]
    # Carried across a pickle mid-stream, as a worker process would.
    rule = pickle.loads(pickle.dumps(rule))
    for part in (stream[700:701], stream[701:]):
        parts.append(rule.predict(part))
        in_force.append(rule.thresholds_)
    assert np.concatenate(parts).tobytes() == one_pass.tobytes()
    # The thresholds too: a rule that lost what it learnt of the first part (SPOT's peaks,
    # DSPOT's level, auto's warm-up) would set others after it.
    assert np.concatenate(in_force).tobytes() == thresholds.tobytes()
    if rule.name in ("spot", "dspot", "auto"):
        fresh = type(rule)(**rule.params).fit(calibration)
        fresh.predict(stream[701:])
        assert fresh.thresholds_.tobytes() != thresholds[701:].tobytes(), "the stream's state matters here"
    assert one_pass[1500:1520].all(), "the anomaly is alarmed"
    assert one_pass[:1500].mean() < 0.01
    assert len(thresholds) == len(stream)


def test_auto_says_what_it_chose(scores):
    calibration, stream = scores
    rule = vigil.thresholds.Auto().fit(calibration)
    rule.predict(stream)
    assert rule.choice_["rule"] in {"calibrated-spot", "stream-spot"}
    assert rule.choice_["reason"].startswith("auto ")


def test_batch_rules_need_no_calibration_and_parameters_reach_the_rule(scores):
    _, stream = scores
    strict = vigil.thresholds.PotBatch(q=1e-2).predict(stream)
    loose = vigil.thresholds.PotBatch(q=5e-2).predict(stream)
    assert strict[1500:1520].all() and strict.sum() < loose.sum()
    assert vigil.thresholds.PotBatch(q=1e-2).method == {"method": "pot-batch", "q": 1e-2, "level": 0.95}
    assert vigil.thresholds.Ndt().predict(stream)[1500:1520].any()


def test_anomaly_score_is_one_at_the_boundary(scores):
    calibration, stream = scores
    rule = vigil.thresholds.Quantile(level=0.99).fit(calibration)
    alarms = rule.predict(stream)
    relative = rule.anomaly_score(stream)
    assert ((relative >= 1.0) == alarms.astype(bool)).all()
    assert rule.thresholds_[0] == pytest.approx(np.quantile(calibration, 0.99), rel=1e-3)
