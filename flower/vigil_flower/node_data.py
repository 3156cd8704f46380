"""A node's own labelled data: the CSV files of a local folder, read on the node and never sent.

A node is told where its data lies by its SuperNode's ``--node-config``:

- ``data-dir``: a folder of CSV files (``,`` or ``;``, a header row), read in natural name order
  and joined end to end: one series of metrics with a 0/1 label column.
- ``label-column`` (default ``label``): the column of 0/1 labels (SKAB: ``anomaly``).
- ``drop-columns`` (default ``timestamp``): columns that are neither metrics nor labels,
  separated by commas (SKAB: ``datetime,changepoint``).

Nodes may differ in their metrics (the models' convolutions slide along them), but hidden layers
transfer best between nodes whose metrics are alike and in the same order.

The steps split 70/30, chronologically, into the part the node trains on and the part it
detects on (MTAD-FL §4.3), as ``bench/mtad-fl.sh`` splits them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

TRAIN_SHARE = 0.7


class NodeDataError(ValueError):
    """The node's data folder cannot be read as labelled series; the message says why."""


@dataclass(frozen=True)
class NodeData:
    metric_names: list[str]
    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray

    @classmethod
    def of(cls, node_config: Mapping[str, Any]) -> "NodeData":
        if "data-dir" not in node_config:
            raise NodeDataError(
                "this SuperNode's --node-config has no data-dir: start it with "
                "--node-config 'name=\"...\" data-dir=\"/path/to/csv/folder\" state-dir=\"...\"'"
            )
        folder = Path(str(node_config["data-dir"]))
        label = str(node_config.get("label-column", "label"))
        dropped = {c.strip() for c in str(node_config.get("drop-columns", "timestamp")).split(",") if c.strip()}
        names, values, labels = read_folder(folder, label, dropped)
        if len(values) < 10:
            raise NodeDataError(
                f"data-dir {folder} holds {len(values)} steps; a node needs at least 10 to split 70/30 "
                f"into training and detection"
            )
        return cls.split(names, values, labels)

    @classmethod
    def split(cls, names: list[str], values: np.ndarray, labels: np.ndarray) -> "NodeData":
        cut = int(round(len(values) * TRAIN_SHARE))
        return cls(names, values[:cut], labels[:cut], values[cut:], labels[cut:])


def read_folder(folder: Path, label_column: str, dropped: set[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every CSV file of ``folder`` joined: metric names, values (steps × metrics), labels."""
    if not folder.is_dir():
        raise NodeDataError(f"data-dir {folder} is not a folder; point it at the node's CSV files")
    files = sorted(folder.glob("*.csv"), key=lambda p: _natural_key(p.name))
    if not files:
        raise NodeDataError(f"data-dir {folder} holds no .csv file")
    names: list[str] | None = None
    values: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for file in files:
        file_names, file_values, file_labels = _read_csv(file, label_column, dropped)
        if names is not None and file_names != names:
            raise NodeDataError(
                f"{file} has metrics {file_names}, but {files[0]} has {names}; every file must have the same"
            )
        names = file_names
        values.append(file_values)
        labels.append(file_labels)
    assert names is not None
    return names, np.concatenate(values), np.concatenate(labels)


def _read_csv(file: Path, label_column: str, dropped: set[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    text = file.read_text()
    header_line = text.split("\n", 1)[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not rows:
        raise NodeDataError(f"{file} is empty; a node's CSV files need a header row and steps")
    header, body = rows[0], [r for r in rows[1:] if r]
    if label_column not in header:
        raise NodeDataError(
            f"{file} has no label column {label_column!r} (its columns: {header}); set label-column in --node-config"
        )
    label_at = header.index(label_column)
    metric_at = [i for i, name in enumerate(header) if i != label_at and name not in dropped]
    if not metric_at:
        raise NodeDataError(f"{file} has no metric column once {label_column!r} and {sorted(dropped)} are left out")
    values = np.empty((len(body), len(metric_at)))
    labels = np.empty(len(body), dtype=np.int64)
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise NodeDataError(f"{file} line {line} has {len(row)} cells, the header {len(header)}")
        try:
            values[line - 2] = [float(row[i]) for i in metric_at]
        except ValueError:
            raise NodeDataError(
                f"{file} line {line}: a metric cell is not a number ({[row[i] for i in metric_at]}); "
                f"name non-metric columns in drop-columns"
            ) from None
        if row[label_at] not in ("0", "1", "0.0", "1.0"):
            raise NodeDataError(f"{file} line {line}: label {row[label_at]!r} is not 0 or 1")
        labels[line - 2] = int(float(row[label_at]))
    return [header[i] for i in metric_at], values, labels


def _natural_key(name: str) -> list[Any]:
    """``2.csv`` before ``10.csv``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
