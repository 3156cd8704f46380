"""MTAD-FL on a real Flower federation on loopback: a SuperLink and three SuperNodes, each
training on one SKAB group (valve1, valve2, other). Three rounds; the node ``other`` is killed
(SIGKILL, mid-training) when round 2 reaches it, the round completes with the quorum of the
two others, and the node, started again, rejoins in round 3 from the models it saved after
round 1. Two such runs with the same seed give the same results, to the bit. Every byte each
node sent is read to show it held named hidden-layer tensors and counts, nothing else."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from federation import Federation, wait_for
import vigil
from vigil.federated import HIDDEN_LAYERS
from vigil_flower.node_data import NodeData, read_folder

SKAB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "SKAB"
GROUPS = ("valve1", "valve2", "other")
KILLED = "other"
RUN_CONFIG = {
    "method": "mtad-fl",
    "distance": "combined",
    "num-server-rounds": 3,
    "local-epochs": 2,
    "seed": 7,
    "filters": "8,16,8",
    "min-nodes": 3,
    "quorum": 2,
    "round-timeout": 150.0,
}


def expected_upload(node) -> dict[str, list[int]]:
    """The names and shapes of the hidden layers a node of this run sends: its shared network's."""
    data = NodeData.of(
        {"data-dir": str(node.data_dir), "label-column": "anomaly", "drop-columns": "datetime,changepoint"}
    )
    first, second, third = (int(f) for f in RUN_CONFIG["filters"].split(","))
    network = vigil.Detector(
        "mtad-local", seed=RUN_CONFIG["seed"], conv1_filters=first, conv2_filters=second, conv3_filters=third
    ).fit(data.train, data.train_labels, epochs=0)
    return {name: list(t.shape) for name, t in network.export_tensors(HIDDEN_LAYERS).items()}


def run_federation(root: Path) -> tuple[dict, dict[str, dict[int, dict]], Federation]:
    if not SKAB.is_dir():
        pytest.fail(f"SKAB is not at {SKAB}: the test needs ../shared/data beside the repository")
    federation = Federation(root)
    try:
        federation.start_link()
        for group in GROUPS:
            federation.add_node(group, SKAB / group)
        results_file = root / "results.json"
        run = federation.run({**RUN_CONFIG, "results-file": str(results_file)}, root / "run.log")
        killed = next(n for n in federation.nodes if n.name == KILLED)
        wait_for(lambda: "train 2" in killed.progress(), "round 2 reaching the node", 300)
        federation.kill_node(killed)
        assert not list(killed.state_dir.glob("run-*/local.round-2.vigil")), (
            "the kill came after the node finished round 2's training; the test needs it mid-training"
        )
        federation.start_node(killed)
        run.wait(timeout=600)
        assert run.returncode == 0, (root / "run.log").read_text()[-3000:]
        wait_for(results_file.exists, "the server's results", 30)
        return json.loads(results_file.read_text()), {n.name: n.results() for n in federation.nodes}, federation
    finally:
        federation.stop()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    return [run_federation(tmp_path_factory.mktemp(f"run{i}")) for i in range(2)]


def test_three_rounds_complete_with_a_node_killed_in_round_2_that_rejoins_in_round_3(two_runs):
    server, nodes, _ = two_runs[0]
    rounds = {r["round"]: r for r in server["rounds"]}
    assert sorted(rounds) == [1, 2, 3]
    assert [rounds[r]["trained"] for r in (1, 2, 3)] == [3, 2, 3], rounds
    assert all(rounds[r]["counted"] for r in (1, 2, 3))
    assert [len(rounds[r]["detection"]) for r in (1, 2, 3)] == [3, 2, 3]
    # Each node took its nearest peer's layers: another node of the round.
    for r in (1, 2, 3):
        for node, choice in rounds[r]["peers"].items():
            assert choice["peer"] != node and choice["peer"] in rounds[r]["peers"]
    assert sorted(nodes[KILLED]) == [1, 3], "the killed node detects in rounds 1 and 3 only"
    assert all(sorted(nodes[g]) == [1, 2, 3] for g in GROUPS if g != KILLED)
    for group in GROUPS:
        for r, result in nodes[group].items():
            assert 0.0 <= result["f1"] <= 1.0 and result["test_steps"] > 0, result


def test_the_same_seed_gives_the_same_results(two_runs):
    (server_a, nodes_a, _), (server_b, nodes_b, _) = two_runs
    assert nodes_a == nodes_b
    for a, b in zip(server_a["rounds"], server_b["rounds"]):
        # Node ids differ between runs; what each node measured does not.
        assert sorted(a["detection"].values(), key=json.dumps) == sorted(b["detection"].values(), key=json.dumps)
        assert a["mean"] == b["mean"]
        assert sorted(a["bytes_sent"].values()) == sorted(b["bytes_sent"].values())


def test_a_node_sends_only_hidden_layer_tensors_and_counts(two_runs):
    server, _, federation = two_runs[0]
    for node in federation.nodes:
        expected = expected_upload(node)
        entries = [json.loads(line) for line in node.sent_log.read_text().splitlines()]
        assert {e["type"] for e in entries} == {"train", "evaluate"}
        for entry in entries:
            assert not entry["configs"] and "error" not in entry, entry
            if entry["type"] == "train":
                sent = {name.split("/", 1)[1]: a["shape"] for name, a in entry["arrays"].items()}
                assert sent == expected
                assert {a["dtype"] for a in entry["arrays"].values()} == {"float32"}
                assert set(entry["metrics"]) == {"metrics/num-examples"}
            else:
                assert not entry["arrays"], entry
                reported = ("precision", "recall", "f1", "mcc", "num-examples")
                assert set(entry["metrics"]) == {f"metrics/{k}" for k in reported}
    # What the server received from each node was that much: the hidden layers' values alone
    # (the nodes' networks have the same hidden shapes, whatever their metrics).
    size = 4 * sum(int(np.prod(shape)) for shape in expected.values())
    assert {v for r in server["rounds"] for v in r["bytes_sent"].values()} == {size}


def test_the_bytes_a_node_sent_hold_no_raw_value_name_or_timestamp(two_runs):
    _, _, federation = two_runs[0]
    for node in federation.nodes:
        wire = bytes(node.relay.sent)
        # The check below reads the tensors' names on the wire: what is sent is not compressed
        # or encrypted, so a raw value would show as its bytes.
        assert b"features.conv1.weight" in wire
        names, values, _ = read_folder(node.data_dir, "anomaly", {"datetime", "changepoint"})
        assert not any(name.encode() in wire for name in names), f"{node.name} sent a metric's name"
        first_stamp = (node.data_dir / sorted(p.name for p in node.data_dir.glob("*.csv"))[0]).read_text()
        stamp = first_stamp.splitlines()[1].split(";")[0][:10].encode()
        assert stamp not in wire, f"{node.name} sent a timestamp's date {stamp!r}"
        # Any value of a row as float64, or two neighbouring values of a row or a column as float32
        # (8 bytes, so that no tensor's bytes match by chance).
        patterns = set()
        for row in values[:: max(1, len(values) // 4000)]:
            patterns.add(struct.pack("<2f", *row[:2]))
            patterns.update(struct.pack("<d", v) for v in row)
        # The values as the node's model sees them too: scaled to [0, 1] on its training part.
        train = NodeData.split(names, values, np.zeros(len(values))).train
        low, span = train.min(axis=0), np.where(np.ptp(train, axis=0) > 0, np.ptp(train, axis=0), 1.0)
        for table in (values, (values - low) / span):
            for column in table.T:
                pairs = np.stack([column[:-1], column[1:]], axis=1)[:: max(1, len(column) // 2000)]
                patterns.update(struct.pack("<2f", *pair) for pair in pairs)
        # Round numbers (30.0, 0.0) encode to mostly zero bytes, as Flower's own fields do (its
        # heartbeat interval, 30.0, is a double): only distinctive patterns count.
        patterns = {p for p in patterns if p.count(0) <= 2}
        assert len(patterns) > 10_000, "too few of the node's values to look for"
        windows = {wire[i : i + 8] for i in range(len(wire) - 7)}
        found = patterns & windows
        assert not found, f"{node.name} sent {len(found)} raw-value patterns"
