//! Fleet state knows its provenance: after a re-clustering, base and entity models made for
//! the old clusters are retrained or refused, never silently reused; fleet flags are checked
//! as the library checks them.

use crate::support::Sandbox;

fn fleet_sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&[
        "fleet",
        "generate",
        "--out",
        "fl",
        "--entities",
        "6",
        "--archetypes",
        "2",
        "--metrics",
        "2",
        "--period",
        "24",
        "-q",
    ]);
    s
}

fn cluster(s: &Sandbox, k: &str) {
    s.ok(&[
        "fleet",
        "cluster",
        "--entities",
        "fl",
        "--fleet",
        "f",
        "--segment-length",
        "24",
        "--clusters",
        k,
        "-q",
    ]);
}

fn train_base(s: &Sandbox) -> serde_json::Value {
    let out = s.ok(&[
        "--json",
        "fleet",
        "train-base",
        "--entities",
        "fl",
        "--fleet",
        "f",
        "--epochs",
        "1",
        "-q",
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn transfer(s: &Sandbox) -> std::process::Output {
    s.run(&[
        "--json",
        "fleet",
        "transfer",
        "--entities",
        "fl",
        "--fleet",
        "f",
        "-q",
    ])
}

#[test]
fn after_a_re_clustering_stale_models_are_retrained_or_refused() {
    let s = fleet_sandbox();
    cluster(&s, "2");
    train_base(&s);
    assert!(transfer(&s).status.success());
    // The same clustering again: everything is reused.
    let again = train_base(&s);
    assert!(again["base_models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reused"] == true));
    // A new clustering: transfer refuses the old base models...
    cluster(&s, "3");
    let out = transfer(&s);
    crate::support::refused_with(
        &out,
        &["fleet transfer"],
        "was trained for an earlier clustering",
    );
    // ... train-base retrains them, and transfer then adapts every entity anew.
    let retrained = train_base(&s);
    let records = retrained["base_models"].as_array().unwrap();
    assert!(records.iter().all(|r| r["reused"] == false));
    assert!(
        records
            .iter()
            .filter(|r| r["replaced_stale"] == true)
            .count()
            >= 2
    );
    let out = transfer(&s);
    assert!(out.status.success());
    let tally: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tally["done_earlier"], 0, "{tally}");
}

#[test]
fn fleet_flags_are_refused_as_the_library_refuses_them() {
    let s = fleet_sandbox();
    for (args, expect) in [
        (
            vec!["fleet", "generate", "--out", "g", "--noise", "NaN"],
            "--noise must be a finite number",
        ),
        (
            vec!["fleet", "generate", "--out", "g", "--noise=-1"],
            "--noise must be a finite number",
        ),
        (
            vec!["fleet", "generate", "--out", "g", "--entities", "0"],
            "--entities must be at least 1",
        ),
        (
            vec![
                "fleet",
                "cluster",
                "--entities",
                "fl",
                "--fleet",
                "f",
                "--nearest",
                "0",
            ],
            "--nearest must be at least 1",
        ),
        (
            vec![
                "fleet",
                "cluster",
                "--entities",
                "fl",
                "--fleet",
                "f",
                "--max-distance",
                "NaN",
            ],
            "--max-distance must be a number at or above 0",
        ),
        (
            vec![
                "fleet",
                "cluster",
                "--entities",
                "fl",
                "--fleet",
                "f",
                "--clusters",
                "0",
            ],
            "--clusters must be at least 1",
        ),
    ] {
        s.refused(&args, expect);
    }
    assert!(!s.path("g").exists() && !s.path("f").exists());
    cluster(&s, "2");
    train_base(&s);
    for (args, expect) in [
        (
            vec![
                "fleet",
                "transfer",
                "--entities",
                "fl",
                "--fleet",
                "f",
                "--tau",
                "NaN",
            ],
            "--tau must be a number at or above 0",
        ),
        (
            vec![
                "fleet",
                "transfer",
                "--entities",
                "fl",
                "--fleet",
                "f",
                "--epochs",
                "0",
            ],
            "epochs must be at least 1",
        ),
        (
            vec![
                "fleet",
                "transfer",
                "--entities",
                "fl",
                "--fleet",
                "f",
                "--steps",
                "0",
            ],
            "--steps must be at least 1",
        ),
    ] {
        s.refused(&args, expect);
    }
    assert!(!s.path("f/entities").exists());
}

#[test]
fn fleet_detect_does_not_write_over_the_entities_it_scores() {
    let s = fleet_sandbox();
    cluster(&s, "2");
    train_base(&s);
    assert!(transfer(&s).status.success());
    let before = s.snapshot();
    s.refused(
        &[
            "fleet",
            "detect",
            "--entities",
            "fl/test",
            "--fleet",
            "f",
            "--output",
            "fl/test",
        ],
        "is the same file as --entities",
    );
    before.unchanged_in(&s.snapshot());
}
