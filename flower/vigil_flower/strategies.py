"""The server's strategies: LGF-PKT (MTAD-FL) and FedAvg (with FedTL's node-side fine-tune),
as Flower strategies whose arithmetic is vigil's (``vigil.federated``).

Both send to every connected node, wait ``round-timeout`` seconds for replies (the deadline),
and count a round only when ``quorum`` nodes sent usable replies: a node that drops out is left
out of the round, and one that comes back is sent to in the next. A reply that is unusable (a
layout unlike the others', values that are not finite, a missing count) is left out with a
warning naming the node, rather than stopping the run. Replies are taken in an order of their
contents, not of their arrival or node ids, so that a run's results do not depend on either.
Each strategy keeps a per-round log (``log.rounds``) for the run's results file.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from logging import INFO, WARNING
from typing import Iterable, Optional

import numpy as np
import vigil
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from vigil.federated import HIDDEN_LAYERS

from .round_log import RoundLog
from .settings import RunSettings
from .tensors import Tensors, array_record, nbytes, tensors_of


class NotEnoughNodes(RuntimeError):
    """Fewer nodes are connected than the run needs; the message names the settings."""


class Membership:
    """Which nodes a round is sent to: every connected one, once enough are connected. Before
    round 1's training the server waits for ``min-nodes`` without end (the federation is
    forming); later it waits at most ``round-timeout``, then goes on with those connected if they
    reach the quorum, and from then on waits for no more than that many — a node that left for
    good costs one deadline, not one a round. Nodes that come back are sent to again."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.expected = settings.min_nodes

    def nodes(self, grid: Grid, server_round: int, forming: bool = False) -> list[int]:
        deadline = None if forming else time.monotonic() + self.settings.round_timeout
        while len(nodes := sorted(grid.get_node_ids())) < self.expected:
            if deadline is not None and time.monotonic() > deadline:
                if len(nodes) >= self.settings.quorum:
                    log(WARNING, "round %d: %d nodes connected, fewer than the %d expected; going on with them",
                        server_round, len(nodes), self.expected)
                    self.expected = len(nodes)
                    return nodes
                raise NotEnoughNodes(
                    f"round {server_round}: {len(nodes)} nodes connected after waiting round-timeout "
                    f"({self.settings.round_timeout:.0f} s), fewer than the quorum ({self.settings.quorum}); "
                    f"start more SuperNodes, or lower quorum and min-nodes"
                )
            log(INFO, "waiting for nodes: %d connected, %d expected", len(nodes), self.expected)
            time.sleep(1)
        return nodes


def begin_round(membership: Membership, round_log: RoundLog, grid: Grid, server_round: int) -> list[int]:
    """Waits for the round's nodes (without end before round 1), then starts the round's log,
    the wait noted apart from the round's seconds."""
    waited = time.monotonic()
    node_ids = membership.nodes(grid, server_round, forming=server_round == 1)
    round_log.start_round(server_round, waited=time.monotonic() - waited)
    return node_ids


def _log_limits(settings: RunSettings) -> None:
    log(INFO, "\t└──> min-nodes %d, quorum %d, deadline %.0f s",
        settings.min_nodes, settings.quorum, settings.round_timeout)


def replies_without_errors(replies: Iterable[Message], phase: str) -> list[Message]:
    valid, failed = [], []
    for reply in replies:
        (failed if reply.has_error() else valid).append(reply)
    log(INFO, "%s: %d replies, %d failures", phase, len(valid), len(failed))
    for reply in failed:
        log(INFO, "\t> node %d: %s", reply.metadata.src_node_id, reply.error.reason)
    return valid


def usable_uploads(replies: list[Message]) -> list[tuple[int, Tensors, float]]:
    """Each reply's (node, tensors, examples), for replies holding finite tensors in the layout
    most replies share and a positive ``num-examples``; in an order of their contents."""
    found = []
    for reply in replies:
        node = reply.metadata.src_node_id
        content = reply.content
        if "arrays" not in content.array_records or "metrics" not in content.metric_records:
            log(WARNING, "\t> node %d: its reply holds no arrays or no metrics; left out", node)
            continue
        examples = content["metrics"].get("num-examples")
        tensors = tensors_of(content["arrays"])
        if not positive_count(examples):
            log(WARNING, "\t> node %d: num-examples is %r, not a positive count; left out", node, examples)
        elif not all(_finite_as_float32(t) for t in tensors.values()):
            log(WARNING, "\t> node %d: its tensors hold values that are not finite float32; left out", node)
        else:
            found.append((node, tensors, float(examples)))
    layouts = Counter(_layout(t) for _, t, _ in found)
    if len(layouts) > 1:
        # The layout most replies share; a tie goes to the layout that sorts first, not to the
        # reply that came first.
        common = max(layouts, key=lambda layout: (layouts[layout], [repr(part) for part in layout]))
        for node, tensors, _ in found:
            if _layout(tensors) != common:
                log(WARNING, "\t> node %d: its tensors' names or shapes differ from the others'; left out", node)
        found = [u for u in found if _layout(u[1]) == common]
    return sorted(found, key=lambda u: (u[2], _digest(u[1])))


def positive_count(value: object) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _finite_as_float32(tensor: np.ndarray) -> bool:
    """vigil takes tensors as float32: a value finite in float64 but beyond float32 is not."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.isfinite(np.asarray(tensor, dtype=np.float32)).all())
    except (TypeError, ValueError):
        return False


def _layout(tensors: Tensors) -> tuple:
    return tuple(sorted((name, t.shape) for name, t in tensors.items()))


def _digest(tensors: Tensors) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes())
    return h.hexdigest()


def nearest_peers(uploads: list[tuple[int, Tensors]], distance: str) -> dict[int, tuple[int, float]]:
    """LGF-PKT's choice: for every node of ``uploads`` (node id and hidden layers), the other
    node whose hidden layers are nearest, and the distance between them. Ties go to the earlier
    upload, so give them in an order that does not change between runs."""
    rankings = vigil.federated.rank_peers([t for _, t in uploads], HIDDEN_LAYERS, distance)
    return {
        uploads[i][0]: (uploads[ranked[0]][0], float(distances[0]))
        for i, (ranked, distances) in enumerate(rankings)
    }


def _message(node_id: int, content: RecordDict, message_type: str) -> Message:
    return Message(content=content, message_type=message_type, dst_node_id=node_id)


def _config(config: ConfigRecord, server_round: int) -> ConfigRecord:
    return ConfigRecord({**config, "server-round": server_round})


class LgfPkt(Strategy):
    """MTAD-FL's Layer-wise Generic-Feature Peer Knowledge Transfer (Hao et al.): each round,
    every node trains its Local model and uploads its hidden layers; the server measures the
    distance between every two nodes' hidden layers (Euclidean, cosine or both: Eqs. 13-15) and
    sends each node the hidden layers of the nearest, which it loads into its Transfer model
    before training and detecting. No model is averaged; the server keeps only this round's
    uploads, so a round below the quorum transfers nothing."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.log = RoundLog()
        self.membership = Membership(settings)
        self._uploads: list[tuple[int, Tensors]] = []

    def summary(self) -> None:
        s = self.settings
        log(INFO, "\t├──> LGF-PKT over %s, distance %s", ", ".join(HIDDEN_LAYERS), s.distance)
        _log_limits(s)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        node_ids = begin_round(self.membership, self.log, grid, server_round)
        log(INFO, "configure_train: %d nodes train their Local models", len(node_ids))
        # Nothing travels to the nodes here: each trains its own Local model further.
        content = RecordDict({"config": _config(config, server_round)})
        return [_message(n, content, MessageType.TRAIN) for n in node_ids]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        uploads = usable_uploads(replies_without_errors(replies, "aggregate_train"))
        self.log.uploads(uploads)
        self._uploads = []
        if not self.log.counted(len(uploads), self.settings.quorum):
            return None, None
        self._uploads = [(node, tensors) for node, tensors, _ in uploads]
        return None, MetricRecord({"nodes": len(uploads)})

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.log.start_phase()
        if not self._uploads:
            return []
        tensors = dict(self._uploads)
        messages, peers = [], {}
        for node_id, (peer, distance) in nearest_peers(self._uploads, self.settings.distance).items():
            peers[str(node_id)] = {"peer": str(peer), "distance": distance}
            content = RecordDict({"arrays": array_record(tensors[peer]), "config": _config(config, server_round)})
            self.log.sent_to(node_id, nbytes(tensors[peer]))
            messages.append(_message(node_id, content, MessageType.EVALUATE))
            log(INFO, "configure_evaluate: node %d takes node %d's hidden layers (distance %.4f)",
                node_id, peer, distance)
        self.log.note(peers=peers)
        return messages

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> Optional[MetricRecord]:
        return self.log.detection(replies_without_errors(replies, "aggregate_evaluate"))


class VigilFedAvg(Strategy):
    """FedAvg over every tensor of the nodes' Local models, weighted by their training steps,
    averaged by vigil (``vigil.federated.average``). With ``fedtl``, each node fine-tunes the
    global model on its own data before detecting with it (FedTL-AD's pre-trained model); that
    happens on the node. The nodes detect only after a round that counted: below the quorum the
    global model stays as it was, and nothing is detected with it again."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.log = RoundLog()
        self.membership = Membership(settings)
        self._global: Tensors = {}
        self._counted = False

    def summary(self) -> None:
        s = self.settings
        log(INFO, "\t├──> %s over every tensor, weighted by training steps", s.method)
        _log_limits(s)

    def _send_global(self, node_ids: list[int], config: ConfigRecord, server_round: int, kind: str) -> list[Message]:
        # Round 1's global model is empty: every node starts from the network the seed draws.
        content = RecordDict({"arrays": array_record(self._global), "config": _config(config, server_round)})
        for node_id in node_ids:
            self.log.sent_to(node_id, nbytes(self._global))
        return [_message(n, content, kind) for n in node_ids]

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        node_ids = begin_round(self.membership, self.log, grid, server_round)
        log(INFO, "configure_train: %d nodes train the global model", len(node_ids))
        return self._send_global(node_ids, config, server_round, MessageType.TRAIN)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        uploads = usable_uploads(replies_without_errors(replies, "aggregate_train"))
        self.log.uploads(uploads)
        self._counted = self.log.counted(len(uploads), self.settings.quorum)
        if not self._counted:
            return None, None
        self._global = vigil.federated.average([t for _, t, _ in uploads], [w for _, _, w in uploads])
        return array_record(self._global), MetricRecord({"nodes": len(uploads)})

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.log.start_phase()
        if not self._counted:
            return []
        # Those connected now, without waiting: the round's training already waited.
        return self._send_global(sorted(grid.get_node_ids()), config, server_round, MessageType.EVALUATE)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> Optional[MetricRecord]:
        return self.log.detection(replies_without_errors(replies, "aggregate_evaluate"))
