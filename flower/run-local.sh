#!/usr/bin/env bash
# A whole federation on this machine, on loopback: a Flower SuperLink, one SuperNode per SKAB
# group (valve1, valve2, other; each trains and detects on its own folder), and `flwr run` of
# this app; then everything stops. The server's per-round results go to $OUT/results.json, each
# node's to $OUT/<group>/state/run-*/round-*.json, every process's log beside them.
#
#   flower/run-local.sh                                     # MTAD-FL, 3 rounds, small networks
#   METHOD=fedavg ROUNDS=4 EPOCHS=2 FILTERS=128,256,128 flower/run-local.sh
#
# Needs a Python environment with vigil's package and flwr==1.42.0 (VENV; .ci/python makes one
# at target/python/test) and SKAB under DATA (../shared/data). Across machines, the same three
# commands run there: see docs/federated.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/target/python/test}
DATA=${DATA:-$ROOT/../shared/data}
OUT=${OUT:-$ROOT/target/flower-run}
METHOD=${METHOD:-mtad-fl}
DISTANCE=${DISTANCE:-combined}
ROUNDS=${ROUNDS:-3}
EPOCHS=${EPOCHS:-2}
FILTERS=${FILTERS:-16,32,16}
SEED=${SEED:-1}
NODES=(valve1 valve2 other)
for tool in flower-superlink flower-supernode flwr; do
  [ -x "$VENV/bin/$tool" ] || { echo "$VENV/bin/$tool is missing: set VENV to an environment with vigil and flwr==1.42.0 (bash .ci/python makes target/python/test)" >&2; exit 2; }
done
[ -d "$DATA/SKAB" ] || { echo "no SKAB under $DATA: set DATA to the folder holding SKAB/" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PATH="$VENV/bin:$PATH"
free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
# Each process in a session of its own, so that stopping it stops what it started too (the
# SuperLink's SuperExec starts a session of its own and exits with its parent).
trap 'for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done' EXIT
link=$(free_port)
FLWR_HOME=$OUT/link-home setsid flower-superlink --insecure --disable-runtime-dependency-installation --port "$link" > "$OUT/link.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$link") 2>/dev/null && break; sleep 0.2; done
for group in "${NODES[@]}"; do
  mkdir -p "$OUT/$group"
  config="name=\"$group\" data-dir=\"$DATA/SKAB/$group\" state-dir=\"$OUT/$group/state\""
  config+=" label-column=\"anomaly\" drop-columns=\"datetime,changepoint\" sent-log=\"$OUT/$group/sent.jsonl\""
  FLWR_HOME=$OUT/$group/home setsid flower-supernode --insecure --superlink "127.0.0.1:$link" \
    --port "$(free_port)" --node-config "$config" > "$OUT/$group/supernode.log" 2>&1 &
  pids+=($!)
done
mkdir -p "$OUT/cli-home"
printf '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:%s"\ninsecure = true\n' "$link" > "$OUT/cli-home/config.toml"
FLWR_HOME=$OUT/cli-home flwr run "$ROOT/flower" local --stream \
  --run-config "method=\"$METHOD\"" --run-config "distance=\"$DISTANCE\"" \
  --run-config "num-server-rounds=$ROUNDS" --run-config "local-epochs=$EPOCHS" \
  --run-config "filters=\"$FILTERS\"" --run-config "seed=$SEED" \
  --run-config "min-nodes=${#NODES[@]}" --run-config "results-file=\"$OUT/results.json\"" \
  | tee "$OUT/run.log"
for _ in $(seq 100); do [ -f "$OUT/results.json" ] && break; sleep 0.2; done
[ -f "$OUT/results.json" ] || { echo "the run wrote no results; see $OUT/run.log and $OUT/link.log" >&2; exit 1; }
echo "results: $OUT/results.json"
