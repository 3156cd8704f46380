"""The server's strategies: LGF-PKT (MTAD-FL) and FedAvg (with FedTL's node-side fine-tune),
as Flower strategies whose arithmetic is vigil's (``vigil.federated``).

Both sample every connected node once ``min-nodes`` are connected, wait ``round-timeout``
seconds for replies (the deadline), and count a round only when ``quorum`` nodes replied: a node
that drops out is left out of the round, and one that comes back is sampled in the next. Each
strategy keeps a per-round log (``rounds``): seconds, nodes, bytes each node sent and received,
and each node's detection measures, by Flower node id.
"""

from __future__ import annotations

import math
import time
from logging import INFO, WARNING
from typing import Any, Iterable, Optional

import numpy as np
import vigil
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Strategy
from flwr.serverapp.strategy.strategy_utils import sample_nodes
from vigil.federated import HIDDEN_LAYERS

from .settings import RunSettings

Tensors = dict[str, np.ndarray]
MEASURES = ("precision", "recall", "f1", "mcc")


class RoundLog:
    """What the strategies measure of each round, for the run's results file."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, Any]] = []
        self._started = 0.0

    def start(self, server_round: int, phase: str) -> None:
        if phase == "train":
            self.rounds.append({"round": server_round})
        self._started = time.monotonic()

    def finish(self, phase: str, **fields: Any) -> None:
        entry = self.rounds[-1]
        entry[f"{phase}_seconds"] = time.monotonic() - self._started
        entry.update(fields)

    def detection(self, replies: list[Message]) -> Optional[MetricRecord]:
        """Each replying node's measures, and their mean weighted by detection steps."""
        nodes = {
            str(m.metadata.src_node_id): {k: float(m.content["metrics"][k]) for k in (*MEASURES, "num-examples")}
            for m in replies
        }
        self.finish("evaluate", detection=nodes)
        if not nodes:
            return None
        # fsum: exactly rounded, so the mean does not depend on the order the replies came in.
        steps = math.fsum(n["num-examples"] for n in nodes.values())
        mean = {k: math.fsum(n[k] * n["num-examples"] for n in nodes.values()) / steps for k in MEASURES}
        self.rounds[-1]["mean"] = mean
        return MetricRecord(mean)


def _valid(replies: Iterable[Message], phase: str) -> list[Message]:
    valid, failed = [], []
    for reply in replies:
        (failed if reply.has_error() else valid).append(reply)
    log(INFO, "%s: %d replies, %d failures", phase, len(valid), len(failed))
    for reply in failed:
        log(INFO, "\t> node %d: %s", reply.metadata.src_node_id, reply.error.reason)
    return valid


def _tensors(record: ArrayRecord) -> Tensors:
    return {name: array.numpy() for name, array in record.items()}


def _array_record(tensors: Tensors) -> ArrayRecord:
    return ArrayRecord({name: Array(np.ascontiguousarray(values)) for name, values in tensors.items()})


def _nbytes(tensors: Tensors) -> int:
    return int(sum(t.nbytes for t in tensors.values()))


def _messages(node_ids: Iterable[int], content: RecordDict, message_type: str) -> list[Message]:
    return [Message(content=content, message_type=message_type, dst_node_id=n) for n in node_ids]


def nearest_peers(uploads: dict[int, Tensors], distance: str) -> dict[int, tuple[int, float]]:
    """LGF-PKT's choice: for every node of ``uploads`` (its hidden layers, by node id), the
    other node whose hidden layers are nearest, and the distance between them."""
    node_ids = sorted(uploads)
    rankings = vigil.federated.rank_peers([uploads[n] for n in node_ids], HIDDEN_LAYERS, distance)
    return {
        node_id: (node_ids[ranked[0]], float(distances[0]))
        for node_id, (ranked, distances) in zip(node_ids, rankings)
    }


class LgfPkt(Strategy):
    """MTAD-FL's Layer-wise Generic-Feature Peer Knowledge Transfer (Hao et al.): each round,
    every node trains its Local model and uploads its hidden layers; the server measures the
    distance between every two nodes' hidden layers (Euclidean, cosine or both: Eqs. 13-15) and
    sends each node the hidden layers of the nearest, which it loads into its Transfer model
    before training and detecting. No model is averaged; the server keeps only this round's
    uploads."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.log = RoundLog()
        self._uploads: dict[int, Tensors] = {}

    def summary(self) -> None:
        s = self.settings
        log(INFO, "\t├──> LGF-PKT over %s, distance %s", ", ".join(HIDDEN_LAYERS), s.distance)
        log(INFO, "\t└──> min-nodes %d, quorum %d, deadline %.0f s", s.min_nodes, s.quorum, s.round_timeout)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.log.start(server_round, "train")
        # Waits for min-nodes, then takes every connected node (a rejoined one too).
        _, connected = sample_nodes(grid, self.settings.min_nodes, self.settings.min_nodes)
        node_ids = sorted(connected)
        log(INFO, "configure_train: %d nodes train their Local models", len(node_ids))
        # Nothing travels to the nodes here: each trains its own Local model further.
        content = RecordDict({"config": ConfigRecord({**config, "server-round": server_round})})
        return _messages(node_ids, content, MessageType.TRAIN)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        valid = _valid(replies, "aggregate_train")
        uploads = {m.metadata.src_node_id: _tensors(m.content["arrays"]) for m in valid}
        self._uploads = {}
        if len(uploads) < self.settings.quorum:
            log(WARNING, "round %d: %d of the quorum of %d replied; no transfer this round",
                server_round, len(uploads), self.settings.quorum)
            self.log.finish("train", trained=len(uploads), counted=False)
            return None, None
        self._uploads = uploads
        self.log.finish(
            "train",
            trained=len(uploads),
            counted=True,
            bytes_sent={str(n): _nbytes(t) for n, t in uploads.items()},
        )
        return None, MetricRecord({"nodes": len(uploads)})

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.log.start(server_round, "evaluate")
        if not self._uploads:
            return []
        messages, peers, received = [], {}, {}
        for node_id, (peer, distance) in nearest_peers(self._uploads, self.settings.distance).items():
            peers[str(node_id)] = {"peer": str(peer), "distance": distance}
            received[str(node_id)] = _nbytes(self._uploads[peer])
            content = RecordDict(
                {
                    "arrays": _array_record(self._uploads[peer]),
                    "config": ConfigRecord({**config, "server-round": server_round}),
                }
            )
            messages.append(Message(content=content, message_type=MessageType.EVALUATE, dst_node_id=node_id))
            log(INFO, "configure_evaluate: node %d takes node %d's hidden layers (distance %.4f)",
                node_id, peer, distance)
        self.log.rounds[-1].update(peers=peers, bytes_received=received)
        return messages

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> Optional[MetricRecord]:
        return self.log.detection(_valid(replies, "aggregate_evaluate"))


class VigilFedAvg(FedAvg):
    """FedAvg over every tensor of the nodes' Local models, weighted by their training steps,
    averaged by vigil (which refuses models that disagree in names or shapes, or hold values
    that are not finite). With ``fedtl``, each node fine-tunes the global model on its own data
    before detecting with it (FedTL-AD's pre-trained model); that happens on the node."""

    def __init__(self, settings: RunSettings) -> None:
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=1.0,
            min_train_nodes=settings.min_nodes,
            min_evaluate_nodes=settings.min_nodes,
            min_available_nodes=settings.min_nodes,
        )
        self.settings = settings
        self.log = RoundLog()
        self._global: Tensors = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.log.start(server_round, "train")
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        valid = _valid(replies, "aggregate_train")
        if len(valid) < self.settings.quorum:
            log(WARNING, "round %d: %d of the quorum of %d replied; the global model stays",
                server_round, len(valid), self.settings.quorum)
            self.log.finish("train", trained=len(valid), counted=False)
            return None, None
        uploads = [_tensors(m.content["arrays"]) for m in valid]
        weights = [float(m.content["metrics"]["num-examples"]) for m in valid]
        self._global = vigil.federated.average(uploads, weights)
        self.log.finish(
            "train",
            trained=len(valid),
            counted=True,
            bytes_sent={str(m.metadata.src_node_id): _nbytes(u) for m, u in zip(valid, uploads)},
            bytes_received_per_node=_nbytes(self._global),
        )
        return _array_record(self._global), MetricRecord({"nodes": len(valid)})

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.log.start(server_round, "evaluate")
        return super().configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> Optional[MetricRecord]:
        return self.log.detection(_valid(replies, "aggregate_evaluate"))
