#!/usr/bin/env bash
# Issue 3's table: GON, USAD and Isolation Forest on the 8 SMD machines and the 34 SKAB
# experiments, each (detector, entity) in a process of its own (`vigil bench --memory`), with
# PA-F1 under POT, best F1, peak memory, F1/GB and train/test seconds; the GON paper's Table 3
# beside it.
#
#     bench/gon_table.sh [DATA_DIR]    # writes bench/results/gon-{smd,skab}-memory.md and gon.md
#
# About 10 minutes on 2 cores. Run it on an otherwise idle machine: the seconds are wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
cargo build --release -q -p vigil-cli
for dataset in smd skab; do
    target/release/vigil bench --dataset "$dataset" --data-dir "$data" \
        --detectors gon,usad,iforest --memory --seed 1 -q \
        --output "bench/results/gon-$dataset-memory.md" >/dev/null
done
python3 bench/analysis/gon_table.py bench/results/gon-smd-memory.md \
    bench/results/gon-skab-memory.md > bench/results/gon.md
cat bench/results/gon.md
