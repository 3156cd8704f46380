"""What a node keeps between rounds, on its own disk: its models after each round, and what it
measured. Kept in files rather than in Flower's in-memory context so that a node that stops
(a crash, a restart, a lost connection) rejoins the run where it left off.

Layout, under the ``state-dir`` of the SuperNode's ``--node-config``::

    run-<run id>/<model>.round-<r>.vigil    the model after round r (vigil's model bytes)
    run-<run id>/round-<r>.json             the node's detection results of round r
    run-<run id>/progress.log               one line per phase begun ("train 2", ...)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

import vigil


class NodeState:
    def __init__(self, root: Path, run_id: int) -> None:
        self.folder = root / f"run-{run_id}"
        self.folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def of(cls, node_config: Mapping[str, Any], run_id: int) -> "NodeState":
        if "state-dir" not in node_config:
            raise ValueError(
                "this SuperNode's --node-config has no state-dir: the folder where the node keeps "
                "its models between rounds (add state-dir=\"/path\")"
            )
        return cls(Path(str(node_config["state-dir"])), run_id)

    def begin(self, phase: str, server_round: int) -> None:
        """Notes that a phase began (for the operator, and for tests that stop a node mid-round)."""
        with open(self.folder / "progress.log", "a") as log:
            log.write(f"{phase} {server_round}\n")

    def latest(self, model: str, before_round: int) -> Optional[vigil.Detector]:
        """The newest saved ``model`` from a round before ``before_round``, if any."""
        pattern = re.compile(rf"{re.escape(model)}\.round-(\d+)\.vigil$")
        rounds = [int(m.group(1)) for p in self.folder.iterdir() if (m := pattern.match(p.name))]
        rounds = [r for r in rounds if r < before_round]
        if not rounds:
            return None
        return vigil.Detector.from_bytes((self.folder / f"{model}.round-{max(rounds)}.vigil").read_bytes())

    def save(self, model: str, server_round: int, detector: vigil.Detector) -> None:
        _write_atomically(self.folder / f"{model}.round-{server_round}.vigil", detector.to_bytes())

    def record(self, server_round: int, results: dict[str, Any]) -> None:
        _write_atomically(self.folder / f"round-{server_round}.json", json.dumps(results, indent=1).encode())


def _write_atomically(path: Path, data: bytes) -> None:
    """A file is whole or absent: a node stopped mid-write leaves the previous round's."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
