#!/usr/bin/env bash
# The Python package's benchmark: its scoring path against the same work in Rust (the package's
# overhead) and against the CLI, and vigil against PyOD's IForest, PCA and OCSVM on SMD.
#
#   bash bench/python.sh [--steps 1000000] [--machines machine-1-6 ...]
#
# Writes bench/results/python.md. Needs ../shared/data (SMD) and PyPI (pyod, scikit-learn).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vigil-cli
cargo build --release -q -p vigil-models --example score_timing
venv=target/bench-python
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q . pyod scikit-learn
"$venv/bin/python" bench/python_bench.py --out bench/results/python.md \
  --vigil target/release/vigil --timing target/release/examples/score_timing \
  --data ../shared/data --command "bash bench/python.sh $*" "$@"
