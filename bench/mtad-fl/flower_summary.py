"""The Markdown table of federated runs through Flower (bench/mtad-fl-flower.sh): per method,
node and round, what the node measured (its round-*.json) beside what the server measured
(results.json: the round's seconds, and the bytes of tensor values each node sent and
received).

    python3 flower_summary.py OUT/mtad-fl OUT/fedavg ...   # folders flower/run-local.sh wrote
"""

import json
import sys
from pathlib import Path


def node_results(run: Path) -> dict[str, dict[int, dict]]:
    found: dict[str, dict[int, dict]] = {}
    for path in run.glob("*/state/run-*/round-*.json"):
        result = json.loads(path.read_text())
        found.setdefault(result["node"], {})[result["round"]] = result
    return found


def fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def main(runs: list[str]) -> None:
    print("| method | node | round | precision | recall | F1 | MCC | affiliation F1 | VUS-PR | round s (train + detect) | sent / received (kB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for run in map(Path, runs):
        server = json.loads((run / "results.json").read_text())
        method = server["settings"]["method"]
        if method == "mtad-fl":
            method += "-" + server["settings"]["distance"]
        by_node = node_results(run)
        for r in server["rounds"]:
            seconds = r.get("train_seconds", 0) + r.get("evaluate_seconds", 0)
            # The server knows nodes by Flower id and the nodes know their names; the bytes are
            # per id, so they are given as the round's set of values.
            sent = sorted({v / 1000 for v in r.get("bytes_sent", {}).values()})
            received = sorted({v / 1000 for v in r.get("bytes_received", {}).values()})
            if not r.get("counted"):
                print(f"| {method} | – | {r['round']} | below the quorum: {r.get('trained', 0)} nodes trained, "
                      f"nothing detected | | | | | | {seconds:.0f} | |")
                continue
            traffic = f"{'/'.join(f'{v:.0f}' for v in sent)} / {'/'.join(f'{v:.0f}' for v in received)}"
            for node in sorted(by_node):
                result = by_node[node].get(r["round"])
                if result is None:
                    continue
                print(
                    f"| {method} | {node} | {r['round']} | {fmt(result['precision'])} | {fmt(result['recall'])} | "
                    f"{fmt(result['f1'])} | {fmt(result['mcc'])} | {fmt(result['affiliation_f1'])} | "
                    f"{fmt(result['vus_pr'])} | {seconds:.0f} | {traffic} |"
                )
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
