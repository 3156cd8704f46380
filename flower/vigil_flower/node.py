"""A node's work in a round, apart from Flower's messages: which model it trains, from what, with
which seed, and how it judges its detections. ``client_app`` wires these to Flower.

Every node starts from one network, drawn from the run's shared seed (as a server would
broadcast its first model, without sending it), then trains with a seed of its own: the run's
seed, the node's name, the round and the phase. The same run on the same data gives the same
models, however the rounds interleave.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import vigil

from .node_data import NodeData
from .node_state import NodeState
from .settings import RunSettings

# A step is alarmed when the classifier's probability of an anomaly passes one half: its argmax,
# as the paper's classifiers decide.
ALARM_PROBABILITY = 0.5


@dataclass
class Node:
    name: str
    settings: RunSettings
    data: NodeData
    state: NodeState

    @classmethod
    def of(cls, node_config: Mapping[str, Any], run_config: Mapping[str, Any], run_id: int) -> "Node":
        if "name" not in node_config:
            raise ValueError(
                "this SuperNode's --node-config has no name: a name of its own that the node "
                "derives its seeds from and writes its results under (add name=\"...\")"
            )
        return cls(
            name=str(node_config["name"]),
            settings=RunSettings.of(run_config),
            data=NodeData.of(node_config),
            state=NodeState.of(node_config, run_id),
        )

    @property
    def examples(self) -> int:
        """Steps the node trains on: the weight of its contribution to averages."""
        return len(self.data.train)

    def seed(self, server_round: int, phase: str) -> int:
        return zlib.crc32(f"{self.settings.seed}/{self.name}/{server_round}/{phase}".encode())

    def shared_network(self, kind: str) -> vigil.Detector:
        """The ``kind`` network every node draws from the run's seed, untrained, fitted to this
        node's metrics (the normaliser and the classifier's inputs)."""
        detector = vigil.Detector(kind, seed=self.settings.seed, **self.settings.detector_config())
        return detector.fit(self.data.train, self.data.train_labels, self.data.metric_names, epochs=0)

    def trained(
        self, detector: vigil.Detector, server_round: int, phase: str, epochs: int | None = None
    ) -> vigil.Detector:
        return detector.fine_tune(
            self.data.train,
            self.data.train_labels,
            epochs=self.settings.local_epochs if epochs is None else epochs,
            seed=self.seed(server_round, phase),
        )

    def detection_results(self, detector: vigil.Detector) -> dict[str, Any]:
        """How ``detector`` does on the node's detection part, point-wise, and by the measures
        that do not reward a long alarm (affiliation, VUS-PR)."""
        probability = detector.score(self.data.test).total
        alarms = (probability > ALARM_PROBABILITY).astype(np.uint8)
        labels = self.data.test_labels
        affiliation = vigil.metrics.affiliation(alarms, labels)
        return {
            "precision": vigil.metrics.precision(alarms, labels),
            "recall": vigil.metrics.recall(alarms, labels),
            "f1": vigil.metrics.f1(alarms, labels),
            "mcc": vigil.metrics.mcc(alarms, labels),
            "affiliation_f1": None if affiliation is None else affiliation.get("f1"),
            "vus_pr": vigil.metrics.vus_pr(probability, labels),
            "test_steps": int(len(labels)),
        }
