"""Shared fixtures of the Python package's tests: small generated series, configs small enough
to fit them in a second, and the `vigil` CLI to compare against."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]

# Configs that fit the tests' short series in about a second, one epoch each (the Rust tests'
# quick configs: crates/vigil-models/tests/support/small.rs).
QUICK_CONFIGS = {
    "pca": {"window": 5},
    "iforest": {"window": 5},
    "ocsvm": {"window": 5, "max_train": 1000},
    "usad": {"window": 10, "latent": 8, "batch_size": 16, "epochs": 1},
    "tranad": {"epochs": 1, "learning_rate": 0.003},
    "rnn-vae": {"window": 20, "hidden": 16, "dense": 16, "epochs": 1, "batch_size": 32},
    "omni-anomaly": {
        "window": 20, "hidden": 16, "dense": 16, "flow_layers": 4, "epochs": 1, "batch_size": 32,
    },
    "interfusion": {
        "window": 20, "hidden": 16, "dense": 16, "flow_levels": 4, "pretrain_epochs": 1,
        "epochs": 1, "batch_size": 32, "learning_rate": 0.005, "mcmc_iterations": 3,
    },
    "vae": {"window": 10, "hidden": 32, "epochs": 1, "batch_size": 32},
    "lstm-ndt": {"window": 20, "hidden": 16, "epochs": 1, "batch_size": 32},
    "gdn": {"embedding": 16, "top_k": 2, "epochs": 1, "batch_size": 32},
    "anomaly-transformer": {
        "window": 20, "d_model": 16, "heads": 4, "layers": 2, "feedforward": 16, "epochs": 1,
        "batch_size": 32, "learning_rate": 0.003,
    },
    "dagmm": {"hidden": [16, 8], "latent": 2, "epochs": 1, "batch_size": 128, "learning_rate": 0.003},
    "deep-svdd": {
        "window": 10, "hidden": [32, 16], "representation": 8, "epochs": 1, "batch_size": 32,
        "learning_rate": 0.001,
    },
    "gon": {"window": 5, "epochs": 1, "batch_size": 32},
    "anotuner": {"window": 10, "hidden": 24, "latent": 4, "epochs": 1, "batch_size": 32},
    # The three metrics as three components of one metric each, called in a chain (the
    # topology rides in the config, as it does once a model is fitted).
    "topomad": {
        "window": 10,
        "hidden": 6,
        "latent": 3,
        "epochs": 1,
        "batch_size": 32,
        "topology": {
            "components": ["a", "b", "c"],
            "metrics": ["value"],
            "columns": [0, 1, 2],
            "edges": [[0, 1], [1, 2]],
        },
    },
    "mtad-local": {
        "conv1_filters": 8, "conv2_filters": 16, "conv3_filters": 8, "epochs": 1,
        "batch_size": 32, "learning_rate": 0.01,
    },
    "mtad-transfer": {
        "conv1_filters": 8, "conv2_filters": 16, "conv3_filters": 8, "epochs": 1,
        "batch_size": 32, "learning_rate": 0.01,
    },
}

# The detectors that learn from training labels (MTAD-FL's classifiers).
SUPERVISED = {"mtad-local", "mtad-transfer"}


def training_labels(name: str, steps: int):
    """Labels for a supervised detector's training data (every 20th step from the 7th marked
    anomalous: both classes to learn), None for the others."""
    if name not in SUPERVISED:
        return None
    return (np.arange(steps) % 20 == 7).astype(np.int64)


def periodic_series(steps: int, metrics: int, seed: int) -> np.ndarray:
    """Phase-shifted sines with a little noise: a normal multivariate series."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    phases = np.linspace(0.0, np.pi, metrics)[None, :]
    return np.sin(2 * np.pi * t / 25 + phases) + 0.05 * rng.standard_normal((steps, metrics))


@pytest.fixture(scope="session")
def series() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, test, labels): 400 normal steps of 3 metrics, then 200 with a burst at 120-129."""
    train = periodic_series(400, 3, seed=1)
    test = periodic_series(200, 3, seed=2)
    labels = np.zeros(200, dtype=np.int64)
    test[120:130, 1] += 3.0
    labels[120:130] = 1
    return train, test, labels


@pytest.fixture(scope="session")
def vigil_bin() -> pathlib.Path:
    """The `vigil` CLI built from this checkout (VIGIL_BIN, else target/release/vigil)."""
    path = pathlib.Path(os.environ.get("VIGIL_BIN", REPO / "target" / "release" / "vigil"))
    if not path.is_file():
        pytest.fail(f"the vigil CLI is not at {path}: build it (cargo build --release) or set VIGIL_BIN")
    return path
