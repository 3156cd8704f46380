"""Summarises the JSON lines of crates/vigil-models/examples/anotuner_feedback.rs into the
markdown table bench/anotuner.sh writes to bench/results/anotuner.md: per data set, detector and feedback group, the
paper's figure (point-adjusted precision and recall averaged per entity and seed, F1 of those
averages) beside the metrics that do not inflate, and each group's gain over no fine-tuning."""

import json
import sys
from collections import defaultdict

GROUPS = ["none", "fp", "fn", "fp+fn"]


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def f1(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    cells = defaultdict(list)
    for row in rows:
        cells[(row["dataset"], row["detector"], row["group"])].append(row)
    keys = sorted({(d, det) for d, det, _ in cells})
    out = [
        "| data | detector | feedback | runs | PA-P | PA-R | PA-F1 (paper) | gain | point F1 | gain "
        "| affiliation F1 | VUS-PR | best F1 (oracle) | tuned | tune s | feedback steps |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, detector in keys:
        base = None
        for group in GROUPS:
            runs = cells.get((dataset, detector, group))
            if not runs:
                continue
            p = mean(r["pa_precision"] for r in runs)
            r_ = mean(r["pa_recall"] for r in runs)
            pa = f1(p, r_)
            point = mean(r["f1"] for r in runs)
            if group == "none":
                base = (pa, point)
            gain = f"{pa - base[0]:+.4f}" if base and group != "none" else ""
            point_gain = f"{point - base[1]:+.4f}" if base and group != "none" else ""
            tuned = sum(1 for r in runs if r["extra"].get("tuned"))
            tune_s = mean(r["extra"].get("tune_seconds") for r in runs)
            steps = mean(r["extra"].get("feedback_steps") for r in runs)
            out.append(
                f"| {dataset} | {detector} | {group} | {len(runs)} | {p:.4f} | {r_:.4f} | {pa:.4f} "
                f"| {gain} | {point:.4f} | {point_gain} "
                f"| {mean(r['affiliation_f1'] for r in runs):.4f} "
                f"| {mean(r['vus_pr'] for r in runs):.4f} | {mean(r['best_f1'] for r in runs):.4f} "
                f"| {tuned if group != 'none' else ''} "
                f"| {'' if group == 'none' else f'{tune_s:.2f}'} "
                f"| {'' if group == 'none' else f'{steps:.0f}'} |"
            )
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
