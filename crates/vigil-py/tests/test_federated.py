"""MTAD-FL's pieces through Python: supervised fits with labels, tensors out and in, a round
of LGF-PKT and of FedAvg computed by vigil's Rust core."""

from __future__ import annotations

import numpy as np
import pytest

import vigil
from conftest import QUICK_CONFIGS
from vigil.federated import HIDDEN_LAYERS, average, rank_peers

CONFIG = dict(QUICK_CONFIGS["mtad-local"], epochs=3)


def node(seed: int, metric: int = 1):
    """A labelled node: 3 metrics of noise, `metric` jumping at the labelled steps."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((300, 3))
    y = (np.arange(300) % 15 == 4).astype(np.int64)
    x[y == 1, metric] += 1.0
    return x, y


def test_a_supervised_detector_needs_labels_and_learns_them():
    x, y = node(1)
    with pytest.raises(ValueError, match="`label` column"):
        vigil.Detector("mtad-local", **CONFIG).fit(x)
    detector = vigil.Detector("mtad-local", seed=1, **dict(CONFIG, epochs=10)).fit(x, y)
    assert detector.manifest["training"]["labelled_anomalous"] == int(y.sum())
    test_x, test_y = node(2)
    p = detector.score(test_x).total
    assert p[test_y == 1].mean() > p[test_y == 0].mean() + 0.3
    with pytest.raises(ValueError, match="one label per step"):
        vigil.Detector("mtad-local", **CONFIG).fit(x, y[:10])
    assert {d["name"] for d in vigil.detectors() if d["supervised"]} == {"mtad-local", "mtad-transfer"}


def test_hidden_layers_travel_from_local_models_into_transfer_models():
    # Nodes 0 and 1 see the same kind of anomaly (metric 1 jumps), node 2 another (metric 2); all
    # start from one network (one seed), as a federation's nodes start from a broadcast model.
    nodes = [node(1), node(2), node(3, metric=2)]
    locals_ = [vigil.Detector("mtad-local", seed=0, **CONFIG).fit(x, y) for x, y in nodes]
    uploads = [m.export_tensors(HIDDEN_LAYERS) for m in locals_]
    # What a node sends: the three convolutions' weights and biases, float32, nothing else.
    for upload in uploads:
        assert sorted(upload) == sorted(
            f"features.{layer}.{p}" for layer in HIDDEN_LAYERS for p in ("weight", "bias")
        )
        assert all(a.dtype == np.float32 for a in upload.values())
    for distance in ("euclidean", "cosine", "combined"):
        rankings = rank_peers(uploads, distance=distance)
        # The two nodes with the same anomaly take each other's layers.
        assert [peers[0] for peers, _ in rankings][:2] == [1, 0], distance
    rankings = rank_peers(uploads, distance="euclidean")
    assert rankings[0][1][0] == rankings[1][1][0] > 0  # the distance is symmetric
    transfer = vigil.Detector("mtad-transfer", seed=0, **CONFIG).fit(*nodes[0])
    peer = rankings[0][0][0]
    moved = transfer.with_tensors(uploads[peer])
    got = moved.export_tensors(HIDDEN_LAYERS)
    assert all(np.array_equal(got[k], uploads[peer][k]) for k in got)
    # The rest stays the transfer model's own, and the original is untouched.
    assert np.array_equal(
        moved.export_tensors(["classifier"])["classifier.weight"],
        transfer.export_tensors(["classifier"])["classifier.weight"],
    )
    assert not np.array_equal(transfer.export_tensors(HIDDEN_LAYERS)["features.conv1.weight"],
                              got["features.conv1.weight"])
    # The node trains further on its own data from the peer's layers: a round's local step.
    tuned = moved.fine_tune(*nodes[0], epochs=1, seed=3)
    assert tuned.name == "mtad-transfer"
    assert not np.array_equal(tuned.export_tensors(["conv1"])["features.conv1.weight"],
                              got["features.conv1.weight"])
    with pytest.raises(ValueError, match="names no parameter"):
        transfer.with_tensors({"features.conv9.weight": np.zeros(3, np.float32)})


def test_fedavg_weighs_nodes_by_their_examples_and_refuses_mismatches():
    a = {"w": np.array([0.0, 4.0], np.float32)}
    b = {"w": np.array([3.0, 8.0], np.float32)}
    assert average([a, b], [1, 3])["w"].tolist() == [2.25, 7.0]
    with pytest.raises(ValueError, match="shape"):
        average([a, {"w": np.zeros(3, np.float32)}], [1, 1])
    with pytest.raises(ValueError, match="not finite"):
        average([a, {"w": np.array([np.nan, 1.0], np.float32)}], [1, 1])
    with pytest.raises(ValueError, match="unknown distance"):
        rank_peers([a, b], ["w"], distance="manhattan")


def test_nodes_drawing_one_seed_untrained_start_from_one_network():
    # `fit(..., epochs=0)`: the network the seed draws, fitted to each node's metrics but not
    # trained — how a federation's nodes start alike without a model being sent.
    (x0, y0), (x1, y1) = node(1), node(2)
    first = vigil.Detector("mtad-local", seed=5, **CONFIG).fit(x0, y0, epochs=0)
    second = vigil.Detector("mtad-local", seed=5, **CONFIG).fit(x1, y1, epochs=0)
    a, b = first.export_tensors(), second.export_tensors()
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    trained = first.fine_tune(x0, y0, epochs=1, seed=0).export_tensors(HIDDEN_LAYERS)
    assert any(not np.array_equal(trained[k], a[k]) for k in trained)
    with pytest.raises(ValueError, match="epochs"):
        vigil.Detector("mtad-local", **CONFIG).fit(x0, y0, epochs=-1)
