"""The strategies driven by Flower's own round loop (``Strategy.start``) in this process: a grid
hands each message to the ClientApp's handlers, as the nodes would, over small generated data
folders. FedAvg and FedTL run whole rounds; rounds below the quorum, nodes that fail, nodes that
leave for good and unusable uploads are what the loopback test does not reach."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, Context, Error, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from vigil_flower import client_app
from vigil_flower.confined import NodeFailed
from vigil_flower.settings import RunSettings
from vigil_flower.strategies import LgfPkt, Membership, NotEnoughNodes, VigilFedAvg, usable_uploads
from vigil_flower.tensors import array_record

RUN_CONFIG = {
    "method": "fedavg", "distance": "combined", "num-server-rounds": 2, "local-epochs": 1, "seed": 3,
    "filters": "4,8,4", "min-nodes": 3, "quorum": 2, "round-timeout": 5.0, "results-file": "",
}


@pytest.fixture(autouse=True)
def task_identity():
    # Flower stamps every message with the running task's identity; here, one test process.
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0


def write_node(folder: Path, seed: int, steps: int = 400, jump_metric: int = 1) -> Path:
    """A node's folder: one CSV of 3 metrics of noise, one of them jumping where labelled."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((steps, 3))
    y = (np.arange(steps) % 20 == 7).astype(int)
    x[y == 1, jump_metric] += 1.0
    folder.mkdir(parents=True)
    rows = ["timestamp,a,b,c,label"] + [f"{t},{v[0]},{v[1]},{v[2]},{label}" for t, (v, label) in enumerate(zip(x, y))]
    (folder / "part.csv").write_text("\n".join(rows) + "\n")
    return folder


class InProcessGrid:
    """Flower's Grid for a strategy, its nodes' handlers run here; ``drop`` names the (round,
    node) pairs whose training replies are lost, as if the node had died."""

    def __init__(self, node_configs: dict[int, dict], run_config: dict, drop: set[tuple[int, int]] = frozenset()):
        self.node_configs = node_configs
        self.run_config = run_config
        self.drop = drop
        self.replies: list[Message] = []

    def get_node_ids(self) -> list[int]:
        return list(self.node_configs)

    def send_and_receive(self, messages, timeout):
        replies = []
        for message in messages:
            node_id = message.metadata.dst_node_id
            server_round = int(message.content["config"]["server-round"])
            if message.metadata.message_type == MessageType.TRAIN and (server_round, node_id) in self.drop:
                continue
            TaskIdentity.node_id = node_id
            context = Context(
                run_id=1, node_id=node_id, node_config=self.node_configs[node_id], state=RecordDict(),
                run_config=self.run_config,
            )
            handler = client_app.train if message.metadata.message_type == MessageType.TRAIN else client_app.evaluate
            try:
                replies.append(handler(message, context))
            except NodeFailed as failure:
                replies.append(Message(Error(code=0, reason=str(failure)), reply_to=message))
            TaskIdentity.node_id = 0
        self.replies.extend(replies)
        return replies


def federation(tmp_path: Path, run_config: dict, drop=frozenset()) -> InProcessGrid:
    configs = {}
    for node_id, (name, seed, metric) in zip((101, 202, 303), (("n1", 1, 1), ("n2", 2, 1), ("n3", 3, 2))):
        configs[node_id] = {
            "name": name, "data-dir": str(write_node(tmp_path / name / "data", seed, jump_metric=metric)),
            "state-dir": str(tmp_path / name / "state"),
        }
    return InProcessGrid(configs, run_config, drop)


def run(strategy, grid: InProcessGrid, rounds: int = 2):
    strategy.start(grid=grid, initial_arrays=ArrayRecord(), num_rounds=rounds, timeout=5.0)
    return {r["round"]: r for r in strategy.log.rounds}


@pytest.mark.parametrize("method", ["fedavg", "fedtl"])
def test_fedavg_and_fedtl_average_every_tensor_and_detect_with_the_global_model(tmp_path, method):
    config = {**RUN_CONFIG, "method": method}
    grid = federation(tmp_path, config)
    strategy = VigilFedAvg(RunSettings.of(config))
    rounds = run(strategy, grid)
    assert [rounds[r]["counted"] for r in (1, 2)] == [True, True]
    assert all(len(rounds[r]["detection"]) == 3 for r in (1, 2))
    global_size = sum(t.nbytes for t in strategy._global.values())
    assert global_size > 0 and all(np.isfinite(t).all() for t in strategy._global.values())
    # Round 1 sends the empty global model to train and the averaged one to detect with; round 2
    # sends the averaged one twice. Every node sends its whole model each round.
    assert set(rounds[1]["bytes_received"].values()) == {global_size}
    assert set(rounds[2]["bytes_received"].values()) == {2 * global_size}
    assert set(rounds[2]["bytes_sent"].values()) == {global_size}
    for node in grid.node_configs.values():
        results = sorted(Path(node["state-dir"]).glob("run-1/round-*.json"))
        assert [json.loads(p.read_text())["round"] for p in results] == [1, 2]


def test_fedtl_fine_tunes_what_fedavg_detects_with_as_it_is(tmp_path):
    found = {}
    for method in ("fedavg", "fedtl"):
        config = {**RUN_CONFIG, "method": method, "num-server-rounds": 1}
        run(VigilFedAvg(RunSettings.of(config)), federation(tmp_path / method, config), rounds=1)
        found[method] = json.loads((tmp_path / method / "n1/state/run-1/round-1.json").read_text())
    assert found["fedavg"] != found["fedtl"]


def test_a_round_below_the_quorum_changes_nothing_on_the_server_and_detects_nothing(tmp_path):
    config = {**RUN_CONFIG, "quorum": 2}
    grid = federation(tmp_path, config, drop={(2, 101), (2, 202)})
    strategy = VigilFedAvg(RunSettings.of(config))
    global_after = []
    aggregate = strategy.aggregate_train

    def noting_the_global(server_round, replies):
        out = aggregate(server_round, replies)
        global_after.append({k: v.copy() for k, v in strategy._global.items()})
        return out

    strategy.aggregate_train = noting_the_global
    rounds = run(strategy, grid)
    assert rounds[1]["counted"] and len(rounds[1]["detection"]) == 3
    assert rounds[2]["counted"] is False and rounds[2]["trained"] == 1 and rounds[2]["detection"] == {}
    first, second = global_after
    assert first and all(np.array_equal(first[k], second[k]) for k in first)
    # LGF-PKT: no transfer, no detection in such a round.
    lgf_config = {**RUN_CONFIG, "method": "mtad-fl"}
    lgf = LgfPkt(RunSettings.of(lgf_config))
    rounds = run(lgf, federation(tmp_path / "lgf", lgf_config, drop={(2, 101), (2, 202)}))
    assert rounds[1]["counted"] and len(rounds[1]["detection"]) == 3 and len(rounds[1]["peers"]) == 3
    assert not rounds[2]["counted"] and rounds[2]["detection"] == {} and "peers" not in rounds[2]


def test_a_node_that_fails_tells_the_server_its_kind_and_keeps_the_details(tmp_path):
    config = {**RUN_CONFIG, "num-server-rounds": 1}
    grid = federation(tmp_path, config)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "x.csv").write_text("timestamp,pressure_secret,label\n0,123.456789,0\n1,oops,0\n")
    grid.node_configs[303]["data-dir"] = str(secret)
    rounds = run(VigilFedAvg(RunSettings.of(config)), grid, rounds=1)
    assert rounds[1]["trained"] == 2 and rounds[1]["counted"]
    errors = [m.error.reason for m in grid.replies if m.has_error()]
    assert errors and all("NodeDataError" in e and "errors.log" in e for e in errors)
    for leak in ("123.456789", "oops", "pressure_secret", str(secret)):
        assert not any(leak in e for e in errors), leak
    local = (tmp_path / "n3" / "state" / "errors.log").read_text()
    assert "pressure_secret" in local or "oops" in local


def reply(node_id: int, tensors: dict, examples) -> Message:
    TaskIdentity.node_id = 0
    sent = Message(content=RecordDict(), message_type=MessageType.TRAIN, dst_node_id=node_id)
    TaskIdentity.node_id = node_id
    content = RecordDict({"arrays": array_record(tensors), "metrics": MetricRecord({"num-examples": examples})})
    return Message(content=content, reply_to=sent)


def test_an_unusable_upload_is_left_out_and_the_rest_ordered_by_content():
    good = {"features.conv1.weight": np.ones((2, 3), np.float32)}
    other = {"features.conv1.weight": np.full((2, 3), 2, np.float32)}
    nan = {"features.conv1.weight": np.full((2, 3), np.nan, np.float32)}
    shaped = {"features.conv1.weight": np.ones((3, 3), np.float32)}
    replies = [reply(5, other, 10), reply(1, nan, 10), reply(2, shaped, 10), reply(3, good, 0), reply(4, good, 10)]
    kept = usable_uploads(replies)
    assert {node for node, _, _ in kept} == {4, 5}
    # The order follows the contents, whatever order the replies came in.
    assert [n for n, _, _ in usable_uploads(list(reversed(replies)))] == [n for n, _, _ in kept]


class Connected:
    def __init__(self, nodes):
        self.nodes = nodes

    def get_node_ids(self):
        return self.nodes


def test_after_round_1_the_server_goes_on_without_a_node_that_left_for_good():
    settings = RunSettings.of({**RUN_CONFIG, "min-nodes": 3, "quorum": 2, "round-timeout": 0.2})
    membership = Membership(settings)
    assert membership.nodes(Connected([1, 2]), server_round=2) == [1, 2]
    # One deadline, not one a round: the next round does not wait for the node that left.
    assert membership.expected == 2
    assert membership.nodes(Connected([1, 2, 4]), server_round=3) == [1, 2, 4]
    with pytest.raises(NotEnoughNodes, match="fewer than the quorum"):
        Membership(settings).nodes(Connected([1]), server_round=2)


def test_a_tie_between_layouts_goes_the_same_way_whatever_order_the_replies_came_in():
    small = {"features.conv1.weight": np.ones((2, 3), np.float32)}
    large = {"features.conv1.weight": np.ones((3, 3), np.float32)}
    replies = [reply(1, small, 10), reply(2, large, 10)]
    first = [n for n, _, _ in usable_uploads(replies)]
    assert len(first) == 1 and first == [n for n, _, _ in usable_uploads(list(reversed(replies)))]


def test_counts_that_are_not_finite_and_float32_overflow_are_left_out():
    good = {"features.conv1.weight": np.ones((2, 3), np.float32)}
    huge = {"features.conv1.weight": np.full((2, 3), 1e300, np.float64)}
    replies = [reply(1, good, float("nan")), reply(2, good, float("inf")), reply(3, huge, 10), reply(4, good, 10)]
    assert [n for n, _, _ in usable_uploads(replies)] == [4]
