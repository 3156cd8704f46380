"""The ServerApp: reads the run's settings, runs the chosen strategy for the run's rounds, and
writes what it measured (per round: seconds, nodes, bytes, each node's detection) to
``results-file`` when set."""

from __future__ import annotations

import json
import os
from logging import INFO
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from .settings import RunSettings
from .strategies import LgfPkt, VigilFedAvg

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = RunSettings.of(context.run_config)
    strategy = LgfPkt(settings) if settings.method == "mtad-fl" else VigilFedAvg(settings)
    # Nothing is broadcast: every node draws the same first network from the run's seed.
    try:
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(),
            num_rounds=settings.rounds,
            timeout=settings.round_timeout,
            train_config=ConfigRecord(),
            evaluate_config=ConfigRecord(),
        )
    finally:
        # Also when the run stops part-way: the rounds done are kept.
        if settings.results_file:
            write_results(Path(settings.results_file), settings, strategy.log.rounds)


def write_results(path: Path, settings: RunSettings, rounds: list) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"settings": settings.__dict__, "rounds": rounds}, indent=1))
    os.replace(partial, path)
    log(INFO, "results of %d rounds written to %s", len(rounds), path)
