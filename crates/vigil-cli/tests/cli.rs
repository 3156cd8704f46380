//! Drives the real `vigil` binary: the bad-input matrix, determinism and the demo.

mod common;

use common::{vigil, vigil_ok};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A small periodic CSV: `rows` rows of metrics a, b (and a label column when `labelled`).
fn series_csv(rows: usize, labelled: bool) -> String {
    let mut s = String::from(if labelled {
        "timestamp,a,b,label\n"
    } else {
        "timestamp,a,b\n"
    });
    for t in 0..rows {
        let x = t as f64 / 10.0;
        let anomalous = labelled && (150..155).contains(&t);
        let a = if anomalous { 9.0 } else { x.sin() };
        s.push_str(&format!("{},{a:.4},{:.4}", 1_700_000_000 + 60 * t, x.cos()));
        s.push_str(if labelled {
            if anomalous {
                ",1\n"
            } else {
                ",0\n"
            }
        } else {
            "\n"
        });
    }
    s
}

fn train_model(dir: &Path) -> PathBuf {
    write(dir, "train.csv", &series_csv(400, false));
    vigil_ok(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "model",
            "--detector",
            "pca",
            "-q",
        ],
        dir,
    );
    dir.join("model")
}

/// Each case: a command that must fail with exit code 2, a message containing `expect`, no
/// panic, and no output file.
#[test]
fn bad_inputs_exit_2_with_a_message_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_model(d);
    write(d, "empty.csv", "");
    write(d, "header.csv", "a,b\n");
    write(d, "ragged.csv", "a,b\n1,2\n3\n");
    write(d, "text.csv", "a,b\n1,2\n3,abc\n");
    write(d, "nan.csv", "a,b\n1,2\nNaN,4\n");
    write(d, "inf.csv", "a,b\n1,2\n3,inf\n");
    write(d, "other_metrics.csv", "timestamp,a,c\n0,1,2\n60,3,4\n");
    write(d, "short.csv", "a,b\n1,2\n3,4\n");
    write(
        d,
        "constant.csv",
        &"a,b\n"
            .chars()
            .chain((0..50).flat_map(|_| "5,5\n".chars()))
            .collect::<String>(),
    );
    std::fs::create_dir(d.join("corrupt")).unwrap();
    write(d, "corrupt/manifest.json", "{not json");
    write(
        d,
        "cfg.toml",
        "detector = \"pca\"\n[detector_config]\nwindow = 100\n",
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "--train", "missing.csv", "--model", "out"],
            "missing.csv: no such file",
        ),
        (
            vec!["train", "--train", "empty.csv", "--model", "out"],
            "empty.csv: the file is empty",
        ),
        (
            vec!["train", "--train", "header.csv", "--model", "out"],
            "header.csv: the file has a header but no data rows",
        ),
        (
            vec!["train", "--train", "ragged.csv", "--model", "out"],
            "ragged.csv:3: this row has 1 fields",
        ),
        (
            vec!["train", "--train", "text.csv", "--model", "out"],
            "text.csv:3: column b: `abc` is not a number",
        ),
        (
            vec!["train", "--train", "nan.csv", "--model", "out"],
            "nan.csv:3: column `a`: a missing value",
        ),
        (
            vec!["train", "--train", "inf.csv", "--model", "out"],
            "inf.csv:3: column `b`: an infinite value",
        ),
        (
            vec![
                "detect",
                "--model",
                "model",
                "--input",
                "other_metrics.csv",
                "--output",
                "out.csv",
            ],
            "column 2 is `c`",
        ),
        (
            vec![
                "train",
                "--train",
                "short.csv",
                "--model",
                "out",
                "--config",
                "cfg.toml",
            ],
            "the window (100 steps) is longer than the training series (2 steps)",
        ),
        (
            vec![
                "detect",
                "--model",
                "corrupt",
                "--input",
                "train.csv",
                "--output",
                "out.csv",
            ],
            "manifest.json is corrupt",
        ),
        (
            vec![
                "detect",
                "--model",
                "nowhere",
                "--input",
                "train.csv",
                "--output",
                "out.csv",
            ],
            "does not exist",
        ),
        (
            vec![
                "train",
                "--train",
                "train.csv",
                "--model",
                "out",
                "--detector",
                "nope",
            ],
            "unknown detector `nope`",
        ),
        (
            vec![
                "train",
                "--train",
                "train.csv",
                "--model",
                "out",
                "--missing",
                "guess",
            ],
            "unknown missing-value policy `guess`",
        ),
    ];
    for (args, expect) in cases {
        let out = vigil(&args, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} should exit 2; stderr: {stderr}"
        );
        assert!(
            stderr.contains(expect),
            "{args:?}: expected `{expect}` in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert!(
            !d.join("out").exists() && !d.join("out.csv").exists(),
            "{args:?} left output behind"
        );
    }
    // A constant column is not an error: it must train and score without dividing by zero.
    vigil_ok(
        &[
            "train",
            "--train",
            "constant.csv",
            "--model",
            "const_model",
            "--detector",
            "pca",
            "-q",
        ],
        d,
    );
    // A weights file edited after training is caught by its checksum.
    let weights = d.join("model/pca.json");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let out = vigil(
        &[
            "detect",
            "--model",
            "model",
            "--input",
            "train.csv",
            "--output",
            "out.csv",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match its checksum"));
    assert!(!d.join("out.csv").exists());
}

#[test]
fn same_seed_gives_byte_identical_scores_on_any_number_of_threads() {
    // Neural detectors (GON's search and InterFusion's fused coupling, whose backward pass sums
    // per-chunk gradients, included) and one without a training loss (its manifest records none).
    // The second run uses one core (`--threads 1`, for edge devices): the work is split the same
    // way whatever the pool size, so the scores must not change.
    for detector in ["usad", "gon", "interfusion", "anotuner", "iforest"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "train.csv", &series_csv(400, false));
        write(d, "test.csv", &series_csv(300, true));
        let mut outputs = Vec::new();
        for run in 0..2 {
            let model = format!("m{run}");
            let scores = format!("s{run}.csv");
            let threads = if run == 0 { "2" } else { "1" };
            let out = vigil(
                &[
                    "--threads",
                    threads,
                    "train",
                    "--train",
                    "train.csv",
                    "--model",
                    &model,
                    "--detector",
                    detector,
                    "--epochs",
                    "3",
                    "--seed",
                    "7",
                    "-q",
                ],
                d,
            );
            assert!(
                out.status.success(),
                "{detector}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = vigil(
                &[
                    "--threads",
                    threads,
                    "detect",
                    "--model",
                    &model,
                    "--input",
                    "test.csv",
                    "--output",
                    &scores,
                    "-q",
                ],
                d,
            );
            assert!(
                out.status.success(),
                "{detector}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            outputs.push(std::fs::read_to_string(d.join(&scores)).unwrap());
        }
        // The first differing line, not two whole score files, when they differ.
        let first_difference = outputs[0]
            .lines()
            .zip(outputs[1].lines())
            .find(|(two, one)| two != one);
        assert_eq!(
            first_difference, None,
            "{detector}: scores at 2 threads vs 1 thread"
        );
        assert_eq!(outputs[0].len(), outputs[1].len(), "{detector}");
    }
}

#[test]
fn eval_reports_every_measure_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // PCA over windows of 10 steps: the periodic windows span two components and the spike
    // leaves them. (With the default window of 1, PCA keeps both of the two metrics' components,
    // reconstructs every step exactly, and its scores are rounding noise: this test once passed
    // on the noise of normalising in f32.)
    write(d, "train.csv", &series_csv(400, false));
    write(
        d,
        "pca.toml",
        "detector = \"pca\"\n[detector_config]\nwindow = 10\n",
    );
    vigil_ok(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "model",
            "--config",
            "pca.toml",
            "-q",
        ],
        d,
    );
    write(d, "test.csv", &series_csv(300, true));
    let out = vigil_ok(
        &["eval", "--model", "model", "--test", "test.csv", "--json"],
        d,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "f1",
        "pa_f1",
        "pa_k_area",
        "roc_auc",
        "pr_auc",
        "best_f1",
        "mcc",
        "affiliation_f1",
        "vus_pr",
        "vus_roc",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    // The injected spike is the most anomalous stretch: PCA ranks it near the top.
    assert!(report["roc_auc"].as_f64().unwrap() > 0.9, "{report}");
}

#[test]
fn detect_with_the_ndt_threshold_alarms_a_sustained_shift_and_nothing_far_from_it() {
    // NDT widens alarms by 100 points each side and refuses thresholds that alarm half the
    // window, so it needs a series much longer than an anomaly: 2,000 steps, a 40-step shift.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_model(d);
    let mut test = String::from("timestamp,a,b\n");
    for t in 0..2000 {
        let x = t as f64 / 10.0;
        let shift = if (1000..1040).contains(&t) { 3.0 } else { 0.0 };
        test.push_str(&format!(
            "{},{:.4},{:.4}\n",
            1_700_000_000 + 60 * t,
            x.sin() + shift,
            x.cos()
        ));
    }
    write(d, "test.csv", &test);
    vigil_ok(
        &[
            "detect",
            "--model",
            "model",
            "--input",
            "test.csv",
            "--output",
            "scores.csv",
            "--threshold",
            "ndt",
        ],
        d,
    );
    let text = std::fs::read_to_string(d.join("scores.csv")).unwrap();
    let alarmed: Vec<usize> = text
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(3) == Some("1"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        (1000..1040).all(|t| alarmed.contains(&t)),
        "the shift is not all alarmed: {alarmed:?}"
    );
    assert!(
        alarmed.iter().all(|&t| (850..1250).contains(&t)),
        "alarms far from the shift: {alarmed:?}"
    );
}

#[test]
fn demo_detects_the_injected_anomalies() {
    let dir = tempfile::tempdir().unwrap();
    let out = vigil_ok(&["demo", "--out", "demo", "--json", "-q"], dir.path());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pa_f1 = summary["mean_pa_f1"].as_f64().unwrap();
    assert!(pa_f1 >= 0.9, "demo PA-F1 {pa_f1}");
    assert!(dir.path().join("demo/report.md").exists());
    assert!(dir
        .path()
        .join("demo/models/entity-0/manifest.json")
        .exists());
    let png = std::fs::read(dir.path().join("demo/entity-0.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "the demo figure is a PNG");
}

#[test]
fn plot_draws_png_and_svg_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_model(d);
    write(d, "test.csv", &series_csv(300, true));
    vigil_ok(
        &[
            "detect",
            "--model",
            "model",
            "--input",
            "test.csv",
            "--output",
            "scores.csv",
            "-q",
        ],
        d,
    );
    for figure in ["fig.png", "fig.svg"] {
        vigil_ok(
            &[
                "plot",
                "--series",
                "test.csv",
                "--scores",
                "scores.csv",
                "--output",
                figure,
            ],
            d,
        );
        assert!(std::fs::metadata(d.join(figure)).unwrap().len() > 1000);
    }
    write(d, "short.csv", &series_csv(200, true));
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--series",
                "test.csv",
                "--scores",
                "scores.csv",
                "--output",
                "fig.jpg",
            ],
            ".png or .svg",
        ),
        (
            &[
                "--series",
                "short.csv",
                "--scores",
                "scores.csv",
                "--output",
                "bad.png",
            ],
            "has 300 rows but",
        ),
        (
            &[
                "--series", "test.csv", "--scores", "test.csv", "--output", "bad2.png",
            ],
            "not a `vigil detect` output",
        ),
    ];
    for (args, message) in cases {
        let mut full = vec!["plot"];
        full.extend_from_slice(args);
        let out = vigil(&full, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    for leftover in ["fig.jpg", "bad.png", "bad2.png"] {
        assert!(!d.join(leftover).exists(), "{leftover} was written");
    }
}
