#!/usr/bin/env bash
# Issue 4's evaluation (the OmniTransfer paper's Tables I and II): `vigil bench --fleet` on the
# 8 SMD machines (4 offline, 4 online; five random splits, seeds 0-4) with USAD and TranAD, and on a
# generated fleet of 1,000 entities from 10 archetypes (500 online) with the default detector.
#
#     bench/fleet_bench.sh      # writes bench/results/fleet.md (about 40 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vigil-cli
vigil=target/release/vigil
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
$vigil bench --fleet --dataset smd --detectors usad,tranad --splits 5 --output "$work/smd.md"
$vigil fleet generate --out "$work/generated-1000" --entities 1000 --archetypes 10 -q
$vigil bench --fleet --dataset "$work/generated-1000" --output "$work/generated.md"
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
    echo "# vigil bench --fleet: OmniTransfer against one model per entity, with ablations C1-C3"
    echo
    echo "Made by \`bench/fleet_bench.sh\` on $cpu ($(nproc) cores), one run; docs/fleet.md discusses it."
    echo
    sed 's/^#/##/' "$work/smd.md"
    echo
    sed 's/^#/##/' "$work/generated.md"
} > bench/results/fleet.md
cat bench/results/fleet.md
