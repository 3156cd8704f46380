#!/usr/bin/env python3
"""One table per data set from the `vigil bench` tables in bench/results/, and one of speed.

Each `vigil bench --output` file holds per-entity rows and one "mean of N" row per detector. This
script gathers those mean rows (columns picked by header name, so older tables without newer
columns still line up: a missing column prints "—"), adds each detector's highest peak RSS over
its entities, names the file every row comes from, and writes bench/results/summary.md; after
the data sets it lists the speed ratios against PyTorch from every speed file. It only reads what
the bench runs wrote; it computes no new figures beyond that maximum.

    python3 bench/summarize.py            # writes bench/results/summary.md
"""
import glob
import os
import re
import sys

DATASETS = {"smd": 8, "smap": 55, "msl": 27, "skab": 34}  # entities in a full run
COLUMNS = [
    "PA-F1 (pot-batch)",
    "F1 (pot-batch)",
    "PA-F1 (pot)",
    "F1 (pot)",
    "PA%K area",
    "VUS-PR",
    "ROC-AUC",
    "best F1 (oracle)",
    "best PA-F1 (oracle)",
    "train s",
    "score s",
]
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def bench_tables(path):
    """Yields (header, rows) for every markdown table that starts with `| detector | entity |`."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| detector | entity |"):
            yield cells(line), rows_below(lines, i)


def summarise(path):
    """Mean rows of one results file as dicts, with the entity count and the peak RSS maximum."""
    out = []
    for header, rows in bench_tables(path):
        col = {name: k for k, name in enumerate(header)}
        peak = {}
        for row in rows:
            detector = row[0].strip("*")
            rss = row[col["peak RSS MB"]] if "peak RSS MB" in col else ""
            if rss and re.fullmatch(r"[0-9.]+", rss):
                peak[detector] = max(peak.get(detector, 0.0), float(rss))
        for row in rows:
            mean = re.fullmatch(r"\*\*mean of (\d+)\*\*", row[1])
            if not mean:
                continue
            detector = row[0].strip("*")
            values = {name: row[col[name]] if name in col else "—" for name in COLUMNS}
            out.append((detector, int(mean.group(1)), values, peak.get(detector)))
    return out


def speed_rows(path):
    """(model, training ratio, scoring ratio, memory ratio) from one speed file's ratio table.

    `bench/speed.sh` files hold a `| model | training speed vigil / PyTorch | ...` table;
    `bench/gon_speed.sh`'s holds `vigil faster by` per implementation, of which the batched
    PyTorch script (the same algorithm written for throughput) is the comparison to show.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out = []
    for i, line in enumerate(lines):
        header = cells(line) if line.startswith("|") else []
        if header[:2] == ["model", "training speed vigil / PyTorch"]:
            out += [tuple(c[:4]) for c in rows_below(lines, i)]
        elif header[:3] == ["implementation", "s / epoch", "vigil faster by"]:
            out += [("gon", c[2], "—", "—") for c in rows_below(lines, i) if "(batched)" in c[0]]
    return out


def rows_below(lines, header):
    """The cells of the table rows under the header at line `header` (past its |---| line)."""
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def machine(path):
    """The CPU a speed file names on its `Machine:` line (ratios only compare within a file)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("Machine:"):
                return line[len("Machine:") :].split(",")[0].strip()
    return "—"


def speed_section():
    files = sorted(glob.glob(os.path.join(RESULTS, "speed*.md")))
    files += sorted(glob.glob(os.path.join(RESULTS, "*-speed.md")))
    rows = [(*r, machine(f), os.path.basename(f)) for f in files for r in speed_rows(f)]
    if not rows:
        return []
    rows.sort()
    lines = [
        "## Speed against PyTorch (same architecture, shapes and batch)",
        "",
        "Gathered from `bench/results/speed*.md` and `gon-speed.md` (each names its command, data",
        "and machine conditions). Above 1x vigil is faster; memory is vigil's peak over PyTorch's.",
        "Both sides of a ratio ran on the machine named, in one run; machines differ between files.",
        "",
        "| model | training speed vigil / PyTorch | scoring speed vigil / PyTorch | "
        "peak memory vigil / PyTorch | machine | source |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {m} | {t} | {s} | {mem} | {cpu} | {src} |" for m, t, s, mem, cpu, src in rows
    ]
    return lines + [""]


def number(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def main():
    lines = [
        "# vigil bench — summary of the committed tables",
        "",
        "Command: `python3 bench/summarize.py` (gathers the \"mean of N\" rows of every",
        "`bench/results/<data set>[-<detector>].md`; peak RSS is the highest over that detector's",
        "entities). The figures, seeds, commits and machine conditions are those of each source file:",
        "read it before quoting a number. On SKAB read the `pot` columns (bench/results/skab.md says",
        "why); \"oracle\" columns choose the threshold with the test labels.",
        "",
    ]
    tables = {}
    for dataset in DATASETS:
        files = sorted(glob.glob(os.path.join(RESULTS, f"{dataset}.md")))
        files += sorted(glob.glob(os.path.join(RESULTS, f"{dataset}-*.md")))
        tables[dataset] = [
            (d, n, v, p, os.path.basename(f)) for f in files for d, n, v, p in summarise(f)
        ]
    everywhere = {row[0] for rows in tables.values() for row in rows}
    for dataset, full in DATASETS.items():
        rows = tables[dataset]
        if not rows:
            continue
        rows.sort(key=lambda r: (r[0], r[4]))
        lines += [f"## {dataset.upper()} ({full} entities)", ""]
        lines.append("| detector | entities | " + " | ".join(COLUMNS) + " | peak RSS MB | source |")
        lines.append("|---" * (len(COLUMNS) + 4) + "|")
        for detector, n, values, peak, source in rows:
            count = f"{n}" if n == full else f"**{n} of {full}**"
            rss = f"{peak:.0f}" if peak is not None else "—"
            shown = " | ".join(number(values[c]) for c in COLUMNS)
            lines.append(f"| {detector} | {count} | {shown} | {rss} | {source} |")
        absent = sorted(everywhere - {row[0] for row in rows})
        if absent:
            lines += ["", "Not run on this data set yet: " + ", ".join(absent) + "."]
        lines.append("")
    lines += speed_section()
    target = os.path.join(RESULTS, "summary.md")
    with open(target, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
