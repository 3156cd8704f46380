#!/usr/bin/env bash
# Times one training epoch of a detector under several vigil binaries (or settings), runs
# interleaved so that every variant sees the same machine load, and writes a results table.
#
# usage: bench/epoch_ab.sh DETECTOR SERIES RUNS OUTPUT 'label|binary|env' ['label|binary|env' ...]
#   SERIES  a headerless numeric file vigil reads (e.g. the first 1,500 lines of an SMD machine)
#   env     extra environment for that variant, e.g. GLIBC_TUNABLES=glibc.malloc.mmap_max=0, or -
# Each run is `vigil train -q --detector DETECTOR --epochs 1` (data loading, the epoch and the
# training-score pass), timed with GNU time for wall seconds and peak RSS.
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,9p "$0"; exit 2; }
detector=$1 series=$2 runs=$3 output=$4
shift 4
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
[ -f "$series" ] || { echo "no series file: $series" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A seconds memory
for run in $(seq 1 "$runs"); do
    for variant in "$@"; do
        IFS='|' read -r label binary env <<<"$variant"
        rm -rf "$work/model"
        [ "$env" = "-" ] && env=""
        env $env /usr/bin/time -f "%e %M" -o "$work/time" \
            "$binary" train -q --detector "$detector" --epochs 1 --train "$series" \
            --model "$work/model" >/dev/null
        read -r s m <"$work/time"
        seconds[$label]+="$s "
        memory[$label]=$m
        echo "run $run $label: $s s, $m KB" >&2
    done
done
{
    echo "# One ${detector} training epoch, variants interleaved"
    echo
    echo "Command: \`bench/epoch_ab.sh $detector $series $runs $output$(printf " '%s'" "$@")\`"
    echo
    echo "| variant | wall seconds per run | median | peak RSS MB |"
    echo "|---|---|---|---|"
    for variant in "$@"; do
        IFS='|' read -r label _ _ <<<"$variant"
        median=$(tr ' ' '\n' <<<"${seconds[$label]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        echo "| $label | ${seconds[$label]% } | $median | $((memory[$label] / 1024)) |"
    done
} >"$output"
cat "$output"
