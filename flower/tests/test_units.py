"""The app's parts that need no running federation: its settings, a node's data folder, and
LGF-PKT's choice of peers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vigil_flower.node_data import NodeData, NodeDataError, read_folder
from vigil_flower.settings import RunSettings, SettingsError
from vigil_flower.strategies import nearest_peers

DEFAULTS = {
    "method": "mtad-fl", "distance": "combined", "num-server-rounds": 3, "local-epochs": 10, "seed": 1,
    "filters": "128,256,128", "min-nodes": 2, "quorum": 2, "round-timeout": 600.0, "results-file": "",
}


def test_the_apps_default_settings_are_valid():
    settings = RunSettings.of(DEFAULTS)
    assert settings.filters == (128, 256, 128)
    assert settings.detector_config() == {
        "conv1_filters": 128, "conv2_filters": 256, "conv3_filters": 128, "epochs": 10,
    }
    assert settings.fine_tune_epochs() == 2


@pytest.mark.parametrize(
    "change, named",
    [
        ({"method": "fedprox"}, "method must be one of mtad-fl, fedavg, fedtl"),
        ({"distance": "manhattan"}, "distance must be one of"),
        ({"filters": "8,16"}, "filters must be three positive counts"),
        ({"local-epochs": 0}, "local-epochs must be an integer of at least 1"),
        ({"round-timeout": 0}, "round-timeout must be a positive number"),
        ({"quorum": 3}, "quorum (3) must not exceed min-nodes (2)"),
        ({"quorum": 1, "min-nodes": 1}, "quorum must be at least 2 for mtad-fl"),
    ],
)
def test_a_bad_setting_is_refused_by_name(change, named):
    with pytest.raises(SettingsError, match=None) as refused:
        RunSettings.of({**DEFAULTS, **change})
    assert named in str(refused.value)


def test_a_missing_setting_says_where_to_set_it():
    config = dict(DEFAULTS)
    del config["seed"]
    with pytest.raises(SettingsError, match="no 'seed'.*--run-config"):
        RunSettings.of(config)


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_a_folder_of_semicolon_csvs_joins_in_natural_order(tmp_path):
    header = "datetime;a;b;anomaly;changepoint\n"
    write(tmp_path, "10.csv", header + "2020-01-01 00:00:03;3;30;1;0\n")
    write(tmp_path, "2.csv", header + "2020-01-01 00:00:01;1;10;0;0\n2020-01-01 00:00:02;2;20;0;1\n")
    names, values, labels = read_folder(tmp_path, "anomaly", {"datetime", "changepoint"})
    assert names == ["a", "b"]
    assert values.tolist() == [[1, 10], [2, 20], [3, 30]]
    assert labels.tolist() == [0, 0, 1]


def test_the_split_is_chronological_seventy_thirty():
    data = NodeData.split(["a"], np.arange(10.0).reshape(10, 1), np.array([0] * 7 + [1] * 3))
    assert data.train[:, 0].tolist() == list(range(7)) and data.test[:, 0].tolist() == [7, 8, 9]
    assert data.test_labels.tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    "text, named",
    [
        ("a,b\n1,2\n", "no label column 'label'"),
        ("when,a,label\nmonday,1,0\n", "a metric cell is not a number"),
        ("a,label\n1,2\n", "label '2' is not 0 or 1"),
        ("a,label\n1\n", "line 2 has 1 cells, the header 2"),
    ],
)
def test_a_bad_data_file_is_refused_with_its_line(tmp_path, text, named):
    write(tmp_path, "x.csv", text)
    with pytest.raises(NodeDataError) as refused:
        read_folder(tmp_path, "label", set())
    assert named in str(refused.value)


def test_a_node_without_data_dir_is_told_how_to_start():
    with pytest.raises(NodeDataError, match="--node-config"):
        NodeData.of({})


def test_each_node_takes_the_hidden_layers_nearest_its_own():
    rng = np.random.default_rng(0)
    base = {f"features.conv{i}.weight": rng.normal(size=(4, 3)).astype(np.float32) for i in (1, 2, 3)}
    near = {k: v + 0.01 for k, v in base.items()}
    far = {k: -3 * v for k, v in base.items()}
    chosen = nearest_peers([(11, base), (22, near), (33, far)], "euclidean")
    assert chosen[11][0] == 22 and chosen[22][0] == 11
    assert chosen[33][0] in (11, 22) and chosen[33][1] > chosen[11][1]
