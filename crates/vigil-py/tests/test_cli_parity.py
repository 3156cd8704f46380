"""Every detector, fitted and scored through Python, gives the CLI's scores, thresholds and
alarms to the bit for the same data, config and seed; and each side reads the other's models."""

from __future__ import annotations

import csv
import json
import pathlib
import subprocess

import numpy as np
import pytest

import vigil
from conftest import QUICK_CONFIGS, training_labels

SEED = 3


def test_the_quick_configs_cover_every_registered_detector():
    assert sorted(QUICK_CONFIGS) == sorted(d["name"] for d in vigil.detectors())


def write_csv(path: pathlib.Path, x: np.ndarray, labels=None) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([f"m{j}" for j in range(x.shape[1])] + (["label"] if labels is not None else []))
        # repr is the shortest text that reads back as the same float64 (so does Rust's).
        rows = [[repr(float(v)) for v in row] for row in x]
        if labels is not None:
            rows = [row + [str(int(label))] for row, label in zip(rows, labels)]
        out.writerows(rows)


def read_detect_csv(path: pathlib.Path, metrics: int) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    column = lambda name, dtype: np.array([float(r[name]) for r in rows], dtype=dtype)
    return {
        "score": column("score", np.float64),
        "threshold": column("threshold", np.float64),
        "alarm": column("alarm", np.float64).astype(np.uint8),
        "anomaly_score": column("anomaly_score", np.float64),
        "per_metric": np.stack([column(f"m{j}", np.float32) for j in range(metrics)], axis=1),
    }


def toml_value(value) -> str:
    """A config value as TOML: JSON's numbers, strings and arrays are TOML's too; an object
    becomes an inline table."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def cli(vigil_bin: pathlib.Path, *args: str) -> None:
    done = subprocess.run([str(vigil_bin), *args], capture_output=True, text=True)
    assert done.returncode == 0, f"vigil {' '.join(args)} failed:\n{done.stderr}"


@pytest.mark.parametrize("name", sorted(QUICK_CONFIGS))
def test_python_and_the_cli_give_the_same_scores_and_alarms(name, series, vigil_bin, tmp_path):
    train, test, _ = series
    config = QUICK_CONFIGS[name]
    y = training_labels(name, len(train))
    write_csv(tmp_path / "train.csv", train, y)
    write_csv(tmp_path / "test.csv", test)
    toml = [f"detector = {json.dumps(name)}", f"seed = {SEED}", "[detector_config]"]
    toml += [f"{key} = {toml_value(value)}" for key, value in config.items()]
    (tmp_path / "config.toml").write_text("\n".join(toml) + "\n")
    model_dir = tmp_path / "model"
    cli(vigil_bin, "train", "--train", str(tmp_path / "train.csv"), "--model", str(model_dir),
        "--config", str(tmp_path / "config.toml"))
    cli(vigil_bin, "detect", "--model", str(model_dir), "--input", str(tmp_path / "test.csv"),
        "--output", str(tmp_path / "scores.csv"))
    expected = read_detect_csv(tmp_path / "scores.csv", test.shape[1])

    detector = vigil.Detector(name, seed=SEED, **config).fit(train, y)
    scores = detector.score(test)
    assert scores.total.dtype == np.float64 and scores.per_metric.dtype == np.float32
    assert scores.per_metric.shape == test.shape
    assert scores.total.tobytes() == expected["score"].tobytes()
    assert scores.per_metric.tobytes() == expected["per_metric"].tobytes()
    thresholds, alarms = detector.decide(scores.total)
    assert thresholds.tobytes() == expected["threshold"].tobytes()
    assert alarms.tobytes() == expected["alarm"].tobytes()
    rule = vigil.thresholds.Auto().fit(detector.calibration_scores_)
    assert rule.predict(scores.total).tobytes() == expected["alarm"].tobytes()
    assert rule.anomaly_score(scores.total).tobytes() == expected["anomaly_score"].tobytes()

    # The CLI's model directory, read by Python, scores the same; Python's, read by the CLI, too.
    from_cli = vigil.Detector.load(model_dir)
    assert from_cli.name == name and from_cli.config == detector.manifest["config"]
    assert from_cli.score(test).total.tobytes() == expected["score"].tobytes()
    detector.save(tmp_path / "from-python")
    cli(vigil_bin, "detect", "--model", str(tmp_path / "from-python"), "--input",
        str(tmp_path / "test.csv"), "--output", str(tmp_path / "again.csv"))
    again = read_detect_csv(tmp_path / "again.csv", test.shape[1])
    assert again["score"].tobytes() == expected["score"].tobytes()
