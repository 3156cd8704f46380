//! Topology-aware detection from the command line: `vigil system generate` writes a system,
//! `vigil train --detector topomad --topology` keeps the call graph with the model, `detect`
//! refuses another graph and ranks components per alarm, `eval --faults` reports localisation,
//! and every malformed topology exits 2 naming the file and line.

mod common;

use common::{train_ok, vigil, vigil_ok};
use std::path::Path;

/// A small generated system in `dir` and a topomad model `m` trained on it.
fn system_and_model(dir: &Path) {
    vigil_ok(
        &[
            "system",
            "generate",
            "--out",
            ".",
            "--components",
            "4",
            "--train-len",
            "400",
            "--test-len",
            "300",
            "--faults",
            "3",
            "-q",
        ],
        dir,
    );
    std::fs::write(
        dir.join("small.toml"),
        "[detector_config]\nwindow = 8\nhidden = 6\nlatent = 3\nepochs = 1\n",
    )
    .unwrap();
    train_ok(
        dir,
        "train.csv",
        "m",
        "topomad",
        &["--config", "small.toml", "--topology", "edges.csv"],
    );
}

/// `vigil detect` of model `m` on `test.csv` into `output` with the edge list `edges`, then
/// `extra`.
fn detect_args<'a>(output: &'a str, edges: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "detect",
        "--model",
        "m",
        "--input",
        "test.csv",
        "--output",
        output,
        "--topology",
        edges,
    ];
    args.extend_from_slice(extra);
    args
}

/// The stderr of a run that must exit 2.
fn exit_2(args: &[&str], dir: &Path) -> String {
    let out = vigil(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "vigil {}: {stderr}",
        args.join(" ")
    );
    stderr
}

#[test]
fn the_graph_travels_with_the_model_and_alarms_name_components() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    system_and_model(d);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m/manifest.json")).unwrap()).unwrap();
    let components = &manifest["config"]["topology"]["components"];
    assert_eq!(components.as_array().unwrap().len(), 4, "{manifest}");
    let flags = ["--ranking", "ranking.csv", "--threshold", "quantile"];
    vigil_ok(&detect_args("scores.csv", "edges.csv", &flags), d);
    let ranking = std::fs::read_to_string(d.join("ranking.csv")).unwrap();
    let mut lines = ranking.lines();
    assert_eq!(lines.next(), Some("step,rank,component,contribution"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(!rows.is_empty(), "the quantile rule raises alarms");
    // Every alarm ranks all four components, 1 to 4, by falling contribution.
    for alarm in rows.chunks(4) {
        let ranks: Vec<&str> = alarm.iter().map(|r| r[1]).collect();
        assert_eq!(ranks, ["1", "2", "3", "4"]);
        let values: Vec<f64> = alarm.iter().map(|r| r[3].parse().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
    }
    let out = vigil_ok(
        &[
            "eval",
            "--model",
            "m",
            "--test",
            "test.csv",
            "--faults",
            "faults.csv",
            "--json",
        ],
        d,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["localisation"]["faults"], 3, "{report}");
    let top1 = report["localisation"]["top1"].as_f64().unwrap();
    let top3 = report["localisation"]["top3"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1) && top3 >= top1);
}

#[test]
fn malformed_or_changed_topologies_exit_2_naming_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    system_and_model(d);
    let detect = |edges: &'static str| detect_args("s.csv", edges, &[]);
    let run = |args: Vec<&str>| exit_2(&args, d);
    // An edge naming a component the data does not have.
    std::fs::write(
        d.join("unknown.csv"),
        "source,target\ngateway,svc1\ngateway,cache\n",
    )
    .unwrap();
    let err = run(detect("unknown.csv"));
    assert!(
        err.contains("unknown.csv:3: edge names component `cache`"),
        "{err}"
    );
    // A line that is not an edge.
    std::fs::write(d.join("broken.csv"), "gateway,svc1\ngateway\n").unwrap();
    let err = run(detect("broken.csv"));
    assert!(
        err.contains("broken.csv:2: expected `caller,callee`"),
        "{err}"
    );
    // A graph other than the model's.
    std::fs::write(d.join("other.csv"), "gateway,svc1\n").unwrap();
    let err = run(detect("other.csv"));
    assert!(
        err.contains("not the one the model was trained on"),
        "{err}"
    );
    // Components whose metrics differ: the data file's header is named.
    let test = std::fs::read_to_string(d.join("test.csv")).unwrap();
    let header = test
        .lines()
        .next()
        .unwrap()
        .replace("svc1.errors", "svc1.faults");
    let uneven = format!("{header}\n{}", test.split_once('\n').unwrap().1);
    std::fs::write(d.join("uneven.csv"), uneven).unwrap();
    let err = exit_2(
        &[
            "train",
            "--train",
            "uneven.csv",
            "--model",
            "m2",
            "--detector",
            "topomad",
            "--topology",
            "edges.csv",
        ],
        d,
    );
    assert!(
        err.contains("uneven.csv:1: column svc1: component `svc1` reports different metrics"),
        "{err}"
    );
    assert!(
        !d.join("m2").exists(),
        "nothing is written after a refused topology"
    );
    // A topology given to a detector that does not read one, and topomad without one.
    let err = exit_2(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "m3",
            "--detector",
            "pca",
            "--topology",
            "edges.csv",
        ],
        d,
    );
    assert!(err.contains("does not read a topology"), "{err}");
    let err = exit_2(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "m4",
            "--detector",
            "topomad",
        ],
        d,
    );
    assert!(err.contains("--topology"), "{err}");
}
