//! What the threshold is calibrated on, and how far new data is from it: `vigil train
//! --calibration-share` holds the last training steps out of the fit, and `vigil detect` names
//! each metric whose values left its training range by more than the range's width (with every
//! normaliser, the robust one included).

mod common;

use common::{train_ok, vigil_ok};

/// `rows` steps of two metrics in [0, 1]; from step `from` on, `b` is lifted by `lift`.
fn csv(rows: usize, from: usize, lift: f64) -> String {
    let mut s = String::from("a,b\n");
    for t in 0..rows {
        let x = t as f64 / 7.0;
        let b = 0.5 + 0.5 * x.cos() + if t >= from { lift } else { 0.0 };
        s.push_str(&format!("{:.5},{b:.5}\n", 0.5 + 0.5 * x.sin()));
    }
    s
}

#[test]
fn detect_names_each_metric_that_left_its_training_range() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("train.csv"), csv(300, 300, 0.0)).unwrap();
    std::fs::write(d.join("shifted.csv"), csv(200, 100, 4.0)).unwrap();
    for normaliser in ["minmax", "robust"] {
        let model = format!("m-{normaliser}");
        train_ok(d, "train.csv", &model, "pca", &["--normaliser", normaliser]);
        let detect = |extra: &[&str]| {
            let mut args = vec![
                "detect",
                "--model",
                &model,
                "--input",
                "shifted.csv",
                "--output",
                "s.csv",
            ];
            args.extend(extra);
            vigil_ok(&args, d)
        };
        let said = String::from_utf8_lossy(&detect(&[]).stderr).to_string();
        // b reaches 5 against a training range of [0, 1]: 4 ranges beyond it; a stays inside.
        assert!(
            said.contains("metric `b` left its training range by 4.0 times"),
            "{normaliser}: {said}"
        );
        assert!(!said.contains("metric `a`"), "{normaliser}: {said}");
        let json: serde_json::Value = serde_json::from_slice(&detect(&["--json"]).stdout).unwrap();
        assert_eq!(json["drifted"][0]["metric"], "b", "{normaliser}");
        assert_eq!(json["drifted"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn calibration_share_from_the_flag_or_the_config_file_holds_out_the_last_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("train.csv"), csv(400, 400, 0.0)).unwrap();
    std::fs::write(d.join("share.toml"), "calibration_share = 0.1\n").unwrap();
    train_ok(
        d,
        "train.csv",
        "flag",
        "pca",
        &["--calibration-share", "0.25"],
    );
    train_ok(d, "train.csv", "file", "pca", &["--config", "share.toml"]);
    for (model, steps) in [("flag", 100), ("file", 40)] {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(model).join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["training"]["calibration_steps"], steps, "{model}");
    }
    let out = common::vigil(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "bad",
            "--calibration-share",
            "0.9",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains(
            "calibration_share (--calibration-share, or the config file's key) must be in [0, 0.5]"
        ),
        "{why}"
    );
    assert!(!d.join("bad").exists());
}
