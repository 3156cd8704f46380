#!/usr/bin/env bash
# The Python package's benchmark: its scoring path against the same work in Rust (the package's
# overhead) and against the CLI, the fleet's transfers on Ray against `vigil fleet transfer
# --jobs 2`, and vigil against PyOD's IForest, PCA and OCSVM on SMD.
#
#   bash bench/python.sh [--steps 1000000] [--machines machine-1-6 ...]
#
# Writes bench/results/python.md. Needs ../shared/data (SMD) and PyPI (pyod, scikit-learn, ray).
set -euo pipefail
cd "$(dirname "$0")/.."
# Built with the whole workspace, as CI builds it (one package alone unifies other features and
# builds much of the tree again).
cargo build --release -q --workspace --bins --examples
venv=target/bench-python
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q . pyod scikit-learn "ray>=2.50"
"$venv/bin/python" bench/python_bench.py --out bench/results/python.md \
  --vigil target/release/vigil --timing target/release/examples/score_timing \
  --data ../shared/data --command "bash bench/python.sh $*" "$@"
