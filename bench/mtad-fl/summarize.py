"""Turns mtad_fl_bench's JSON lines into bench/results/mtad-fl.md's tables: per setting and
split, each method's precision, recall, F1 and MCC (point-wise, at the classifier's 0.5) on
every node — for federated methods the last round and the mean over rounds, as the paper
averages its rounds — with the affiliation F1 and VUS-PR beside, and Table 2's figures.

    python3 bench/mtad-fl/summarize.py results.jsonl > table.md
"""

import json
import sys
from collections import defaultdict

# Hao et al., Table 2: (precision, recall, F1). SKAB's single-task rows are valve1's.
PAPER = {
    "skab": {
        "local": (0.906, 0.787, 0.842), "transfer": (0.923, 0.786, 0.849),
        "fedtl": (0.556, 0.254, 0.345), "fedkd": (0.626, 0.417, 0.569),
        "fedavg": (0.738, 0.39, 0.454), "mtad-fl": (0.911, 0.786, 0.844),
    },
    "smd": {
        "local": (0.943, 0.73, 0.815), "transfer": (0.999, 0.997, 0.998),
        "fedtl": (0.706, 0.230, 0.324), "fedkd": (0.509, 0.291, 0.343),
        "fedavg": (0.491, 0.191, 0.238), "mtad-fl": (0.999, 0.997, 0.998),
    },
}
METRICS = ("precision", "recall", "f1", "mcc", "affiliation_f1", "vus_pr")


def fmt(v):
    return "–" if v is None else f"{v:.3f}"


def paper(setting, method, node):
    key = "mtad-fl" if method.startswith("mtad-fl") else method.removeprefix("mtad-")
    # The paper's single-task SKAB figures are valve1's; its federated rows name no node.
    if setting == "skab" and key in ("local", "transfer") and node != "valve1":
        return "–"
    figures = PAPER.get(setting, {}).get(key)
    return " / ".join(f"{v:.3f}" for v in figures) if figures else "–"


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["setting"], r["split"], r["epochs"])].append(r)
    # Single-task runs (more epochs per fit) before the federated ones.
    for (setting, split, epochs), runs in sorted(groups.items(), key=lambda kv: (kv[0][:2], -kv[0][2])):
        print(f"### {setting.upper()}, {split} 70/30 split, {epochs} epochs per fit\n")
        print("| method | node | rounds | precision | recall | F1 | MCC | affiliation F1 | VUS-PR "
              "| train s | sent / received per round (kB) | paper P / R / F1 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        by = defaultdict(list)
        for r in runs:
            by[(r["method"], r["node"])].append(r)
        order = []
        for r in runs:
            if (r["method"], r["node"]) not in order:
                order.append((r["method"], r["node"]))
        for method, node in order:
            rs = sorted(by[(method, node)], key=lambda r: r["round"])
            last = rs[-1]
            label = "–" if last["round"] == 0 else f"last of {len(rs)}"
            cells = [fmt(last[m]) for m in METRICS]
            kb = f"{last['bytes_sent'] / 1e3:.0f} / {last['bytes_received'] / 1e3:.0f}"
            print(f"| {method} | {node} | {label} | " + " | ".join(cells)
                  + f" | {last['train_seconds']:.0f} | {kb} | {paper(setting, method, node)} |")
            if len(rs) > 1:
                mean = lambda m: None if any(r[m] is None for r in rs) else sum(r[m] for r in rs) / len(rs)
                cells = [fmt(mean(m)) for m in METRICS]
                print(f"| {method} | {node} | mean of {len(rs)} | " + " | ".join(cells) + " | | | |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
