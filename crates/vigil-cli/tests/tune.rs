//! `vigil tune`: a trained model fine-tuned on feedback data, whose `label` column says which
//! steps operators judged anomalous; the tuned model is a model directory `detect` reads.

mod common;

use common::{train_ok, vigil, vigil_ok};
use std::path::Path;

/// `rows` steps of two periodic metrics, with a burst at steps 100..110 of every 200 when
/// `bursts`; with `labels`, a `label` column marking the bursts.
fn csv(rows: usize, bursts: bool, labels: bool) -> String {
    let mut s = String::from(if labels { "a,b,label\n" } else { "a,b\n" });
    for t in 0..rows {
        let x = t as f64 / 9.0;
        let burst = bursts && (100..110).contains(&(t % 200));
        let a = if burst { 3.0 } else { x.sin() };
        s.push_str(&format!("{a:.5},{:.5}", x.cos()));
        s.push_str(match (labels, burst) {
            (false, _) => "\n",
            (true, true) => ",1\n",
            (true, false) => ",0\n",
        });
    }
    s
}

/// `vigil tune` of model `m` on `input`, written to `output`, with `extra` flags.
fn tune_args<'a>(input: &'a str, output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["tune", "--model", "m", "--input", input, "--output", output];
    args.extend(extra);
    args
}

fn train(dir: &Path, detector: &str) {
    std::fs::write(dir.join("train.csv"), csv(400, false, false)).unwrap();
    std::fs::write(dir.join("fast.toml"), "[detector_config]\nepochs = 2\n").unwrap();
    let config: &[&str] = if detector == "pca" {
        &[]
    } else {
        &["--config", "fast.toml"]
    };
    train_ok(dir, "train.csv", "m", detector, config);
}

#[test]
fn tune_learns_from_labels_and_writes_a_model_detect_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    train(d, "usad");
    std::fs::write(d.join("feedback.csv"), csv(600, true, true)).unwrap();
    let flags = ["--epochs", "2", "--freeze", "encoder", "--seed", "4"];
    let out = vigil_ok(&tune_args("feedback.csv", "tuned", &flags), d);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("30 labelled anomalous"), "{said}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("tuned/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["training"]["labelled_anomalous"], 30);
    assert!(manifest["lineage"]["fine_tuned_from"].is_string());
    vigil_ok(
        &[
            "detect",
            "--model",
            "tuned",
            "--input",
            "feedback.csv",
            "--output",
            "s.csv",
            "-q",
        ],
        d,
    );
    // In place: the same path as --model replaces the model.
    vigil_ok(&tune_args("feedback.csv", "m", &["-q"]), d);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m/manifest.json")).unwrap()).unwrap();
    assert!(manifest["lineage"]["fine_tuned_from"].is_string());
}

#[test]
fn anotuner_fine_tunes_from_a_feedback_file_of_judged_stretches() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("train.csv"), csv(400, false, false)).unwrap();
    std::fs::write(
        d.join("fast.toml"),
        "[detector_config]\nepochs = 2\nwindow = 10\nhidden = 16\n",
    )
    .unwrap();
    train_ok(d, "train.csv", "m", "anotuner", &["--config", "fast.toml"]);
    std::fs::write(d.join("new.csv"), csv(600, true, false)).unwrap();
    // Operators: the first burst was a missed anomaly, steps 300..320 a false alarm.
    std::fs::write(
        d.join("feedback.csv"),
        "entity,start,end,label\nweb-1,100,109,anomaly\nweb-1,300,319,normal\nweb-2,0,5,anomaly\n",
    )
    .unwrap();
    let flags = [
        "--feedback",
        "feedback.csv",
        "--entity",
        "web-1",
        "--epochs",
        "2",
    ];
    let out = vigil_ok(&tune_args("new.csv", "tuned", &flags), d);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("10 labelled anomalous"), "{said}");
    // Several entities and none named; an entity the file does not know; labels twice.
    let refused = |input: &str, extra: &[&str]| {
        let out = vigil(&tune_args(input, "never", extra), d);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let why = refused("new.csv", &["--feedback", "feedback.csv"]);
    assert!(
        why.contains("several entities (web-1, web-2)") && why.contains("--entity"),
        "{why}"
    );
    let why = refused("new.csv", &["--feedback", "feedback.csv", "--entity", "db"]);
    assert!(why.contains("no feedback about entity `db`"), "{why}");
    std::fs::write(d.join("labelled.csv"), csv(600, true, true)).unwrap();
    let why = refused(
        "labelled.csv",
        &["--feedback", "feedback.csv", "--entity", "web-1"],
    );
    assert!(why.contains("use one of them"), "{why}");
    assert!(!d.join("never").exists());
}

/// [`csv`] without labels, with a `weight` column: `weight(t)` for step `t`.
fn weighted_csv(rows: usize, weight: impl Fn(usize) -> f64) -> String {
    let plain = csv(rows, true, false);
    let mut lines = plain.lines();
    let mut s = format!("{},weight\n", lines.next().unwrap());
    for (t, line) in lines.enumerate() {
        s.push_str(&format!("{line},{}\n", weight(t)));
    }
    s
}

#[test]
fn tune_reads_step_weights_from_a_column() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    train(d, "usad");
    // The bursts (steps 100..110 of every 200) count ten times the rest.
    let burst = |t: usize| (100..110).contains(&(t % 200));
    let weighted = weighted_csv(600, |t| if burst(t) { 10.0 } else { 1.0 });
    std::fs::write(d.join("weighted.csv"), weighted).unwrap();
    let tune = |output: &str, extra: &[&str]| vigil(&tune_args("weighted.csv", output, extra), d);
    let out = tune("tuned", &["--weight-column", "weight"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The weight column is not a metric: the model keeps its two.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("tuned/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["metric_names"], serde_json::json!(["a", "b"]));
    // Without the flag the column is a third metric, which the model does not have.
    let out = tune("plain", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("metric"));
    let out = tune("other", &["--weight-column", "wieght"]);
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains("no column `wieght`") && why.contains("a, b, weight"),
        "{why}"
    );
    std::fs::write(
        d.join("weighted.csv"),
        weighted_csv(600, |t| if t == 5 { -1.0 } else { 1.0 }),
    )
    .unwrap();
    let out = tune("negative", &["--weight-column", "weight"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("step_weights[5] is -1"));
    assert!(!d.join("plain").exists() && !d.join("other").exists() && !d.join("negative").exists());
}

#[test]
fn tune_refuses_what_it_cannot_do_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("feedback.csv"), csv(600, true, true)).unwrap();
    let refused = |args: &[&str], why: &str| {
        let out = vigil(args, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(!d.join("tuned").exists(), "{args:?} wrote a model");
    };
    train(d, "pca");
    let tune = tune_args("feedback.csv", "tuned", &[]);
    refused(&tune, "cannot continue training");
    train(d, "usad");
    let mut unknown = tune.to_vec();
    unknown.extend(["--freeze", "decoder9"]);
    refused(&unknown, "no layer group `decoder9`");
    refused(&tune_args("feedback.csv", "m/v2", &[]), "inside --model");
    assert!(!d.join("m/v2").exists());
    let mut zero = tune.to_vec();
    zero.extend(["--epochs", "0"]);
    refused(&zero, "epochs");
    std::fs::write(d.join("other.csv"), "x\n1\n2\n").unwrap();
    refused(&tune_args("other.csv", "tuned", &[]), "metric");
}
