#!/usr/bin/env bash
# GON's training time per epoch: vigil (batched input-space search on slices) against the same
# model and algorithm in PyTorch, run the authors' way (one window at a time through autograd)
# and batched; same machine, one run (issue 3).
#
#     bench/gon_speed.sh [AUTHORS_WINDOWS]     # writes bench/results/gon-speed.md
#
# The authors' way takes minutes per hundred windows, so it times AUTHORS_WINDOWS windows
# (default 300) and scales to the epoch. Data: the SMD-shaped random walk of bench/speed.sh.
# Both sides start the search of training from the real window (the authors' code), so the
# algorithm is the same on both; vigil's default start (noise) runs longer searches.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-300}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
data="$work/smd_like.npy"
python3 bench/reference/smd_like.py "$data"
cargo build --release -p vigil-models --benches >/dev/null 2>&1
: > "$work/rows.jsonl"
cargo bench -q -p vigil-models --bench speed -- --detector gon --data "$data" --epochs 3 \
    --config '{"generation_start": "real"}' 2>/dev/null | tail -1 >> "$work/rows.jsonl"
(cd bench/reference && python3 gon.py --data "$data" --epochs 1 --mode authors --limit "$limit" 2>/dev/null | tail -1) >> "$work/rows.jsonl"
(cd bench/reference && python3 gon.py --data "$data" --epochs 2 --mode batched 2>/dev/null | tail -1) >> "$work/rows.jsonl"
python3 - "$work/rows.jsonl" "$limit" > bench/results/gon-speed.md <<'PY'
import json, platform, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print("# GON training speed: vigil vs PyTorch, same model and algorithm\n")
print(f"Command: `bench/gon_speed.sh {sys.argv[2]}` — data: SMD-shaped random walk, 28,479 steps x 38 metrics; ")
print("D: window 15 x 38 → 16 → 16 → 1; the search of training starts from the real window on every side. ")
print(f"Machine: {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, one run.\n")
print("| implementation | s / epoch | vigil faster by | peak RSS MB |")
print("|---|---|---|---|")
vigil = next(r for r in rows if r["implementation"].startswith("vigil"))
for r in rows:
    note = f" (timed on {r['windows_timed']:,} windows, scaled)" if r.get("windows_timed", 0) < 28000 and "windows_timed" in r else ""
    print(f"| {r['implementation']}{note} | {r['epoch_seconds']:.1f} | "
          f"{r['epoch_seconds'] / vigil['epoch_seconds']:.1f}x | {r['peak_rss_mb']:.0f} |")
PY
cat bench/results/gon-speed.md
