"""The fleet pipeline on Ray (``ray.init(num_cpus=2)``): on a generated fleet of 300 entities it
makes the models ``vigil fleet`` makes, and a task whose worker dies mid-run is retried to the
same results; a checkpointed run started again does only what is left."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import vigil
import vigil.fleet

import ray
import vigil.ray

# A small USAD, so that 300 entities adapt in seconds; the same for the CLI (a config file).
CONFIG = {"window": 5, "latent": 4, "batch_size": 32}
SEED = 5


@pytest.fixture(scope="module")
def generated(tmp_path_factory, vigil_bin):
    """300 entities of 3 metrics from 4 archetypes (`vigil fleet generate`, period 48): the first
    60 offline (clustered, base models), the other 240 online (adapted), read as the CLI reads
    them."""
    root = tmp_path_factory.mktemp("fleet")
    run = lambda *args: subprocess.run([str(vigil_bin), *args, "-q"], cwd=root, check=True, capture_output=True)
    run("fleet", "generate", "--out", "gen", "--entities", "300", "--archetypes", "4", "--metrics", "3",
        "--period", "48", "--seed", "11")
    names = sorted(p.stem for p in (root / "gen" / "train").glob("*.csv"))
    for part, chosen in (("off", names[:60]), ("on", names[60:])):
        (root / part).mkdir()
        for name in chosen:
            (root / part / f"{name}.csv").symlink_to(root / "gen" / "train" / f"{name}.csv")
    read = lambda part, name: vigil.read_series(root / "gen" / part / f"{name}.csv")
    metric_names = read("train", names[0])[1]
    return {
        "root": root,
        "run": run,
        "metric_names": metric_names,
        "offline": {n: read("train", n)[0] for n in names[:60]},
        "online": {n: read("train", n)[0] for n in names[60:]},
        "test": {n: read("test", n)[0] for n in names[60:]},
    }


def start_ray(**env_vars: str) -> None:
    """Ray on this machine, two CPUs; its workers get `env_vars`."""
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env_vars} if env_vars else None)


@pytest.fixture(scope="module")
def cluster_of_two_cpus():
    start_ray()
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def uninterrupted(generated, cluster_of_two_cpus):
    return run_fleet(generated)


def run_fleet(generated, **extra):
    return vigil.ray.run_fleet(
        generated["offline"], generated["online"], test=generated["test"],
        metric_names=generated["metric_names"],
        cluster_options={"segment_length": 48, "clusters": 4}, config=CONFIG, seed=SEED,
        base_epochs=2, progress=False, **extra,
    )


def test_the_ray_pipeline_makes_the_models_vigil_fleet_makes(generated, uninterrupted):
    run = generated["run"]
    config = generated["root"] / "usad.toml"
    config.write_text("[detector_config]\n" + "".join(f"{k} = {v}\n" for k, v in CONFIG.items()))
    run("fleet", "cluster", "--entities", "off", "--fleet", "fleet", "--segment-length", "48", "--clusters", "4")
    run("fleet", "train-base", "--entities", "off", "--fleet", "fleet", "--detector", "usad", "--config",
        str(config), "--epochs", "2", "--seed", str(SEED))
    run("fleet", "transfer", "--entities", "on", "--fleet", "fleet", "--seed", str(SEED), "--jobs", "2")
    fleet = generated["root"] / "fleet"

    result = uninterrupted
    assert json.loads(result.clustering.json) == json.loads((fleet / "clusters.json").read_text())
    assert len(result.models) == 240 and len(result.scores) == 240
    transfers = {"full": 0, "partial": 0}
    for name, model in result.models.items():
        record = json.loads((fleet / "entities" / f"{name}.transfer.json").read_text())
        mine = result.records[name]
        # The lineage's base-model fingerprint covers the base's training time, so only the
        # clustering's and the settings' fingerprints can match.
        same = lambda r: (r["cluster"], r["transfer"], r["distance"], r["tau"], r["lineage"]["clustering"],
                          r["lineage"]["transfer"])
        assert same(mine) == same(record), name
        transfers[mine["transfer"]] += 1
        cli_model = vigil.Detector.load(fleet / "entities" / name)
        expected = cli_model.score(generated["test"][name]).total
        assert result.scores[name].total.tobytes() == expected.tobytes(), name
    for c, model in result.base_models.items():
        probe = generated["test"][sorted(generated["test"])[0]]
        cli_base = vigil.Detector.load(fleet / "base" / f"cluster-{c}")
        assert vigil.Detector.from_bytes(model).score(probe).total.tobytes() == cli_base.score(probe).total.tobytes()
    # Both strategies ran, so both paths of the transfer were compared.
    assert transfers["full"] > 0 and transfers["partial"] > 0, transfers


def test_a_task_whose_worker_dies_is_retried_to_the_same_results(generated, uninterrupted, tmp_path):
    """The hook ends the worker of the first transfer to finish its work, before it returns:
    the result is lost with the worker and the task runs again."""
    marker = tmp_path / "crash-once"
    try:
        start_ray(**{vigil.ray._CRASH_ONCE: str(marker)})
        # Without retries the lost task fails the run, naming it (so the option reaches Ray)...
        marker.touch()
        with pytest.raises(RuntimeError, match=r"\d+ of 240 transfers failed; the first, entity-\d+ \(with \d+ more in its task\)"):
            run_fleet(generated, max_retries=0, entities_per_task=8)
        assert not marker.exists()
        # ... and with them, the run ends as an uninterrupted one does.
        marker.touch()
        crashed = run_fleet(generated, max_retries=1, entities_per_task=8)
    finally:
        start_ray()
    assert not marker.exists(), "no worker died mid-run"
    assert crashed.models.keys() == uninterrupted.models.keys()
    for name in uninterrupted.models:
        assert crashed.scores[name].total.tobytes() == uninterrupted.scores[name].total.tobytes(), name


def test_a_checkpointed_run_started_again_does_only_what_is_left(generated, uninterrupted, tmp_path):
    folder = tmp_path / "run"
    first = run_fleet(generated, checkpoint=str(folder))
    entities, bases = folder / "entities", folder / "base"
    # As if the run had stopped before one base model and five entities: their files are gone.
    (bases / "1.model").unlink()
    for name in sorted(first.models)[:5]:
        (entities / f"{hashlib.sha256(name.encode()).hexdigest()}.model").unlink()
    stamps = lambda folder: {p.name: p.stat().st_mtime_ns for p in folder.glob("*.model")}
    kept_entities, kept_bases = stamps(entities), stamps(bases)
    assert len(kept_entities) == 235 and len(kept_bases) == len(first.base_models) - 1
    again = run_fleet(generated, checkpoint=str(folder))
    # What was kept was not made again; what was missing was.
    assert {k: v for k, v in stamps(entities).items() if k in kept_entities} == kept_entities
    assert {k: v for k, v in stamps(bases).items() if k in kept_bases} == kept_bases
    assert len(stamps(entities)) == 240 and (bases / "1.model").exists()
    for name in first.models:
        assert again.scores[name].total.tobytes() == uninterrupted.scores[name].total.tobytes(), name
    # A folder made with other settings or other data is refused, not mixed in.
    with pytest.raises(ValueError, match=r"holds a run with other data or settings"):
        run_fleet(generated, checkpoint=str(folder), epochs=2)
    changed = dict(generated, online=dict(generated["online"]))
    name = sorted(changed["online"])[0]
    changed["online"][name] = changed["online"][name] + 1.0
    with pytest.raises(ValueError, match=r"holds a run with other data or settings"):
        run_fleet(changed, checkpoint=str(folder))
