#!/usr/bin/env bash
# Where to cut I-HAC's dendrogram by default: `vigil fleet cluster --max-distance D` on generated
# fleets (600 entities, one segment each) at two noise levels and two archetype counts; prints
# the clusters found and the adjusted Rand index against the truth (docs/fleet.md).
#
#     bench/fleet_cut.sh        # writes bench/results/fleet-cut.md
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vigil-cli
vigil=target/release/vigil
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
{
    echo "# I-HAC's distance cut on generated fleets"
    echo
    echo "Command: \`bench/fleet_cut.sh\` — each fleet: \`vigil fleet generate --entities 600 --archetypes K --noise N\`,"
    echo "then \`vigil fleet cluster --segments-per-entity 1 --max-distance D\` (distance: Euclidean over"
    echo "standardised segments divided by the square root of their size)."
    echo
    echo "| archetypes | noise | --max-distance | clusters | adjusted Rand index |"
    echo "|---|---|---|---|---|"
    for setting in "10 0.1" "10 0.3" "30 0.1"; do
        read -r k noise <<<"$setting"
        $vigil fleet generate --out "$work/gen" --entities 600 --archetypes "$k" --noise "$noise" -q
        for d in 0.3 0.5 0.7 0.9 1.1; do
            $vigil fleet cluster --entities "$work/gen" --fleet "$work/f" --segments-per-entity 1 \
                --max-distance "$d" --json |
                python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"| $k | $noise | $d | {r['clusters']} | {r['adjusted_rand_index']:.4f} |\")"
        done
        rm -rf "$work/gen"
    done
} > bench/results/fleet-cut.md
cat bench/results/fleet-cut.md
