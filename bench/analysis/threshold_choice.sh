#!/usr/bin/env bash
# Why `pot-batch` (POT fitted on the judged scores) is vigil bench's headline threshold:
# trains DETECTOR on each SMD machine, keeps its training (calibration) and test scores, and
# prints point-adjusted F1 under several label-free thresholds (docs/thresholds.md).
#
#     bench/analysis/threshold_choice.sh usad [DATA_DIR]     # needs: pip install numpy scipy
#
# POT here is scipy's GPD maximum likelihood, an implementation independent of vigil's.
set -euo pipefail
cd "$(dirname "$0")/../.."
detector="${1:-pca}"
data="${2:-../shared/data}/SMD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release -q
for f in "$data"/train/*.txt; do
    m="$(basename "$f" .txt)"
    target/release/vigil train -q --detector "$detector" --seed 1 --train "$f" --model "$work/$m" >/dev/null
    target/release/vigil detect -q --model "$work/$m" --input "$data/test/$m.txt" --output "$work/$m.csv" >/dev/null
done
python3 bench/analysis/threshold_choice.py "$work" "$data"
