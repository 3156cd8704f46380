#!/usr/bin/env bash
# TopoMAD on generated microservice systems and the recorded testbed
# (crates/vigil-models/examples/topomad_bench.rs):
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
TESTBED=${TESTBED:-$ROOT/bench/testbed/data}
# Rows go to a partial file as they come, kept if a run fails (to see how far it got); the
# table is written beside and moved into place only when complete.
tmp=$RESULTS/topomad.jsonl.partial
"$BIN" --systems "$SYSTEMS" --models "$MODELS" > "$tmp"
"$BIN" --testbed "$TESTBED" --models "$MODELS" >> "$tmp"
mv "$tmp" "$RESULTS/topomad.jsonl"
{
  echo "# TopoMAD: detection and fault localisation on microservice systems"
  echo
  echo 'Generated systems (`vigil system generate`, vigil_core::microservices): 8 components reporting'
  echo "cpu, memory, latency, rate and errors, 3,000 fault-free training steps and 3,000 test steps with"
  echo "12 faults (CPU hog, memory leak, slow queries, error burst), one component at a time; latency and"
  echo "errors reach the callers a step per hop later, and calls past a timeout fail. The recorded testbed"
  echo '(`bench/testbed/record.py`, data in `bench/testbed/data`): front, proxy, app, PostgreSQL and Redis on'
  echo "this machine under load, five metrics each per second, 8 faults injected one at a time."
  echo
  echo 'Detection: precision, recall and point-wise F1 at the label-free `auto` threshold calibrated on the'
  echo "training series, point-adjusted F1 (inflated, shown beside), VUS-PR (threshold-free), and the"
  echo "best-F1 oracle (chooses its threshold with the test labels; reference only). Localisation: for"
  echo "every fault, components ranked by their summed per-metric contributions over the fault's steps;"
  echo "top-1 and top-3 accuracy (a tie counts against). Models train with their defaults;"
  echo '`topomad-nograph` is TopoMAD with no edges (every component alone). Zoo detectors are ranked by'
  echo "point-wise F1 and the best three marked. Means over systems. Reading: docs/models.md, TopoMAD."
  echo
  python3 "$ROOT/bench/topomad/summarize.py" "$RESULTS/topomad.jsonl"
  echo
  echo "Made by \`SYSTEMS=$SYSTEMS MODELS=$MODELS bench/topomad.sh\` ($(date -u +%F), $(nproc) cores, commit $COMMIT)."
} > "$RESULTS/topomad.md.partial"
mv "$RESULTS/topomad.md.partial" "$RESULTS/topomad.md"
echo "wrote $RESULTS/topomad.md and topomad.jsonl"
