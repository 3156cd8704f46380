#!/usr/bin/env bash
# Scores for the thresholds table (bench/results/thresholds.md): trains each detector on every
# entity of the four benchmarks with seed 1 and keeps its calibration and test scores with the
# test labels, as `OUT/<dataset>/<detector>/<entity>.json`. Threshold rules are then compared
# on these same scores (bench/thresholds/table.sh) without training again.
#
#     bench/thresholds/keep_scores.sh OUT [DATA_DIR] [DETECTORS] [DATASETS]
#
# Defaults: DATA_DIR ../shared/data, DETECTORS pca,usad,tranad,lstm-ndt,gon, DATASETS
# skab,msl,smap,smd (fastest first). A run that stops goes on where it stopped (bench's journal).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: keep_scores.sh OUT [DATA_DIR] [DETECTORS] [DATASETS]}"
data="${2:-../shared/data}"
detectors="${3:-pca,usad,tranad,lstm-ndt,gon}"
datasets="${4:-skab,msl,smap,smd}"
cargo build --release -q -p vigil-cli
mkdir -p "$out"
for dataset in ${datasets//,/ }; do
    target/release/vigil bench --dataset "$dataset" --data-dir "$data" --detectors "$detectors" \
        --seed 1 --keep-scores "$out/$dataset" --output "$out/$dataset.md" -q
done
