#!/usr/bin/env bash
# `vigil demo` with each detector on the same generated fleet; writes bench/results/demo.md.
#
#     bench/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out=bench/results/demo.md
{
    echo "# vigil demo — measured figures"
    echo
    echo "Generated fleet (3 entities, 8 metrics, 4,320 train + 2,880 test steps, 8 injected anomalies"
    echo "each), seed 0, threshold SPOT (label-free, the demo's default). Command: \`bench/demo.sh\`."
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(date +%F)."
    for run in "pca|" "usad|--detector usad" "tranad|--detector tranad" "tranad, 20 epochs|--detector tranad --epochs 20" "rnn-vae|--detector rnn-vae"; do
        name="${run%%|*}"
        flags="${run#*|}"
        echo
        echo "## $name"
        echo
        echo "Command: \`vigil demo -q $flags\`"
        echo
        # shellcheck disable=SC2086
        target/release/vigil demo -q --out "$work/demo" $flags | sed '/^$/d'
    done
} > "$out"
echo "written $out"
