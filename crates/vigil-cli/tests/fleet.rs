//! `vigil fleet generate` and `vigil fleet cluster` through the real binary.

mod common;

use common::{vigil, vigil_ok};
use std::path::Path;
use std::process::Command;

#[test]
fn a_generated_fleet_clusters_into_its_archetypes() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 60, 6);
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
    // Transfer before any base model exists: refused, saying which step comes first.
    let out = vigil(
        &["fleet", "transfer", "--entities", "gen", "--fleet", "fleet"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run `vigil fleet train-base"), "{err}");
    assert!(!dir.path().join("fleet/entities").exists());
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

/// `vigil fleet generate`: `entities` entities of 96 steps a day from `archetypes` archetypes,
/// into `dir/gen`.
fn generate(dir: &Path, entities: usize, archetypes: usize) {
    let (entities, archetypes) = (entities.to_string(), archetypes.to_string());
    vigil_ok(
        &[
            "fleet",
            "generate",
            "--out",
            "gen",
            "--entities",
            &entities,
            "--archetypes",
            &archetypes,
            "--period",
            "96",
            "-q",
        ],
        dir,
    );
}

/// Copies the training files of entities `range` from `gen/train` into `to/`.
fn copy_entities(dir: &Path, to: &str, range: std::ops::Range<usize>) {
    std::fs::create_dir_all(dir.join(to)).unwrap();
    for e in range {
        let name = format!("entity-{e:04}.csv");
        std::fs::copy(dir.join("gen/train").join(&name), dir.join(to).join(&name)).unwrap();
    }
}

#[test]
fn a_killed_transfer_finishes_the_rest_and_leaves_finished_entities_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| vigil_ok(args, dir.path());
    generate(dir.path(), 60, 4);
    // Offline entities build the clusters and base models; the online ones are adapted.
    copy_entities(dir.path(), "off", 0..20);
    copy_entities(dir.path(), "on", 20..60);
    run(&[
        "fleet",
        "cluster",
        "--entities",
        "off",
        "--fleet",
        "fleet",
        "--segment-length",
        "96",
        "--clusters",
        "4",
        "-q",
    ]);
    run(&[
        "fleet",
        "train-base",
        "--entities",
        "off",
        "--fleet",
        "fleet",
        "--epochs",
        "2",
        "-q",
    ]);

    let records = |dir: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.join("fleet/entities"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.to_string_lossy().ends_with(".transfer.json"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "fleet",
            "transfer",
            "--entities",
            "on",
            "--fleet",
            "fleet",
            "-q",
        ])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while records(dir.path()).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no entity finished in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before: Vec<(std::path::PathBuf, Vec<u8>, Vec<u8>)> = records(dir.path())
        .into_iter()
        .map(|record| {
            let name = record
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".transfer.json", "");
            let manifest = dir
                .path()
                .join("fleet/entities")
                .join(&name)
                .join("manifest.json");
            (
                record.clone(),
                std::fs::read(&record).unwrap(),
                std::fs::read(manifest).unwrap(),
            )
        })
        .collect();
    assert!(
        done_before.len() < 40,
        "the kill came too late to test anything"
    );

    let out = run(&[
        "fleet",
        "transfer",
        "--entities",
        "on",
        "--fleet",
        "fleet",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["done_earlier"], done_before.len());
    assert_eq!(
        report["adapted"].as_u64().unwrap() as usize + done_before.len(),
        40
    );
    for (record, bytes, manifest) in &done_before {
        assert_eq!(
            &std::fs::read(record).unwrap(),
            bytes,
            "{record:?} was redone"
        );
        let name = record
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".transfer.json", "");
        let model = dir.path().join("fleet/entities").join(&name);
        assert_eq!(
            &std::fs::read(model.join("manifest.json")).unwrap(),
            manifest
        );
    }
    // Every online entity now has a model: `fleet detect` scores their test series.
    assert_eq!(records(dir.path()).len(), 40);
    let out = run(&[
        "fleet",
        "detect",
        "--entities",
        "gen",
        "--fleet",
        "fleet",
        "--output",
        "scores",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["scored"], 40);
    assert_eq!(
        report["without_model"].as_array().unwrap().len(),
        20,
        "the offline entities"
    );
    let pa_f1 = report["mean_pa_f1"].as_f64().unwrap();
    assert!(pa_f1 > 0.0 && pa_f1 <= 1.0, "{report}");
    assert!(dir.path().join("scores/entity-0059.csv").exists());

    // Workers do not change the models: one job, from scratch, gives the same training scores
    // byte for byte (the weight files differ only in burn's random parameter ids, which a
    // partial transfer's fresh layers draw anew).
    let copy = dir.path().join("fleet-one-job");
    std::fs::create_dir_all(copy.join("base")).unwrap();
    std::fs::copy(
        dir.path().join("fleet/clusters.json"),
        copy.join("clusters.json"),
    )
    .unwrap();
    for entry in std::fs::read_dir(dir.path().join("fleet/base")).unwrap() {
        let from = entry.unwrap().path();
        let to = copy.join("base").join(from.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
        }
    }
    run(&[
        "fleet",
        "transfer",
        "--entities",
        "on",
        "--fleet",
        "fleet-one-job",
        "--jobs",
        "1",
        "-q",
    ]);
    for e in 20..60 {
        let scores = |fleet: &str| {
            let path = format!("entities/entity-{e:04}/calibration.f64");
            std::fs::read(dir.path().join(fleet).join(path)).unwrap()
        };
        assert!(scores("fleet") == scores("fleet-one-job"), "entity {e}");
    }
}

/// `train-base` in worker processes trains the same models as in one process (their training
/// scores are byte-identical), and a second run finds every model and trains none.
#[test]
fn base_models_trained_in_workers_match_one_job_and_are_kept_by_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = vigil_ok(args, dir.path());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    generate(dir.path(), 20, 3);
    run(&[
        "fleet",
        "cluster",
        "--entities",
        "gen",
        "--fleet",
        "one",
        "--segment-length",
        "96",
        "--clusters",
        "3",
        "-q",
    ]);
    std::fs::create_dir_all(dir.path().join("two")).unwrap();
    std::fs::copy(
        dir.path().join("one/clusters.json"),
        dir.path().join("two/clusters.json"),
    )
    .unwrap();
    let train_base = |fleet: &str, jobs: &str| {
        run(&[
            "fleet",
            "train-base",
            "--entities",
            "gen",
            "--fleet",
            fleet,
            "--epochs",
            "2",
            "--jobs",
            jobs,
            "--json",
        ])
    };
    let one = train_base("one", "1");
    let two = train_base("two", "2");
    assert_eq!(one["jobs"], 1);
    assert_eq!(two["jobs"], 2);
    for report in [&one, &two] {
        let models = report["base_models"].as_array().unwrap();
        assert_eq!(models.len(), 3, "{report}");
        assert!(models.iter().all(|m| m["reused"] == false), "{report}");
    }
    for c in 0..3 {
        let scores = |fleet: &str| {
            let path = format!("{fleet}/base/cluster-{c}/calibration.f64");
            std::fs::read(dir.path().join(path)).unwrap()
        };
        assert!(scores("one") == scores("two"), "cluster {c}");
    }
    let again = train_base("two", "2");
    let models = again["base_models"].as_array().unwrap();
    assert_eq!(models.len(), 3, "{again}");
    assert!(models.iter().all(|m| m["reused"] == true), "{again}");
}

#[test]
fn bench_fleet_tables_every_strategy_and_refuses_unknown_online_entities() {
    let dir = tempfile::tempdir().unwrap();
    let out = vigil(
        &[
            "fleet",
            "generate",
            "--out",
            "gen",
            "--entities",
            "8",
            "--archetypes",
            "2",
            "--metrics",
            "3",
            "--period",
            "48",
            "-q",
        ],
        dir.path(),
    );
    assert!(out.status.success());
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--fleet",
            "--dataset",
            "gen",
            "--epochs",
            "1",
            "--fine-tune-epochs",
            "1",
            "--clusters",
            "2",
            "-q",
        ];
        args.extend_from_slice(extra);
        vigil(&args, dir.path())
    };
    let out = bench(&["--output", "fleet.md"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = std::fs::read_to_string(dir.path().join("fleet.md")).unwrap();
    for row in [
        "| OmniTransfer | 2 |",
        "| one model per entity | 0 |",
        "| C1: one base model | 1 |",
        "| C2: no alignment |",
        "| C3: base model only | 2 |",
    ] {
        assert!(table.contains(row), "{row} missing from:\n{table}");
    }
    // The period in truth.json gave the segment length: one day.
    assert!(table.contains("newest 48 training steps"), "{table}");
    let out = bench(&["--online", "entity-0001,nobody"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--online names nobody"), "{err}");
    let out = bench(&["--memory"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not apply to --fleet"), "{err}");
    // A gap in one entity is refused with the entity named.
    let file = dir.path().join("gen/train/entity-0003.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<&str> = lines[5].split(',').collect();
    cells[1] = "NaN";
    lines[5] = cells.join(",");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = bench(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("entity entity-0003's training series"),
        "{err}"
    );
    assert!(err.contains("--missing interpolate"), "{err}");
    std::fs::remove_dir_all(dir.path().join("gen/test")).unwrap();
    let out = bench(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no test/ folder"), "{err}");
}
