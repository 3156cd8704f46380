"""Summarises the JSON lines of crates/vigil-models/examples/topomad_bench.rs into the markdown
tables bench/topomad.sh writes to bench/results/topomad.md: per data (generated systems, the
recorded testbed) and model, detection at the label-free threshold, the threshold-free VUS-PR
and the best-F1 oracle, and localisation (top-1, top-3), averaged over systems; then the
graph's effect on TopoMAD."""

import json
import sys
from collections import defaultdict


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def table(rows):
    by_model = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    zoo = [m for m in by_model if not m.startswith("topomad")]
    by_f1 = sorted(zoo, key=lambda m: -mean(r["f1"] for r in by_model[m]))
    best_zoo = by_f1[:3]  # the zoo's best three by point-wise F1 at the label-free threshold
    out = [
        "| model | systems | P | R | point F1 | PA-F1 | VUS-PR | best F1 (oracle) "
        "| top-1 | top-3 | alarm rate | train s | score s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = [m for m in ("topomad", "topomad-nograph") if m in by_model] + by_f1
    for model in order:
        runs = by_model[model]
        mark = " (zoo best 3)" if model in best_zoo else ""
        out.append(
            f"| {model}{mark} | {len(runs)} | {mean(r['precision'] for r in runs):.4f} "
            f"| {mean(r['recall'] for r in runs):.4f} | {mean(r['f1'] for r in runs):.4f} "
            f"| {mean(r['pa_f1'] for r in runs):.4f} | {mean(r['vus_pr'] for r in runs):.4f} "
            f"| {mean(r['best_f1'] for r in runs):.4f} | {mean(r['top1'] for r in runs):.4f} "
            f"| {mean(r['top3'] for r in runs):.4f} | {mean(r['alarm_rate'] for r in runs):.4f} "
            f"| {mean(r['train_seconds'] for r in runs):.1f} "
            f"| {mean(r['score_seconds'] for r in runs):.2f} |"
        )
    print("\n".join(out))
    if "topomad" in by_model and "topomad-nograph" in by_model:
        graph, alone = by_model["topomad"], by_model["topomad-nograph"]
        d_top1 = mean(r["top1"] for r in graph) - mean(r["top1"] for r in alone)
        d_f1 = mean(r["f1"] for r in graph) - mean(r["f1"] for r in alone)
        d_best = mean(r["best_f1"] for r in graph) - mean(r["best_f1"] for r in alone)
        print()
        print(
            f"The graph's effect on TopoMAD (with minus without): top-1 {d_top1:+.4f}, "
            f"point F1 {d_f1:+.4f}, best F1 {d_best:+.4f}."
        )
        alone_by = {r["system"]: r for r in alone}
        if len(graph) > 1:
            print()
            print("Per system (top-1 with / without the graph; point F1 with / without):")
            print()
            for r in sorted(graph, key=lambda r: r["system"]):
                a = alone_by.get(r["system"])
                if a:
                    print(
                        f"- system {r['system']}: top-1 {r['top1']:.3f} / {a['top1']:.3f}; "
                        f"F1 {r['f1']:.3f} / {a['f1']:.3f}"
                    )


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    titles = {"generated": "Generated systems", "testbed": "The recorded testbed"}
    for data in ("generated", "testbed"):
        chosen = [r for r in rows if r.get("data", "generated") == data]
        if chosen:
            print(f"## {titles[data]}")
            print()
            table(chosen)
            print()


if __name__ == "__main__":
    main(sys.argv[1])
