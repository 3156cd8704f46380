#!/usr/bin/env bash
# vigil serve under remote-write load: ENTITIES entities x 38 metrics, scored by USAD, on this
# machine (the load generator runs on the same cores). For each store and fleet size: samples
# acknowledged and scored per second, ingest-to-score latency (p50/p99 from the service's
# histogram), resident memory, store size per entity-day.
#
#     bench/serve.sh [SECONDS] [SIZES] [STORES]    # defaults: 20, "1000 10000", "sqlite postgres"
#
# Writes bench/results/serve.md. PostgreSQL: $VIGIL_BENCH_POSTGRES (default
# postgres://postgres@127.0.0.1:5432), a database vigil_bench made afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
sizes="${2:-1000 10000}"
stores="${3:-sqlite postgres}"
server="${VIGIL_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
out=bench/results/serve.md
cargo build --release -p vigil-cli -p vigil-serve --example serve_load >/dev/null 2>&1
vigil="$PWD/target/release/vigil"
load="$PWD/target/release/examples/serve_load"
work="$(mktemp -d)"
trap 'pkill -f "vigil serve --config $work" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
"$load" train-csv train.csv 38 3000
"$vigil" train -q --train train.csv --detector usad --model models/usad/1 --epochs 5 --seed 1
port=9499
rows=""
for store in $stores; do
  for n in $sizes; do
    if [ "$store" = sqlite ]; then
      rm -f bench.db*; url="sqlite://$work/bench.db"
    else
      PGOPTIONS=--client-min-messages=warning psql -q "$server/test" -c "DROP DATABASE IF EXISTS vigil_bench" -c "CREATE DATABASE vigil_bench"
      url="$server/vigil_bench"
    fi
    printf 'listen = "127.0.0.1:%s"\nstore = "%s"\nmodels = "models"\nmodel = "usad"\nmodel_poll_s = 0\n[limits]\npending_steps = 10000000\n' "$port" "$url" > vigil.toml
    RUST_LOG=warn "$vigil" serve --config "$work/vigil.toml" > serve.log 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$port/-/healthy" >/dev/null && break; sleep 0.1; done
    result="$("$load" "127.0.0.1:$port" "$n" 38 "$seconds" 100 4)"
    rss_kib="$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
    if [ "$store" = sqlite ]; then
      bytes="$(du -cb bench.db* | tail -1 | cut -f1)"
    else
      bytes="$(psql -tA "$server/vigil_bench" -c "SELECT pg_database_size('vigil_bench')")"
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rows+="$(python3 - "$store" "$result" "$rss_kib" "$bytes" <<'PY'
import json, sys
store, result, rss_kib, size = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n, m = result["entities"], result["metrics"]
steps_per_day = 86400 / 10                       # one step every 10 s
stored_steps = result["samples_acknowledged"] / m
per_entity_day = size / stored_steps * steps_per_day if stored_steps else 0
# A quantile past the histogram's last bound (16.384 s) comes back as null.
quantile = lambda q: "> 16.4" if result[q] is None else result[q]
print(f"| {store} | {n:,} | {result['ingest_samples_per_s']:,.0f} | {result['scored_samples_per_s']:,.0f} "
      f"| {quantile('latency_p50_s')} | {quantile('latency_p99_s')} | {rss_kib / 1024:,.0f} MiB ({rss_kib / n:,.1f} KiB/entity) "
      f"| {per_entity_day / 2**20:,.1f} MiB | {result['rounds']} | {result['samples_refused']:,.0f} | {result['unscored_steps']:,} |")
PY
)"$'\n'
  done
  [ "$store" = postgres ] && PGOPTIONS=--client-min-messages=warning psql -q "$server/test" -c "DROP DATABASE IF EXISTS vigil_bench"
done
cd - >/dev/null
{
  echo "# vigil serve under load"
  echo
  echo "Made by \`bench/serve.sh $seconds \"$sizes\" \"$stores\"\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))."
  echo "The load generator (\`crates/vigil-serve/examples/serve_load.rs\`) runs on the same cores: it remote-writes"
  echo "one step of every entity per round (100 entities x 38 metrics a request, 4 in flight) as fast as vigil"
  echo "acknowledges, whole rounds for $seconds s and at least 12 rounds, then waits until every step is scored. USAD (5 epochs on 3,000 generated"
  echo "steps), threshold \`auto\`. Latency: a step's first sample arriving to its score stored, read off the"
  echo "service's histogram (buckets double, so a quantile is the bucket's upper bound); under a load run as"
  echo "fast as possible the queue fills, so it measures the backlog more than the path. Store size per"
  echo "entity-day: the store's bytes over the steps stored, times 8,640 steps (one every 10 s)."
  echo
  echo "| store | entities | samples/s acknowledged | samples/s scored | p50 latency (s) | p99 latency (s) | peak resident memory | store per entity-day | rounds | samples refused | steps left unscored |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
} > "$out"
cat "$out"
