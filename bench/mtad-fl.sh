#!/usr/bin/env bash
# MTAD-FL's Table 2 on SKAB in one process (crates/vigil-models/examples/mtad_fl_bench.rs):
# single-task Local and Transfer models, MTAD-FL with each LGF-PKT distance, FedAvg and FedTL,
# every node on its own labelled data and only named tensors passing between nodes (through
# vigil_models::federated, the functions Flower's server app calls). Writes
# bench/results/mtad-fl.md (the tables, then the commands) and keeps every row as a JSON line in
# bench/results/mtad-fl.jsonl.
#
#   bench/mtad-fl.sh                                  # the defaults below
#   SINGLE_EPOCHS=80 ROUND_EPOCHS=80 bench/mtad-fl.sh # the paper's 80 epochs (hours on 2 cores)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/examples/mtad_fl_bench
DATA=${DATA:-$ROOT/../shared/data}
SETTING=${SETTING:-skab}
SPLIT=${SPLIT:-chronological}
SINGLE_EPOCHS=${SINGLE_EPOCHS:-10}
ROUNDS=${ROUNDS:-4}
ROUND_EPOCHS=${ROUND_EPOCHS:-2}
FEDERATED=${FEDERATED:-mtad-fl-combined,mtad-fl-euclidean,mtad-fl-cosine,fedavg,fedtl}
RESULTS=$ROOT/bench/results
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
# Always build: a binary older than the checkout would be stamped with the wrong commit.
(cd "$ROOT" && cargo build --release --workspace --all-targets)
single=("$BIN" --data "$DATA" --setting "$SETTING" --split "$SPLIT" --methods local,transfer --epochs "$SINGLE_EPOCHS")
federated=("$BIN" --data "$DATA" --setting "$SETTING" --split "$SPLIT" --methods "$FEDERATED" --rounds "$ROUNDS" --epochs "$ROUND_EPOCHS")
# Rows go to a partial file as they come, kept if a run fails (to see how far it got).
tmp=$RESULTS/mtad-fl.jsonl.partial
"${single[@]}" > "$tmp"
"${federated[@]}" >> "$tmp" 2> "$RESULTS/mtad-fl.peers.log"
mv "$tmp" "$RESULTS/mtad-fl.jsonl"
{
  echo "# MTAD-FL: single-task and federated detection (${SETTING^^})"
  echo
  echo "Hao et al.'s Table 2 setting, as far as the paper gives it (setting \`$SETTING\`): nodes are SKAB's"
  echo "valve1, valve2 and other groups (each group's experiments end to end; the paper's single-task SKAB"
  echo "figures are valve1's), or SMD's machine-1-1 … 1-4 test sets; 70% of each node's steps train and 30%"
  echo "test ($SPLIT split), each metric scaled to [0, 1] on the training part; supervised classifiers of"
  echo "single steps (window 1) trained by cross-entropy with AdamW (learning rate 0.02, batches of 128)."
  echo "Federated: ${ROUNDS} rounds, every node starting from one broadcast network. A step is alarmed when"
  echo "the classifier's probability passes 0.5."
  echo
  echo "Epochs: the paper trains 80; here ${SINGLE_EPOCHS} per single-task fit and ${ROUND_EPOCHS} per model per round"
  echo "(${ROUNDS} rounds), to fit a 2-core machine (an epoch of the Transfer model on valve1 takes ~12 s)."
  echo "Point-wise precision, recall, F1 and MCC; affiliation F1 and VUS-PR beside (they do not inflate);"
  echo "the paper's precision / recall / F1 in the last column (its federated rows average 4 rounds and do"
  echo "not say over which nodes). Sent / received: the bytes of f32 tensor values a node sent and received"
  echo "in the round (the hidden layers for MTAD-FL, the whole Local model for FedAvg and FedTL). FedKD is"
  echo "not run yet. Which peer each node took every round: mtad-fl.peers.log. The same federated methods"
  echo "through a real Flower federation, with each round's wall time: mtad-fl-flower.md."
  echo
  python3 "$ROOT/bench/mtad-fl/summarize.py" "$RESULTS/mtad-fl.jsonl"
  echo "Commit $COMMIT, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)). Commands:"
  echo
  echo '```'
  echo "bench/mtad-fl.sh   # SETTING=$SETTING SPLIT=$SPLIT SINGLE_EPOCHS=$SINGLE_EPOCHS ROUNDS=$ROUNDS ROUND_EPOCHS=$ROUND_EPOCHS"
  echo "${single[*]#$ROOT/}"
  echo "${federated[*]#$ROOT/}"
  echo '```'
} > "$RESULTS/mtad-fl.md.partial"
mv "$RESULTS/mtad-fl.md.partial" "$RESULTS/mtad-fl.md"
echo "wrote $RESULTS/mtad-fl.md"
