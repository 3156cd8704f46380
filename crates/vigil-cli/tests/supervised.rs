//! MTAD-FL's supervised detectors from the command line: `vigil train` gives them the training
//! file's `label` column, refuses a file without one (exit 2, saying what to add), and the model
//! scores the labelled anomaly above the normal steps.

mod common;

use common::{train_ok, vigil, vigil_ok};
use std::fmt::Write;
use std::path::Path;

/// `steps` steps of three metrics, the second jumping at every step `t % 15 == 4`, those steps
/// labelled when `labelled`.
fn write_series(path: &Path, steps: usize, labelled: bool) {
    let mut text = String::from(if labelled { "a,b,c,label\n" } else { "a,b,c\n" });
    for t in 0..steps {
        let anomalous = t % 15 == 4;
        let x = |c: usize| 0.5 + 0.1 * ((t * (c + 3)) as f64 * 0.37).sin();
        let b = x(1) + if anomalous { 1.0 } else { 0.0 };
        write!(text, "{:.4},{b:.4},{:.4}", x(0), x(2)).unwrap();
        if labelled {
            write!(text, ",{}", u8::from(anomalous)).unwrap();
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

const SMALL: &str = "[detector_config]\nconv1_filters = 8\nconv2_filters = 16\nconv3_filters = 8\n\
                     epochs = 15\nbatch_size = 32\nlearning_rate = 0.01\n";

#[test]
fn a_supervised_detector_trains_on_the_label_column_and_refuses_a_file_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_series(&dir.join("unlabelled.csv"), 300, false);
    write_series(&dir.join("train.csv"), 300, true);
    write_series(&dir.join("test.csv"), 150, true);
    std::fs::write(dir.join("small.toml"), SMALL).unwrap();
    for detector in ["mtad-local", "mtad-transfer"] {
        let out = vigil(
            &[
                "train",
                "--train",
                "unlabelled.csv",
                "--model",
                "nope",
                "--detector",
                detector,
                "--config",
                "small.toml",
            ],
            dir,
        );
        assert_eq!(out.status.code(), Some(2), "{detector}");
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(why.contains("`label` column"), "{detector}: {why}");
        assert!(
            !dir.join("nope").exists(),
            "{detector}: a refused training left a model"
        );
        train_ok(
            dir,
            "train.csv",
            detector,
            detector,
            &["--config", "small.toml"],
        );
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(detector).join("manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["training"]["labelled_anomalous"], 20, "{detector}");
        vigil_ok(
            &[
                "detect",
                "--model",
                detector,
                "--input",
                "test.csv",
                "--output",
                "scores.csv",
            ],
            dir,
        );
        let scores = std::fs::read_to_string(dir.join("scores.csv")).unwrap();
        let mut rows = csv_rows(&scores);
        let column = rows.remove(0).iter().position(|h| h == "score").unwrap();
        let mean = |anomalous: bool| {
            let picked: Vec<f64> = rows
                .iter()
                .enumerate()
                .filter(|(t, _)| (t % 15 == 4) == anomalous)
                .map(|(_, r)| r[column].parse::<f64>().unwrap())
                .collect();
            picked.iter().sum::<f64>() / picked.len() as f64
        };
        assert!(
            mean(true) > mean(false) + 0.5,
            "{detector}: {} vs {}",
            mean(true),
            mean(false)
        );
    }
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}
