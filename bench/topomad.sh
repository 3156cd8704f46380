#!/usr/bin/env bash
# TopoMAD on generated microservice systems (crates/vigil-models/examples/topomad_bench.rs):
# detection and fault localisation for TopoMAD, the same model without the graph, and zoo
# detectors whose per-metric contributions are summed per component; writes
# bench/results/topomad.md (the table, then the command) and keeps every run as a JSON line in
# bench/results/topomad.jsonl.
#
#   bench/topomad.sh                                   # the defaults below
#   SYSTEMS=1,2,3,4,5 MODELS=topomad,topomad-nograph,pca bench/topomad.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/examples/topomad_bench
SYSTEMS=${SYSTEMS:-1,2,3}
MODELS=${MODELS:-topomad,topomad-nograph,pca,iforest,usad,vae,lstm-ndt,gdn}
RESULTS=$ROOT/bench/results
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
# Always build: a binary older than the checkout would be stamped with the wrong commit.
(cd "$ROOT" && cargo build --release --workspace --all-targets)
tmp=$RESULTS/topomad.jsonl.partial
"$BIN" --systems "$SYSTEMS" --models "$MODELS" > "$tmp"
mv "$tmp" "$RESULTS/topomad.jsonl"
{
  echo "# TopoMAD: detection and fault localisation on generated microservice systems"
  echo
  echo 'Each system (`vigil system generate`, vigil_core::microservices) has 8 components reporting cpu,'
  echo "memory, latency, rate and errors, 3,000 fault-free training steps and 3,000 test steps with 12"
  echo "faults (CPU hog, memory leak, slow queries, error burst), one component at a time, whose latency"
  echo "and errors reach the callers a step per hop later. Detection: precision, recall and point-wise"
  echo 'F1 at the label-free `auto` threshold calibrated on the training series, point-adjusted F1 (inflated,'
  echo "shown beside), VUS-PR (threshold-free), and the best-F1 oracle (chooses its threshold with the test"
  echo "labels; reference only). Localisation: for every fault, components ranked by their summed"
  echo "per-metric contributions over the fault's steps; top-1 and top-3 accuracy. Models train with their"
  echo 'defaults; `topomad-nograph` is TopoMAD with no edges (every component alone). Zoo detectors are'
  echo "ranked by point-wise F1; the best three are marked. Means over systems."
  echo
  python3 "$ROOT/bench/topomad/summarize.py" "$RESULTS/topomad.jsonl"
  echo
  echo "Made by \`SYSTEMS=$SYSTEMS MODELS=$MODELS bench/topomad.sh\` ($(date -u +%F), $(nproc) cores, commit $COMMIT)."
} > "$RESULTS/topomad.md"
echo "wrote $RESULTS/topomad.md and topomad.jsonl"
