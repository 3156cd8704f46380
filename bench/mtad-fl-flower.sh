#!/usr/bin/env bash
# MTAD-FL's Table 2 setting on SKAB through Flower: a real SuperLink and three SuperNodes on
# loopback (flower/run-local.sh), one run per method, with the settings of bench/mtad-fl.sh's
# federated rows (4 rounds of 2 epochs, filters 128/256/128, seed 1). Writes
# bench/results/mtad-fl-flower.md: per method, node and round, the node's detection measures,
# the round's seconds and the bytes of tensor values each node sent and received.
#
#   bench/mtad-fl-flower.sh          # needs target/python/test (bash .ci/python makes it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-4}
EPOCHS=${EPOCHS:-2}
FILTERS=${FILTERS:-128,256,128}
SEED=${SEED:-1}
METHODS=${METHODS:-mtad-fl fedavg fedtl}
RESULTS=$ROOT/bench/results
WORK=$ROOT/target/bench-mtad-fl-flower
mkdir -p "$WORK"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
runs=()
for method in $METHODS; do
  OUT=$WORK/$method METHOD=$method ROUNDS=$ROUNDS EPOCHS=$EPOCHS FILTERS=$FILTERS SEED=$SEED \
    "$ROOT/flower/run-local.sh" > "$WORK-$method.log" 2>&1 || { echo "$method failed: see $WORK-$method.log" >&2; exit 1; }
  runs+=("$WORK/$method")
done
{
  echo "# MTAD-FL through Flower (SKAB)"
  echo
  echo "The federated rows of mtad-fl.md, run as a real federation: a Flower 1.42.0 SuperLink and three"
  echo "SuperNodes (valve1, valve2, other) on loopback, each training and detecting on its own SKAB group"
  echo "through vigil's Python package (flower/, docs/federated.md). ${ROUNDS} rounds of ${EPOCHS} epochs, filters"
  echo "${FILTERS}, seed ${SEED}; each node's steps split 70/30 chronologically. Nodes start from the network"
  echo "the run's seed draws, unsent. A step is alarmed when the classifier's probability passes 0.5."
  echo
  echo "Round s: the server's wall time for the round, training and detection exchanges together (the"
  echo "slowest node's training, Flower's process start-ups and transfers). Sent / received: the bytes of"
  echo "f32 tensor values a node sent and received in the round (the hidden layers for MTAD-FL, the whole"
  echo "Local model for FedAvg and FedTL); the nodes' values, where they differ, separated by slashes."
  echo
  python3 "$ROOT/bench/mtad-fl/flower_summary.py" "${runs[@]}"
  echo "Commit $COMMIT, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)). Command:"
  echo
  echo '```'
  echo "bench/mtad-fl-flower.sh   # ROUNDS=$ROUNDS EPOCHS=$EPOCHS FILTERS=$FILTERS SEED=$SEED METHODS=\"$METHODS\""
  echo '```'
} > "$RESULTS/mtad-fl-flower.md.partial"
mv "$RESULTS/mtad-fl-flower.md.partial" "$RESULTS/mtad-fl-flower.md"
echo "wrote $RESULTS/mtad-fl-flower.md"
