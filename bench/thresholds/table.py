"""Assembles bench/results/thresholds.md from `vigil thresholds --json` rows (one file per data
set), choosing every tunable parameter by leave-one-data-set-out: a candidate (an `auto`
parameter set, or a PyThresh method) is chosen on the other three data sets by the mean ratio
of its point-wise F1 to the oracle's best F1, and reported on the fourth. The reported data
set's labels never enter its own choice.

    python bench/thresholds/table.py ROWS_DIR > bench/results/thresholds.md

ROWS_DIR holds `<dataset>.json` and `<dataset>-external.json` (written by
bench/thresholds/table.sh).
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

DATASETS = ["smd", "smap", "msl", "skab"]
FIXED = ["spot", "dspot", "pot-batch", "auto"]
PYTHRESH_DEFAULT = "pythresh:MIXMOD"  # best in PyThresh's own benchmark (its README)


def load(rows_dir):
    rows = {}
    for d in DATASETS:
        # `<dataset>.json` (vigil's rules) and `<dataset>-external.json` (PyThresh's alarms).
        for path in sorted(Path(rows_dir).glob(f"{d}*.json")):
            rows.setdefault(d, []).extend(json.loads(path.read_text()))
    return rows


def index(rows):
    """(dataset, detector, rule) -> list of entity rows with labelled anomalies."""
    out = defaultdict(list)
    everything = defaultdict(list)
    for d, rs in rows.items():
        for r in rs:
            everything[(d, r["detector"], r["rule"])].append(r)
            if r["anomalies"] > 0:
                out[(d, r["detector"], r["rule"])].append(r)
    return out, everything


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def ratio(rs):
    """Mean point-wise F1 over mean oracle best F1 on the same entities."""
    best = mean(r["best_f1"] for r in rs)
    return mean(r["f1"] for r in rs) / best if best > 0 else 0.0


def lodo_choice(idx, datasets, detectors, candidates, held_out):
    """The candidate with the best mean F1 ratio over the other data sets and every detector."""
    train = [d for d in datasets if d != held_out]

    def merit(c):
        return mean(ratio(idx[(d, det, c)]) for d in train for det in detectors if idx[(d, det, c)])

    return max(candidates, key=merit)


def main(rows_dir):
    rows = load(rows_dir)
    idx, everything = index(rows)
    datasets = [d for d in DATASETS if d in rows]
    detectors = sorted({k[1] for k in idx})
    rules = sorted({k[2] for k in idx})
    auto_grid = [r for r in rules if r.startswith("{") and '"auto"' in r]
    pythresh = [r for r in rules if r.startswith("pythresh:")]
    chosen_auto = {d: lodo_choice(idx, datasets, detectors, auto_grid, d) for d in datasets} if auto_grid else {}
    chosen_pt = {d: lodo_choice(idx, datasets, detectors, pythresh, d) for d in datasets} if pythresh else {}

    cols = ["spot", "dspot", "pot-batch", "auto", "auto (LODO)", "PyThresh default", "PyThresh (LODO)", "PyThresh best (oracle pick)"]

    def rule_for(col, d, det):
        if col in FIXED:
            return col
        if col == "auto (LODO)":
            return chosen_auto.get(d)
        if col == "PyThresh default":
            return PYTHRESH_DEFAULT if PYTHRESH_DEFAULT in pythresh else None
        if col == "PyThresh (LODO)":
            return chosen_pt.get(d)
        if col == "PyThresh best (oracle pick)":
            return max(pythresh, key=lambda c: mean(r["f1"] for r in idx[(d, det, c)])) if pythresh else None

    print("| data set | detector | measure | " + " | ".join(cols) + " | oracle best F1 (point-wise) |")
    print("|---|---|---|" + "---|" * len(cols) + "---|")
    summary = defaultdict(dict)
    for d in datasets:
        for det in detectors:
            for measure, key in [("F1", "f1"), ("PA-F1", "pa_f1"), ("affiliation F1", "affiliation_f1")]:
                cells = []
                for col in cols:
                    rule = rule_for(col, d, det)
                    rs = idx.get((d, det, rule), [])
                    cells.append(f"{mean((r[key] or 0.0) for r in rs):.3f}" if rs else "–")
                    if key == "f1" and rs:
                        summary[(det, col)][d] = ratio(rs)
                # The oracle's best is point-wise: shown on the F1 rows only.
                best = mean(r["best_f1"] for r in idx[(d, det, "spot")])
                oracle = f"{best:.3f}" if key == "f1" else ""
                print(f"| {d} | {det} | {measure} | " + " | ".join(cells) + f" | {oracle} |")

    print("\n## F1 as a share of the oracle's best F1 (mean over entities with anomalies)\n")
    print("| detector | rule | " + " | ".join(datasets) + " | mean of the data sets run |")
    print("|---|---|" + "---|" * len(datasets) + "---|")
    for det in detectors:
        for col in cols:
            per = summary[(det, col)]
            if not per:
                continue
            print(f"| {det} | {col} | " + " | ".join(f"{per.get(d, float('nan')):.3f}" for d in datasets) + f" | {mean(per.values()):.3f} |")

    print("\n## Entities: labelled anomalies but no alarm / alarmed on more than half their points\n")
    print("| data set | detector | " + " | ".join(c for c in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for d in datasets:
        for det in detectors:
            cells = []
            for col in cols:
                rule = rule_for(col, d, det)
                all_rs = everything.get((d, det, rule), [])
                silent = sum(1 for r in all_rs if r["anomalies"] > 0 and r["alarms"] == 0)
                noisy = sum(1 for r in all_rs if 2 * r["alarms"] > r["points"])
                cells.append(f"{silent} / {noisy}" if all_rs else "–")
            print(f"| {d} | {det} | " + " | ".join(cells) + " |")

    print("\n## Choices made by leave-one-data-set-out (chosen on the other three)\n")
    print("| held-out data set | auto parameters | PyThresh method |")
    print("|---|---|---|")
    for d in datasets:
        print(f"| {d} | `{chosen_auto.get(d, '–')}` | {chosen_pt.get(d, '–')} |")

    print("\n## What `auto` chose (default parameters)\n")
    print("| data set | detector | calibrated SPOT | SPOT on the stream | undecided (stream shorter than the warm-up) |")
    print("|---|---|---|---|---|")
    for d in datasets:
        for det in detectors:
            rs = everything.get((d, det, "auto"), [])
            kinds = defaultdict(int)
            for r in rs:
                kinds[(r.get("choice") or {}).get("rule", "undecided")] += 1
            print(f"| {d} | {det} | {kinds['calibrated-spot']} | {kinds['stream-spot']} | {kinds['undecided']} |")


if __name__ == "__main__":
    main(sys.argv[1])
