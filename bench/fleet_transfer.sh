#!/usr/bin/env bash
# Issue 4's speed target: entities adapted per minute per core by `vigil fleet transfer` with the
# default detector, on a generated fleet of 1,000 entities from 10 archetypes split 50/50 into
# offline (clusters, base models) and online (transferred from their newest day of data).
#
#     bench/fleet_transfer.sh      # writes bench/results/fleet-transfer.md
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vigil-cli
vigil=target/release/vigil
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
$vigil fleet generate --out "$work/gen" --entities 1000 --archetypes 10 -q
mkdir -p "$work/off" "$work/on"
for f in "$work"/gen/train/*.csv; do
    n=$(basename "$f" .csv); n=$((10#${n#entity-}))
    if (( (n / 10) % 2 == 0 )); then cp "$f" "$work/off/"; else cp "$f" "$work/on/"; fi
done
cp "$work/gen/truth.json" "$work/off/"
cluster=$($vigil fleet cluster --entities "$work/off" --fleet "$work/fleet" --segments-per-entity 1 --json)
base_one=$($vigil fleet train-base --entities "$work/off" --fleet "$work/fleet" --jobs 1 --json)
# Again from scratch with a worker per core.
rm -rf "$work/fleet/base"
base=$($vigil fleet train-base --entities "$work/off" --fleet "$work/fleet" --json)
one=$($vigil --threads 1 fleet transfer --entities "$work/on" --fleet "$work/fleet" --json)
# Again from scratch with a worker per core.
rm -rf "$work/fleet/entities"
all=$($vigil fleet transfer --entities "$work/on" --fleet "$work/fleet" --json)
python3 - "$cluster" "$base_one" "$base" "$one" "$all" > bench/results/fleet-transfer.md <<'PY'
import json, platform, subprocess, sys
cluster, base_one, base, one, every = (json.loads(a) for a in sys.argv[1:])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print("# vigil fleet transfer: entities adapted per minute per core\n")
print("Command: `bench/fleet_transfer.sh` — `vigil fleet generate --entities 1000 --archetypes 10` "
      "(8 metrics, 288 steps a day, 3 training days); entities 0-9, 20-29, ... offline, 10-19, 30-39, ... online (every archetype on both sides); "
      "`fleet cluster --segments-per-entity 1`, `fleet train-base --jobs 1` (default detector) and again from scratch with a worker process per core, then "
      f"`vigil --threads 1 fleet transfer` (default: one fine-tuning epoch per stage) over the 500 online entities, and again from scratch "
      f"with a worker process per core (`vigil fleet transfer`). Machine: {cpu}, one run.\n")
print("| step | result | seconds |")
print("|---|---|---|")
print(f"| cluster 500 offline entities | {cluster['clusters']} clusters, ARI {cluster['adjusted_rand_index']:.4f} | {cluster['seconds']:.1f} |")
print(f"| train-base ({base_one['detector']}), 1 job | {len(base_one['base_models'])} base models | {base_one['seconds']:.1f} |")
print(f"| train-base ({base['detector']}), {base['jobs']} worker processes | {len(base['base_models'])} base models | {base['seconds']:.1f} |")
print(f"| transfer 500 online entities, 1 thread | {one['full']} full, {one['partial']} partial | {one['seconds']:.1f} |")
print(f"| transfer 500 online entities, {every['jobs']} worker processes | {every['full']} full, {every['partial']} partial | {every['seconds']:.1f} |")
print(f"\n**{one['entities_per_minute']:.0f} entities per minute on one core** (issue 4's target: ≥ 60); "
      f"{every['entities_per_minute']:.0f} per minute with {every['jobs']} workers.")
PY
cat bench/results/fleet-transfer.md
