//! `vigil fleet generate` and `vigil fleet cluster` through the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn vigil(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the vigil binary runs")
}

#[test]
fn a_generated_fleet_clusters_into_its_archetypes() {
    let dir = tempfile::tempdir().unwrap();
    let out = vigil(
        &[
            "fleet",
            "generate",
            "--out",
            "gen",
            "--entities",
            "60",
            "--archetypes",
            "6",
            "--period",
            "96",
            "-q",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("gen/train/entity-0059.csv").exists());
    assert!(dir.path().join("gen/test/entity-0000.csv").exists());
    let out = vigil(
        &[
            "fleet",
            "cluster",
            "--entities",
            "gen",
            "--fleet",
            "fleet",
            "--segment-length",
            "96",
            "--json",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["entities"], 60);
    assert_eq!(report["clusters"], 6);
    assert!(
        report["adjusted_rand_index"].as_f64().unwrap() >= 0.9,
        "{report}"
    );
    let clusters: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("fleet/clusters.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(clusters["format"], "vigil-fleet-clusters");
    assert_eq!(
        clusters["clusters"][0]["nearest"].as_array().unwrap().len(),
        5
    );
}

#[test]
fn bad_fleets_are_refused_with_the_entity_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = vigil(
        &["fleet", "cluster", "--entities", "nowhere", "--fleet", "f"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a folder of entities"));

    let entities = dir.path().join("entities");
    std::fs::create_dir_all(&entities).unwrap();
    let rows = |header: &str, n: usize| {
        let mut s = format!("{header}\n");
        for t in 0..n {
            s.push_str(&format!(
                "{},{}\n",
                (t as f64 / 5.0).sin(),
                (t as f64 / 7.0).cos()
            ));
        }
        s
    };
    std::fs::write(entities.join("a.csv"), rows("cpu,mem", 200)).unwrap();
    std::fs::write(entities.join("b.csv"), rows("cpu,disk", 200)).unwrap();
    let out = vigil(
        &[
            "fleet",
            "cluster",
            "--entities",
            "entities",
            "--fleet",
            "f",
            "--segment-length",
            "50",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("b.csv"), "{err}");

    std::fs::write(entities.join("b.csv"), rows("cpu,mem", 20)).unwrap();
    let out = vigil(
        &[
            "fleet",
            "cluster",
            "--entities",
            "entities",
            "--fleet",
            "f",
            "--segment-length",
            "50",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("entity b has 20 steps, fewer than one segment of 50"),
        "{err}"
    );
    assert!(!dir.path().join("f/clusters.json").exists());
}
