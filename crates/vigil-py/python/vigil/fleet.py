"""OmniTransfer for fleets of many entities, as pure functions of arrays and bytes.

Each step gives what the matching ``vigil fleet`` command gives for the same data and settings,
without a fleet directory: the clustering is a ``Clustering`` (JSON inside), models are bytes.
So any engine can schedule the steps — ``vigil.ray`` runs them as Ray tasks::

    clustering = vigil.fleet.cluster(train_by_entity)                 # vigil fleet cluster
    bases = {c: vigil.fleet.train_base(clustering, c, train_by_entity)  # vigil fleet train-base
             for c in range(len(clustering))}
    model, record = vigil.fleet.transfer(clustering, bases, name, series)  # vigil fleet transfer
    scores = vigil.fleet.detect(model, test)                           # its scores

Entities are ``{name: array}`` (steps × metrics, every entity with the same metrics in the
same order), taken in the order the CLI reads a folder of them (``machine-1-2`` before
``machine-1-10``); the settings' defaults are the commands' (docs/fleet.md).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from . import _arrays, _native
from ._detector import Detector, Scores

# `vigil fleet train-base`'s detector when none is named.
DEFAULT_DETECTOR = "usad"


class Clustering:
    """A fleet's clustering: which cluster each entity is in, each cluster's centroid and the
    segments nearest it (``json`` is what ``vigil fleet cluster`` writes as clusters.json)."""

    def __init__(self, json_text: str) -> None:
        self.json = json_text
        self._parsed = json.loads(json_text)

    @classmethod
    def load(cls, path: str) -> "Clustering":
        """Reads a fleet directory's clusters.json (or the file itself)."""
        import pathlib

        p = pathlib.Path(path)
        return cls((p / "clusters.json" if p.is_dir() else p).read_text())

    def __len__(self) -> int:
        return len(self._parsed["clusters"])

    @property
    def metric_names(self) -> list[str]:
        return list(self._parsed["metric_names"])

    @property
    def assignments(self) -> dict[str, int]:
        """The cluster of every clustered entity."""
        return {e["name"]: e["cluster"] for e in self._parsed["entities"]}

    def base_entities(self, cluster: int) -> list[str]:
        """The entities whose segments train cluster ``cluster``'s base model."""
        return sorted({s["entity"] for s in self._parsed["clusters"][cluster]["nearest"]})

    def __getstate__(self) -> dict[str, Any]:
        return {"json": self.json}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["json"])

    def __repr__(self) -> str:
        return f"Clustering({len(self)} clusters of {len(self._parsed['entities'])} entities)"


def _entities(entities: Mapping[str, Any]) -> list[tuple[str, np.ndarray]]:
    return [(str(name), _arrays.values(x, f"entity {name}'s array")) for name, x in entities.items()]


def cluster(
    entities: Mapping[str, Any],
    *,
    metric_names: Optional[Sequence[str]] = None,
    **options: Any,
) -> Clustering:
    """Clusters the entities by the shape of their training series (I-HAC: OmniTransfer
    §III-B). Options as ``vigil fleet cluster``'s flags: ``segment_length`` (288),
    ``segments_per_entity`` (all), ``clusters`` (cut into this many) or ``max_distance`` (0.7),
    ``nearest`` (5), ``align`` (True)."""
    names = list(metric_names) if metric_names is not None else None
    return Clustering(_native.cluster(_entities(entities), names, **options))


def train_base(
    clustering: Clustering,
    cluster: int,
    entities: Mapping[str, Any],
    *,
    detector: str = DEFAULT_DETECTOR,
    config: Optional[Mapping[str, Any]] = None,
    seed: int = 0,
    epochs: Optional[int] = None,
    missing: str = "error",
) -> bytes:
    """The base model of cluster ``cluster`` as bytes, trained on the segments nearest its
    centroid (``entities`` must hold ``clustering.base_entities(cluster)``; others are left
    out). ``config`` overrides the detector's config key by key (``vigil fleet train-base
    --config``'s ``[detector_config]``); ``epochs`` overrides its epochs (``--epochs``)."""
    config = dict(config or {})
    needed = set(clustering.base_entities(cluster))
    chosen = {name: x for name, x in entities.items() if name in needed}
    return _native.train_base(
        clustering.json,
        cluster,
        _entities(chosen),
        detector,
        _arrays.params_json(config, f"the {detector} config") if config else None,
        _arrays.count(seed, "seed"),
        epochs,
        missing,
    )


def place(
    clustering: Clustering, name: str, series: Any, *, steps: Optional[int] = None, tau: Optional[float] = None
) -> dict[str, Any]:
    """Where entity ``name`` goes: its nearest ``cluster``, the ``distance`` to its centroid,
    the threshold ``tau`` and the ``transfer`` (``full`` within tau, ``partial`` beyond)."""
    c, distance, tau, transfer = _native.place_entity(
        clustering.json, name, _arrays.values(series, "series"), steps, tau
    )
    return {"cluster": c, "distance": distance, "tau": tau, "transfer": transfer}


def transfer(
    clustering: Clustering,
    base_models: Union[Mapping[int, bytes], Sequence[bytes]],
    name: str,
    series: Any,
    *,
    steps: Optional[int] = None,
    tau: Optional[float] = None,
    seed: int = 0,
    epochs: int = 1,
) -> tuple[bytes, dict[str, Any]]:
    """Adapts entity ``name`` from the newest ``steps`` (default: one segment) of ``series``,
    starting from its nearest cluster's base model, by full or partial transfer (§III-C).
    ``base_models[cluster]`` is looked up once the entity is placed (a mapping may fetch it
    lazily). Returns the entity's model as bytes and the record of what was done."""
    model, record = _native.transfer(
        clustering.json,
        base_models,
        name,
        _arrays.values(series, "series"),
        steps,
        tau,
        _arrays.count(seed, "seed"),
        epochs,
    )
    return model, json.loads(record)


def detect(model: bytes, series: Any) -> Scores:
    """An entity's scores (total and per metric) under its model; for thresholds and alarms,
    ``Detector.from_bytes(model).decide(scores.total)`` (what ``vigil fleet detect`` writes)."""
    return Detector.from_bytes(model).score(series)

