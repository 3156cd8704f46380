//! A stream scored in several runs: the model's stored threshold rule applies, and with
//! `--state` SPOT's tail carries from one run to the next, so the alarms equal one run's.

mod common;

use common::{train_ok, vigil, vigil_ok};
use std::path::Path;

/// `rows` steps of two periodic metrics from step `from`, a level shift from step 500 and a
/// spike at 720..725.
fn csv(from: usize, rows: usize) -> String {
    let mut s = String::from("a,b\n");
    for t in from..from + rows {
        let x = t as f64 / 9.0;
        let shift = if t >= 500 { 0.3 } else { 0.0 };
        let spike = if (720..725).contains(&t) { 4.0 } else { 0.0 };
        s.push_str(&format!(
            "{:.5},{:.5}\n",
            x.sin() + shift + spike,
            x.cos() + 0.1 * (3.0 * x).sin()
        ));
    }
    s
}

/// The threshold and alarm columns of a `vigil detect` output.
fn decisions(path: &Path) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[2].to_string(), r[3].to_string())
        })
        .collect()
}

#[test]
fn a_stream_scored_in_two_runs_with_its_state_gets_the_alarms_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("train.csv"), csv(0, 400)).unwrap();
    std::fs::write(d.join("all.csv"), csv(400, 600)).unwrap();
    std::fs::write(d.join("first.csv"), csv(400, 250)).unwrap();
    std::fs::write(d.join("rest.csv"), csv(650, 350)).unwrap();
    // PCA scores each step on its own (window 1), so the split changes no score.
    train_ok(d, "train.csv", "m", "pca", &[]);
    for rule in ["auto", "spot", "dspot"] {
        two_runs_equal_one(d, rule);
    }
}

fn two_runs_equal_one(d: &Path, rule: &str) {
    let detect = |input: &str, output: &str, state: Option<&str>| {
        let mut args = vec![
            "detect",
            "--model",
            "m",
            "--input",
            input,
            "--output",
            output,
            "--threshold",
            rule,
            "-q",
        ];
        if let Some(state) = state {
            args.extend(["--state", state]);
        }
        vigil_ok(&args, d);
    };
    let state = format!("{rule}.json");
    detect("all.csv", "all.out", None);
    detect("first.csv", "first.out", Some(&state));
    detect("rest.csv", "rest.out", Some(&state));
    let one_run = decisions(&d.join("all.out"));
    let mut two_runs = decisions(&d.join("first.out"));
    two_runs.extend(decisions(&d.join("rest.out")));
    assert_eq!(two_runs, one_run, "{rule}");
    assert!(
        one_run.iter().any(|(_, alarm)| alarm == "1"),
        "{rule}: the spike alarms"
    );
    // Without the state, the second run starts from the calibration again and differs.
    detect("rest.csv", "fresh.out", None);
    assert_ne!(
        decisions(&d.join("fresh.out")),
        one_run[250..].to_vec(),
        "{rule}"
    );
}

#[test]
fn the_rule_a_model_was_trained_with_is_the_one_detect_applies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("train.csv"), csv(0, 400)).unwrap();
    train_ok(d, "train.csv", "m", "pca", &["--threshold", "quantile"]);
    let out = vigil_ok(
        &[
            "--json",
            "detect",
            "--model",
            "m",
            "--input",
            "train.csv",
            "--output",
            "o.csv",
        ],
        d,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["threshold"]["method"], "quantile");
    let out = vigil_ok(
        &[
            "--json",
            "detect",
            "--model",
            "m",
            "--input",
            "train.csv",
            "--output",
            "o.csv",
            "--threshold",
            "pot",
        ],
        d,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["threshold"]["method"], "pot");
}

#[test]
fn a_state_file_of_another_model_rule_or_owner_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("train.csv"), csv(0, 400)).unwrap();
    std::fs::write(d.join("longer.csv"), csv(0, 500)).unwrap();
    train_ok(d, "train.csv", "m", "pca", &[]);
    train_ok(d, "longer.csv", "other", "pca", &[]);
    vigil_ok(
        &[
            "detect",
            "--model",
            "m",
            "--input",
            "train.csv",
            "--output",
            "o.csv",
            "--state",
            "s.json",
            "-q",
        ],
        d,
    );
    std::fs::write(d.join("notes.json"), "{\"mine\": true}").unwrap();
    for (args, expect) in [
        (
            vec!["--model", "other", "--state", "s.json"],
            "was saved for another model",
        ),
        (
            vec!["--model", "m", "--state", "s.json", "--threshold", "pot"],
            "another threshold rule",
        ),
        (
            vec!["--model", "m", "--state", "notes.json"],
            "is not a vigil stream-state file",
        ),
        (
            vec![
                "--model",
                "m",
                "--state",
                "s.json",
                "--threshold",
                "pot-batch",
            ],
            "cannot carry over",
        ),
    ] {
        let before = (
            std::fs::read(d.join("s.json")).unwrap(),
            std::fs::read(d.join("notes.json")).unwrap(),
        );
        let mut full = vec!["detect", "--input", "train.csv", "--output", "x.csv"];
        full.extend(args);
        let out = vigil(&full, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expect), "{expect}: {stderr}");
        assert_eq!(
            (
                std::fs::read(d.join("s.json")).unwrap(),
                std::fs::read(d.join("notes.json")).unwrap()
            ),
            before
        );
        assert!(!d.join("x.csv").exists());
    }
}

/// The score column and everything after it, row by row, of a `vigil detect` output (the step
/// column restarts in each run).
fn rows_after_step(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().skip(1).map(str::to_string).collect())
        .collect()
}

/// A windowed detector carries its context window in the state: scored in three parts — one
/// of them shorter than the window — a stream gets, digit for digit, the scores, thresholds
/// and alarms of one run, the parts' first steps included.
#[test]
fn a_windowed_model_scores_a_stream_in_parts_as_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("train.csv"), csv(0, 400)).unwrap();
    std::fs::write(d.join("all.csv"), csv(400, 600)).unwrap();
    let parts = [(400, 250), (650, 3), (653, 347)];
    for (i, &(from, rows)) in parts.iter().enumerate() {
        std::fs::write(d.join(format!("part{i}.csv")), csv(from, rows)).unwrap();
    }
    std::fs::write(
        d.join("fast.toml"),
        "[detector_config]\nepochs = 2\nwindow = 10\n",
    )
    .unwrap();
    train_ok(d, "train.csv", "m", "usad", &["--config", "fast.toml"]);
    vigil_ok(
        &[
            "detect", "--model", "m", "--input", "all.csv", "--output", "all.out", "-q",
        ],
        d,
    );
    let mut in_parts = Vec::new();
    for i in 0..parts.len() {
        let (input, output) = (format!("part{i}.csv"), format!("part{i}.out"));
        vigil_ok(
            &[
                "detect",
                "--model",
                "m",
                "--input",
                &input,
                "--output",
                &output,
                "--state",
                "stream.json",
                "-q",
            ],
            d,
        );
        in_parts.extend(rows_after_step(&d.join(output)));
    }
    let one_run = rows_after_step(&d.join("all.out"));
    assert_eq!(in_parts.len(), one_run.len());
    for (t, (a, b)) in in_parts.iter().zip(&one_run).enumerate() {
        assert_eq!(a, b, "step {t}");
    }
    // A part shorter than the window cannot start a stream: there is nothing before it.
    let out = vigil(
        &[
            "detect",
            "--model",
            "m",
            "--input",
            "part1.csv",
            "--output",
            "x.out",
            "--state",
            "new.json",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("window"));
}
