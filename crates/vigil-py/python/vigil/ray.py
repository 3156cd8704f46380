"""vigil's fleet pipeline on Ray, for fleets that outgrow one machine (docs/python.md).

    import ray, vigil.ray
    ray.init()                                  # or ray.init(address="auto") on a cluster
    run = vigil.ray.run_fleet(offline, online, test=test, base_epochs=5)

The steps are ``vigil.fleet``'s pure functions as Ray tasks: clustering the offline entities →
one task per cluster's base model → one task per online entity's transfer (each fetches only
its cluster's base model, shared through Ray's object store) → one detection per entity with
test data. A task whose worker dies is retried (``max_retries``); with ``checkpoint=DIR``
every finished step is kept in DIR, so a run started again does only what is left. For the same
data and settings the models score as ``vigil fleet``'s, to the bit (``tests/test_ray.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import ray

from . import _arrays, _native
from . import fleet as _fleet
from ._detector import Scores

# Test hook, as the CLI's VIGIL_CRASH_AT: the first transfer task to finish its work while this
# file exists removes it and ends its worker process abruptly before returning, as a machine
# lost mid-run would (tests/test_ray.py).
_CRASH_ONCE = "VIGIL_RAY_CRASH_ONCE"


def _one_thread_per_cpu() -> None:
    """Sizes this worker's pool to the CPUs Ray gave the task (as `vigil fleet`'s workers run
    with `--threads 1`), so that tasks side by side do not each spread over every core. Ray
    reuses a worker for later tasks, whose pool is then sized already."""
    cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)) or 1
    try:
        _native.set_threads(cpus)
    except ValueError:
        pass


@dataclass
class FleetRun:
    """What a fleet run made: the clustering, each cluster's base model, each online entity's
    model (bytes) and transfer record, and the scores of the entities given test data."""

    clustering: _fleet.Clustering
    base_models: dict[int, bytes]
    models: dict[str, bytes]
    records: dict[str, dict[str, Any]]
    scores: dict[str, Scores] = field(default_factory=dict)


@ray.remote
def _cluster(names: list[str], metric_names: Optional[list[str]], options: dict[str, Any], *arrays):
    _one_thread_per_cpu()
    return _fleet.cluster(dict(zip(names, arrays)), metric_names=metric_names, **options)


@ray.remote
def _train_base(clustering, cluster: int, names: list[str], spec: dict[str, Any], *arrays) -> bytes:
    _one_thread_per_cpu()
    return _fleet.train_base(clustering, cluster, dict(zip(names, arrays)), **spec)


class _BaseModels:
    """The base models as the transfer sees them: each fetched from the object store only when
    asked for (an entity needs its own cluster's)."""

    def __init__(self, refs: list) -> None:
        self.refs = refs

    def __getitem__(self, cluster: int) -> bytes:
        return ray.get(self.refs[cluster])


@ray.remote
def _transfer(clustering, base_refs: list, names: list[str], options: dict[str, Any], *series):
    """Adapts a chunk of entities: one task for several, since adapting one small model takes
    a few milliseconds, less than scheduling a task does."""
    _one_thread_per_cpu()
    models = _BaseModels(base_refs)
    adapted = [_fleet.transfer(clustering, models, name, x, **options) for name, x in zip(names, series)]
    marker = os.environ.get(_CRASH_ONCE)
    if marker:
        try:
            os.remove(marker)
        except FileNotFoundError:
            pass
        else:
            os._exit(1)
    return adapted


@ray.remote
def _detect(model: bytes, series) -> Scores:
    _one_thread_per_cpu()
    return _fleet.detect(model, series)


def run_fleet(
    offline: Mapping[str, Any],
    online: Mapping[str, Any],
    *,
    test: Optional[Mapping[str, Any]] = None,
    metric_names: Optional[list[str]] = None,
    cluster_options: Optional[dict[str, Any]] = None,
    detector: str = _fleet.DEFAULT_DETECTOR,
    config: Optional[dict[str, Any]] = None,
    seed: int = 0,
    base_epochs: Optional[int] = None,
    steps: Optional[int] = None,
    tau: Optional[float] = None,
    epochs: int = 1,
    checkpoint: Optional[str] = None,
    entities_per_task: Optional[int] = None,
    max_retries: int = 3,
    progress: bool = True,
) -> FleetRun:
    """Clusters ``offline`` ({name: steps × metrics array}) and trains a base model per cluster,
    adapts every entity of ``online`` from its newest ``steps``, and scores ``test`` (entities
    of ``online`` with test data) with the adapted models. Settings as ``vigil fleet``'s:
    ``cluster_options`` (``vigil.fleet.cluster``'s), ``detector`` and its ``config``,
    ``base_epochs`` (train-base's ``--epochs``), ``steps``, ``tau``, ``epochs`` (transfer's).
    Needs ``ray.init()`` first (it is called with its defaults otherwise)."""
    if not ray.is_initialized():
        ray.init()
    _arrays.count(seed, "seed")
    offline = {name: _arrays.values(x, f"entity {name}'s array") for name, x in offline.items()}
    online = {name: _arrays.values(x, f"entity {name}'s array") for name, x in online.items()}
    store = None
    if checkpoint:
        settings = {
            "offline": _digests(offline), "online": _digests(online), "metric_names": metric_names,
            "cluster_options": cluster_options or {}, "detector": detector, "config": config or {},
            "seed": seed, "base_epochs": base_epochs, "steps": steps, "tau": tau, "epochs": epochs,
        }
        store = _Checkpoint(checkpoint, settings)
    # Each series goes into the object store once; tasks get references.
    offline_refs = {name: ray.put(x) for name, x in offline.items()}
    retry = {"max_retries": max_retries, "retry_exceptions": False}

    clustering = store.clustering() if store else None
    if clustering is None:
        names = sorted(offline_refs)
        clustering = ray.get(
            _cluster.options(**retry).remote(
                names, metric_names, cluster_options or {}, *[offline_refs[n] for n in names]
            )
        )
        if store:
            store.save_clustering(clustering)

    spec = {"detector": detector, "config": config or {}, "seed": seed, "epochs": base_epochs}
    base_models, pending = {}, {}
    for c in range(len(clustering)):
        kept = store.base_model(c) if store else None
        if kept is not None:
            base_models[c] = kept
            continue
        names = clustering.base_entities(c)
        ref = _train_base.options(**retry).remote(clustering, c, names, spec, *[offline_refs[n] for n in names])
        pending[ref] = c
    # Each kept as it finishes: a run stopped later keeps every base model finished before.
    _collect(pending, base_models, "base models", progress, store.save_base_model if store else None)
    base_refs = [ray.put(base_models[c]) for c in range(len(clustering))]
    clustering_ref = ray.put(clustering)

    adapted = {name: store.entity(name) for name in online} if store else {}
    adapted = {name: kept for name, kept in adapted.items() if kept is not None}
    left = {name: x for name, x in online.items() if name not in adapted}
    save = (lambda name, result: store.save_entity(name, *result)) if store else None
    adapted.update(
        transfer_all(
            clustering_ref, base_refs, left, steps=steps, tau=tau, seed=seed, epochs=epochs,
            entities_per_task=entities_per_task, max_retries=max_retries, progress=progress, on_done=save,
            done_before=len(adapted),
        )
    )
    models = {name: model for name, (model, _) in adapted.items()}
    records = {name: record for name, (_, record) in adapted.items()}

    scores = {}
    if test:
        pending = {
            _detect.options(**retry).remote(models[name], _arrays.values(x, f"entity {name}'s test array")): name
            for name, x in test.items()
            if name in models
        }
        _collect(pending, scores, "detections", progress, None)
    return FleetRun(clustering, base_models, models, records, scores)


def transfer_all(
    clustering,
    base_models: list,
    online: Mapping[str, Any],
    *,
    steps: Optional[int] = None,
    tau: Optional[float] = None,
    seed: int = 0,
    epochs: int = 1,
    entities_per_task: Optional[int] = None,
    max_retries: int = 3,
    progress: bool = True,
    on_done=None,
    done_before: int = 0,
) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """Adapts every entity of ``online`` on Ray from its cluster's base model (``base_models``:
    bytes or object references, by cluster; ``clustering`` a ``Clustering`` or a reference to
    one), ``entities_per_task`` entities a task (default: enough tasks for eight per CPU of the
    cluster, at most 64 entities each). Returns ``{name: (model bytes, record)}``; ``on_done``
    is called with each entity's as its task finishes."""
    base_refs = [m if isinstance(m, ray.ObjectRef) else ray.put(m) for m in base_models]
    clustering_ref = clustering if isinstance(clustering, ray.ObjectRef) else ray.put(clustering)
    names = sorted(online)
    if entities_per_task is None:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        entities_per_task = min(64, max(1, -(-len(names) // (8 * cpus))))
    if entities_per_task < 1:
        raise ValueError(f"entities_per_task must be at least 1, got {entities_per_task}")
    options = {"steps": steps, "tau": tau, "seed": seed, "epochs": epochs}
    retry = {"max_retries": max_retries, "retry_exceptions": False}
    pending = {}
    for start in range(0, len(names), entities_per_task):
        chunk = names[start:start + entities_per_task]
        series = [ray.put(_arrays.values(online[n], f"entity {n}'s array")) for n in chunk]
        pending[_transfer.options(**retry).remote(clustering_ref, base_refs, chunk, options, *series)] = tuple(chunk)
    chunks: dict = {}
    save_chunk = None
    if on_done:
        save_chunk = lambda chunk, results: [on_done(n, r) for n, r in zip(chunk, results)]
    _collect(pending, chunks, "transfers", progress, save_chunk, unit=len, done_before=done_before)
    return {name: result for chunk, results in chunks.items() for name, result in zip(chunk, results)}


def _collect(pending: dict, into: dict, what: str, progress: bool, save, unit=lambda key: 1,
             done_before: int = 0) -> None:
    """Puts each task's result into ``into[pending[ref]]`` (and ``save``s it) as the task
    finishes, with a progress line on stderr. A task that fails does not stop the others: every
    result that comes is kept, then the first failure is raised, naming how many failed.
    ``unit`` counts the items a key stands for (the entities of a chunk)."""
    done = done_before + sum(unit(k) for k in into)
    total = done + sum(unit(k) for k in pending.values())
    left, failed = list(pending), []
    while left:
        ready, left = ray.wait(left, num_returns=1)
        key = pending[ready[0]]
        try:
            into[key] = ray.get(ready[0])
        except Exception as error:  # noqa: BLE001 - re-raised below, after the others finish
            failed.append((key, error))
            continue
        if save:
            save(key, into[key])
        done += unit(key)
        if progress:
            print(f"\r{what}: {done}/{total}", end="" if left else "\n", file=sys.stderr, flush=True)
    if failed:
        key, error = failed[0]
        lost = sum(unit(k) for k, _ in failed)
        first = f"{key[0]} (with {len(key) - 1} more in its task)" if isinstance(key, tuple) else key
        raise RuntimeError(f"{lost} of {total} {what} failed; the first, {first}: {error}") from error


def _digests(arrays: Mapping[str, Any]) -> dict[str, str]:
    """Each array's SHA-256 (with its shape): what a checkpoint's data is recognised by."""
    return {
        name: hashlib.sha256(repr(x.shape).encode() + memoryview(np.ascontiguousarray(x)).cast("B")).hexdigest()
        for name, x in sorted(arrays.items())
    }


class _Checkpoint:
    """A run's finished steps in a folder: ``clusters.json``, ``base/<cluster>.model``,
    ``entities/<name>.model`` with ``<name>.json``; ``run.json`` holds the settings they were
    made with, so that a folder made with other settings is refused rather than mixed in."""

    def __init__(self, folder: str, settings: dict[str, Any]) -> None:
        self.dir = pathlib.Path(folder)
        (self.dir / "base").mkdir(parents=True, exist_ok=True)
        (self.dir / "entities").mkdir(exist_ok=True)
        fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        run = self.dir / "run.json"
        if run.exists():
            kept = json.loads(run.read_text()).get("settings")
            if kept != fingerprint:
                raise ValueError(
                    f"the checkpoint folder {self.dir} holds a run with other data or settings; "
                    "give another folder (or remove it to start over)"
                )
        else:
            self._write(run, json.dumps({"settings": fingerprint}).encode())

    @staticmethod
    def _write(path: pathlib.Path, data: bytes) -> None:
        # Written aside and renamed: a run killed mid-write leaves no half file to resume from.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def clustering(self) -> Optional[_fleet.Clustering]:
        path = self.dir / "clusters.json"
        return _fleet.Clustering(path.read_text()) if path.exists() else None

    def save_clustering(self, clustering: _fleet.Clustering) -> None:
        self._write(self.dir / "clusters.json", clustering.json.encode())

    def base_model(self, cluster: int) -> Optional[bytes]:
        path = self.dir / "base" / f"{cluster}.model"
        return path.read_bytes() if path.exists() else None

    def save_base_model(self, cluster: int, model: bytes) -> None:
        self._write(self.dir / "base" / f"{cluster}.model", model)

    def entity(self, name: str) -> Optional[tuple[bytes, dict[str, Any]]]:
        model, record = self._entity_paths(name)
        if model.exists() and record.exists():
            return model.read_bytes(), json.loads(record.read_text())
        return None

    def save_entity(self, name: str, model: bytes, record: dict[str, Any]) -> None:
        model_path, record_path = self._entity_paths(name)
        self._write(model_path, model)
        self._write(record_path, json.dumps(record).encode())

    def _entity_paths(self, name: str) -> tuple[pathlib.Path, pathlib.Path]:
        # Files named by the name's hash: any name (a path, "..", one differing only in case
        # on a case-blind file system, one too long for a file name) stays one file inside.
        safe = hashlib.sha256(name.encode()).hexdigest()
        return self.dir / "entities" / f"{safe}.model", self.dir / "entities" / f"{safe}.json"
