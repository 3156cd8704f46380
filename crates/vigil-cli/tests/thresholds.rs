//! The label-free thresholds from the command line: `auto` as detect's default, saying what it
//! chose; the recalibration horizon from a flag or the config file; scores kept by
//! `vigil bench --keep-scores` and judged again by `vigil thresholds`.

mod common;

use common::{train_ok, vigil, vigil_ok};

/// `rows` steps of three metrics: two periodic ones and their sum, which is lifted by `lift`
/// from step `from` on (so that the relation a model learnt between them breaks there).
fn csv(rows: usize, from: usize, lift: f64) -> String {
    let mut s = String::from("a,b,c\n");
    for t in 0..rows {
        let x = t as f64 / 7.0;
        let (a, b) = (0.5 + 0.5 * x.sin(), 0.5 + 0.5 * x.cos());
        let up = if t >= from { lift } else { 0.0 };
        s.push_str(&format!("{a:.5},{b:.5},{:.5}\n", a + b + up));
    }
    s
}

fn detect_json(d: &std::path::Path, input: &str) -> (serde_json::Value, String) {
    let args = [
        "detect", "--model", "m", "--input", input, "--output", "o.csv",
    ];
    let said = String::from_utf8_lossy(&vigil_ok(&args, d).stderr).to_string();
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let json = serde_json::from_slice(&vigil_ok(&json_args, d).stdout).unwrap();
    (json, said)
}

#[test]
fn auto_is_the_default_and_says_what_it_chose() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("train.csv"), csv(1500, 1500, 0.0)).unwrap();
    std::fs::write(d.join("same.csv"), csv(1300, 1300, 0.0)).unwrap();
    // The whole test period sits above anything the model was trained on.
    std::fs::write(d.join("shifted.csv"), csv(1300, 0, 3.0)).unwrap();
    train_ok(d, "train.csv", "m", "pca", &[]);
    let (json, said) = detect_json(d, "same.csv");
    assert_eq!(json["threshold"]["method"], "auto");
    assert_eq!(json["auto_choice"]["rule"], "calibrated-spot", "{json}");
    assert!(said.contains("auto kept SPOT calibrated"), "{said}");
    let (json, said) = detect_json(d, "shifted.csv");
    assert_eq!(json["auto_choice"]["rule"], "stream-spot", "{json}");
    assert_eq!(json["auto_choice"]["from_step"], 1000);
    assert!(
        said.contains("auto switched to SPOT fitted on the first 1000 scores"),
        "{said}"
    );
    // After the switch, the shifted level is not alarmed wholesale.
    let alarms_after: usize = std::fs::read_to_string(d.join("o.csv"))
        .unwrap()
        .lines()
        .skip(1001)
        .filter(|l| l.split(',').nth(3) == Some("1"))
        .count();
    assert!(
        alarms_after < 60,
        "{alarms_after} of 300 alarmed after the switch"
    );
}

#[test]
fn the_recalibration_horizon_comes_from_the_flag_or_the_config_file_and_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("train.csv"), csv(300, 300, 0.0)).unwrap();
    std::fs::write(d.join("h.toml"), "recalibration_horizon = 400\n").unwrap();
    train_ok(
        d,
        "train.csv",
        "flag",
        "pca",
        &["--recalibration-horizon", "200"],
    );
    train_ok(
        d,
        "train.csv",
        "file",
        "pca",
        &["--config", "h.toml", "--threshold", "dspot"],
    );
    for (model, method, horizon) in [("flag", "auto", 200), ("file", "dspot", 400)] {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(model).join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["threshold"]["method"], method, "{model}");
        assert_eq!(manifest["threshold"]["horizon"], horizon, "{model}");
    }
    for (extra, why) in [
        (
            vec!["--recalibration-horizon", "10"],
            "at least 50 steps, got 10",
        ),
        (
            vec!["--recalibration-horizon", "100", "--threshold", "pot-batch"],
            "for the rules that learn along a stream",
        ),
    ] {
        let mut args = vec![
            "train",
            "--train",
            "train.csv",
            "--model",
            "bad",
            "--detector",
            "pca",
        ];
        args.extend(&extra);
        let out = vigil(&args, d);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(why) && said.contains("--recalibration-horizon"),
            "{said}"
        );
        assert!(!d.join("bad").exists());
    }
}

#[test]
fn scores_kept_by_bench_are_judged_again_by_vigil_thresholds() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    common::write_two_smd_machines(d);
    let keep = ["--keep-scores", "kept", "-q"];
    vigil_ok(&[&common::PCA_BENCH_ON_SMD[..], &keep].concat(), d);
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("kept/pca/machine-1-1.json")).unwrap())
            .unwrap();
    assert_eq!(kept["test"].as_array().unwrap().len(), 600);
    assert_eq!(kept["labels"].as_array().unwrap().len(), 600);
    assert!(!kept["calibration"].as_array().unwrap().is_empty());
    // Another tool's alarms on the same scores, judged beside vigil's rules.
    std::fs::create_dir_all(d.join("other/pca")).unwrap();
    let flagged: Vec<u8> = (0..600)
        .map(|t| u8::from((400..420).contains(&t)))
        .collect();
    std::fs::write(
        d.join("other/pca/machine-1-1.json"),
        serde_json::json!({ "perfect": flagged }).to_string(),
    )
    .unwrap();
    let out = vigil_ok(
        &[
            "--json",
            "thresholds",
            "--scores",
            "kept",
            "--rule",
            "auto",
            "--rule",
            r#"{"method":"spot","q":0.001,"level":0.98}"#,
            "--rule",
            r#"{"method":"auto","q":0.0001,"level":0.98,"warmup":250}"#,
            "--external",
            "other",
        ],
        d,
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    // Two machines under three rules, and the one external file.
    assert_eq!(rows.len(), 7, "{rows:?}");
    let perfect = rows.iter().find(|r| r["rule"] == "perfect").unwrap();
    assert_eq!(perfect["f1"], 1.0);
    assert_eq!(perfect["alarms"], 20);
    for row in rows {
        assert_eq!(row["anomalies"], 20);
        assert!(row["best_f1"].as_f64().unwrap() > 0.5, "{row}");
    }
    // The markdown summary names each rule.
    let table = String::from_utf8_lossy(&vigil_ok(&["thresholds", "--scores", "kept"], d).stdout)
        .to_string();
    for rule in [
        "| pca | auto |",
        "| pca | spot |",
        "| pca | dspot |",
        "| pca | pot-batch |",
    ] {
        assert!(table.contains(rule), "{table}");
    }
    // A folder without kept scores, a rule that is not one and a missing --external folder are named.
    for (args, why) in [
        (
            vec!["thresholds", "--scores", "other/none"],
            "cannot read --scores",
        ),
        (
            vec![
                "thresholds",
                "--scores",
                "kept",
                "--rule",
                "{\"method\":\"nope\"}",
            ],
            "is not a threshold rule's JSON",
        ),
        (
            vec!["thresholds", "--scores", "kept", "--rule", "nope"],
            "unknown threshold `nope`",
        ),
        (
            vec!["thresholds", "--scores", "kept", "--external", "misspelt"],
            "--external misspelt is not a folder",
        ),
    ] {
        let out = vigil(&args, d);
        assert_ne!(out.status.code(), Some(0));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(why), "{said}");
    }
}
