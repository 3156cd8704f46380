"""The Python examples run as a newcomer runs them, and say what they found."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def test_the_quickstart_trains_scores_evaluates_and_draws(tmp_path):
    figure = tmp_path / "quickstart.png"
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "quickstart.py"), str(figure)],
        capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "F1 " in done.stdout and "VUS-PR" in done.stdout
    # The incident is found: latency is the metric most to blame.
    assert "metrics most to blame for the incident: ['latency'" in done.stdout
    assert figure.stat().st_size > 10_000 and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
