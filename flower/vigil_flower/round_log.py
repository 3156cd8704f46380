"""What the server measures of each round, for the run's results file: its seconds, which nodes
trained and whether the round counted, the bytes of tensor values each node sent and was sent,
the peers LGF-PKT chose, and each node's detection measures (by Flower node id; the nodes write
the same under their names on their own disks)."""

from __future__ import annotations

import math
import time
from logging import WARNING
from typing import Any, Optional

from flwr.app import Message, MetricRecord
from flwr.common.logger import log

from .tensors import Tensors, nbytes

MEASURES = ("precision", "recall", "f1", "mcc")


class RoundLog:
    def __init__(self) -> None:
        self.rounds: list[dict[str, Any]] = []
        self._phase_started = 0.0

    @property
    def _round(self) -> dict[str, Any]:
        return self.rounds[-1]

    def start_round(self, server_round: int, waited: float) -> None:
        """A round begins once its nodes are connected; ``waited``: the seconds that took."""
        self.rounds.append(
            {"round": server_round, "wait_seconds": waited, "bytes_sent": {}, "bytes_received": {}}
        )
        self._phase_started = time.monotonic()

    def start_phase(self) -> None:
        """The detection exchange begins; the training one's seconds end."""
        self._round["train_seconds"] = time.monotonic() - self._phase_started
        self._phase_started = time.monotonic()

    def note(self, **fields: Any) -> None:
        self._round.update(fields)

    def sent_to(self, node_id: int, size: int) -> None:
        received = self._round["bytes_received"]
        received[str(node_id)] = received.get(str(node_id), 0) + size

    def uploads(self, uploads: list[tuple[int, Tensors, float]]) -> None:
        for node_id, tensors, _ in uploads:
            self._round["bytes_sent"][str(node_id)] = nbytes(tensors)

    def counted(self, replies: int, quorum: int) -> bool:
        """Whether the round reached the quorum (noted, and warned about when not)."""
        counted = replies >= quorum
        self.note(trained=replies, counted=counted)
        if not counted:
            log(WARNING, "round %d: %d usable replies, below the quorum of %d; the round changes nothing on the server",
                self._round["round"], replies, quorum)
        return counted

    def detection(self, replies: list[Message]) -> Optional[MetricRecord]:
        """Each replying node's measures, and their mean weighted by detection steps."""
        self._round["evaluate_seconds"] = time.monotonic() - self._phase_started
        nodes = {}
        for m in replies:
            metrics = m.content.metric_records.get("metrics")
            usable = (
                metrics is not None
                and all(_finite_number(metrics.get(k)) for k in MEASURES)
                and _finite_number(metrics.get("num-examples"))
                and metrics["num-examples"] > 0
            )
            if not usable:
                log(WARNING, "\t> node %d: its detection reply lacks a finite measure or a positive count; left out",
                    m.metadata.src_node_id)
                continue
            nodes[str(m.metadata.src_node_id)] = {k: float(metrics[k]) for k in (*MEASURES, "num-examples")}
        self.note(detection=nodes)
        if not nodes:
            return None
        # fsum: exactly rounded, so the mean does not depend on the order the replies came in.
        steps = math.fsum(n["num-examples"] for n in nodes.values())
        mean = {k: math.fsum(n[k] * n["num-examples"] for n in nodes.values()) / steps for k in MEASURES}
        self.note(mean=mean)
        return MetricRecord(mean)


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
