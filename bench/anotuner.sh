#!/usr/bin/env bash
# The AnoTuner paper's feedback protocol (crates/vigil-models/examples/anotuner_feedback.rs)
# on SMD and SKAB: no fine-tuning, FP only, FN only, FP + FN, for AnoTuner and conventionally
# fine-tuned baselines; writes bench/results/anotuner.md (the table, then the command) and
# keeps every run as a JSON line in bench/results/anotuner.jsonl.
#
#   bench/anotuner.sh                      # the defaults below
#   SMD_SEEDS=1,2,3,4,5 SKAB_SEEDS=1,2,3,4,5 bench/anotuner.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/examples/anotuner_feedback
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
SMD_DETECTORS=${SMD_DETECTORS:-anotuner,usad,tranad}
SKAB_DETECTORS=${SKAB_DETECTORS:-anotuner,usad,tranad,omni-anomaly}
SMD_SEEDS=${SMD_SEEDS:-1}
SKAB_SEEDS=${SKAB_SEEDS:-1}
TUNE=(--tune-epochs 5 --history 1000 --clusters 10 --max-pieces 20 --max-piece-steps 60)
RESULTS=$ROOT/bench/results
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
# Always build: a binary older than the checkout would be stamped with the wrong commit.
(cd "$ROOT" && cargo build --release --workspace --all-targets)
# Rows go to a partial file as they come, kept if a run fails (to see how far it got).
tmp=$RESULTS/anotuner.jsonl.partial
: > "$tmp"
"$BIN" --dataset smd --data-dir "$DATA" --detectors "$SMD_DETECTORS" --seeds "$SMD_SEEDS" "${TUNE[@]}" >> "$tmp"
"$BIN" --dataset skab --data-dir "$DATA" --detectors "$SKAB_DETECTORS" --seeds "$SKAB_SEEDS" "${TUNE[@]}" >> "$tmp"
mv "$tmp" "$RESULTS/anotuner.jsonl"
{
  echo "# AnoTuner: feedback fine-tuning (the paper's protocol, §4.3)"
  echo
  echo "The first 30% of each test series is the feedback period, the last 70% the evaluation period;"
  echo "an operator simulator gives false-positive and false-negative feedback from the labels"
  echo "(crates/vigil-models/examples/anotuner_feedback.rs says how). PA-P/PA-R are point-adjusted"
  echo "precision and recall averaged over entities and seeds, PA-F1 their F1 (the paper's figure);"
  echo 'point F1, affiliation F1 and VUS-PR beside them; all alarms come from the label-free `auto`'
  echo "rule calibrated on the training series. Best F1 chooses its threshold with the evaluation"
  echo 'labels: an oracle, for reference only. `tuned` counts the runs that were fine-tuned (conventional'
  echo "fine-tuning has nothing to learn from missed anomalies alone). Reading: docs/models.md, AnoTuner."
  echo
  python3 "$ROOT/bench/anotuner/summarize.py" "$RESULTS/anotuner.jsonl"
  echo
  echo "Made by \`SMD_DETECTORS=$SMD_DETECTORS SKAB_DETECTORS=$SKAB_DETECTORS SMD_SEEDS=$SMD_SEEDS SKAB_SEEDS=$SKAB_SEEDS bench/anotuner.sh\` ($(date -u +%F), $(nproc) cores, commit $COMMIT)."
} > "$RESULTS/anotuner.md"
echo "wrote $RESULTS/anotuner.md and anotuner.jsonl"
