"""bench/python.sh's measurements (run it, not this file): the Python package's scoring path
against the same work in Rust, and vigil against PyOD on SMD. Writes a Markdown report."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import tempfile
import time

import numpy as np

import vigil


def periodic(steps: int, metrics: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    phases = np.linspace(0.0, np.pi, metrics)[None, :]
    return np.sin(2 * np.pi * t / 288 + phases) + 0.05 * rng.standard_normal((steps, metrics))


def overhead(args, work: pathlib.Path) -> list[str]:
    """Scoring args.steps points: Python (array in, scores and alarms out) against the same
    model and work in process in Rust (examples/score_timing.rs), and the CLI end to end."""
    train = periodic(20_000, 5, seed=1)
    test = periodic(args.steps, 5, seed=2)
    np.save(work / "test.npy", test)
    rows = [
        f"Scoring {args.steps:,} steps of 5 metrics (generated; float64 .npy), median of "
        f"{args.repeats} runs each, after one warm-up run:",
        "",
        "| detector | Python: score + decide (s) | Rust in process: same (s) | Python / Rust | CLI `vigil detect` end to end, CSV out (s) |",
        "|---|---|---|---|---|",
    ]
    for name, config in [("pca", {"window": 5}), ("usad", {"window": 5, "epochs": 1})]:
        detector = vigil.Detector(name, seed=0, **config).fit(train)
        model_dir = work / f"model-{name}"
        detector.save(model_dir)
        python = []
        for _ in range(args.repeats + 1):
            started = time.perf_counter()
            scores = detector.score(test)
            detector.decide(scores.total)
            python.append(time.perf_counter() - started)
        done = subprocess.run(
            [args.timing, str(model_dir), str(work / "test.npy"), str(args.repeats + 1)],
            capture_output=True, text=True, check=True,
        )
        rust = json.loads(done.stdout)["seconds"]
        cli = []
        for _ in range(2):
            started = time.perf_counter()
            subprocess.run(
                [args.vigil, "detect", "--model", str(model_dir), "--input", str(work / "test.npy"),
                 "--output", str(work / "scores.csv")],
                check=True, capture_output=True,
            )
            cli.append(time.perf_counter() - started)
        p, r = statistics.median(python[1:]), statistics.median(rust[1:])
        rows.append(f"| {name} | {p:.3f} | {r:.3f} | {p / r:.3f} | {cli[1]:.2f} |")
    return rows


def smd(machine: str, data: pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    read = lambda part: np.loadtxt(data / "SMD" / part / f"{machine}.txt", delimiter=",")
    return read("train"), read("test"), read("test_label").astype(np.int64)


def timed(fit_score):
    started = time.perf_counter()
    scores = fit_score()
    return time.perf_counter() - started, scores


def against_pyod(args) -> list[str]:
    """Fit on a machine's train split, score its test split: seconds and ROC-AUC, per tool."""
    from pyod.models.iforest import IForest
    from pyod.models.ocsvm import OCSVM
    from pyod.models.pca import PCA

    def pyod(model):
        def run(train, test):
            model.fit(train)
            return model.decision_function(test)
        return run

    def ours(name, **config):
        def run(train, test):
            return vigil.Detector(name, seed=0, **config).fit(train).decision_function(test)
        return run

    tools = [
        ("PCA", "PyOD `PCA()`", lambda: pyod(PCA(random_state=0))),
        ("PCA", "vigil `pca`, window 1", lambda: ours("pca", window=1)),
        ("PCA", "vigil `pca` (default window)", lambda: ours("pca")),
        ("IForest", "PyOD `IForest()`", lambda: pyod(IForest(random_state=0))),
        ("IForest", "vigil `iforest`, window 1", lambda: ours("iforest", window=1)),
        ("IForest", "vigil `iforest` (default window)", lambda: ours("iforest")),
        ("OCSVM", "PyOD `OCSVM()`", lambda: pyod(OCSVM())),
        ("OCSVM", "vigil `ocsvm`, window 1", lambda: ours("ocsvm", window=1)),
        ("OCSVM", "vigil `ocsvm` (default window)", lambda: ours("ocsvm")),
    ]
    results = {label: [] for _, label, _ in tools}
    for machine in args.machines:
        train, test, labels = smd(machine, pathlib.Path(args.data))
        for _, label, make in tools:
            seconds, scores = timed(lambda: make()(train, test))
            results[label].append((seconds, vigil.metrics.roc_auc(scores, labels)))
    rows = [
        f"SMD machines {', '.join(args.machines)} (train split fitted, test split scored; "
        "~23.7k steps × 38 metrics each): total fit + score seconds, mean ROC-AUC over the machines.",
        "",
        "| model | tool | fit + score (s, all machines) | mean ROC-AUC |",
        "|---|---|---|---|",
    ]
    for model, label, _ in tools:
        seconds = sum(s for s, _ in results[label])
        auc = statistics.mean(a for _, a in results[label])
        rows.append(f"| {model} | {label} | {seconds:.1f} | {auc:.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--vigil", required=True)
    parser.add_argument("--timing", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--machines", nargs="+", default=["machine-1-6", "machine-2-1", "machine-3-3"])
    parser.add_argument("--command", required=True)
    args = parser.parse_args()
    import pyod, sklearn

    with tempfile.TemporaryDirectory() as work:
        first = overhead(args, pathlib.Path(work))
    second = against_pyod(args)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    report = [
        "# The Python package: its overhead, and vigil against PyOD",
        "",
        f"Made by `{args.command}` on {time.strftime('%Y-%m-%d')}, on one machine: {cpu}, "
        f"{os.cpu_count()} cores; Python {platform.python_version()}, vigil {vigil.__version__}, "
        f"PyOD {pyod.__version__}, scikit-learn {sklearn.__version__}, NumPy {np.__version__}.",
        "",
        "## The Python path against the same work in Rust",
        "",
        *first,
        "",
        "Python / Rust is the package's overhead (goal: under 1.05): the array's conversion and one",
        "copy in, the call, the results handed out without a copy. The CLI end to end also reads",
        "the .npy and writes every score, threshold, alarm and contribution as CSV.",
        "",
        "## Against PyOD",
        "",
        *second,
        "",
        "Each tool as a user gets it: PyOD's detectors with their defaults on the raw rows;",
        "vigil's pipeline with its defaults (min-max normalised on train, windows of the",
        "detector's default length), and with window 1 (one row at a time, as PyOD scores).",
        "ROC-AUC looks at the test labels; no parameter was chosen on them. PyOD's deep detectors",
        "need PyTorch, which is not installed here, so they are not compared.",
    ]
    pathlib.Path(args.out).write_text("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
