//! Model directories: vigil replaces only what it can prove it wrote.

use crate::support::Sandbox;

const TRAIN: [&str; 6] = ["train", "--train", "train.csv", "--detector", "pca", "-q"];

fn train_into(sandbox: &Sandbox, model: &str, expect: &str) {
    let mut args = TRAIN.to_vec();
    args.extend(["--model", model]);
    let before = sandbox.snapshot();
    sandbox.refused(&args, expect);
    before.unchanged_in(&sandbox.snapshot());
    assert!(sandbox.leftovers().is_empty(), "{:?}", sandbox.leftovers());
}

#[test]
fn a_folder_with_a_foreign_manifest_is_not_deleted() {
    let s = Sandbox::new();
    s.write("p/manifest.json", "{}");
    s.write("p/notes.txt", "keep");
    train_into(&s, "p", "is not a vigil model that verifies");
}

#[test]
fn the_current_folder_is_never_replaced() {
    let s = Sandbox::new();
    s.write("notes.txt", "keep");
    train_into(&s, ".", "is the current folder");
}

#[test]
fn a_folder_that_contains_the_current_one_is_never_replaced() {
    let s = Sandbox::with_model();
    std::fs::create_dir(s.path("model/inner")).unwrap();
    let before = s.snapshot();
    let out = crate::common::vigil(
        &[
            "train",
            "--train",
            "../../train.csv",
            "--detector",
            "pca",
            "--model",
            "..",
        ],
        &s.path("model/inner"),
    );
    crate::support::refused_with(
        &out,
        &["train --model .."],
        "is the current folder or one that contains it",
    );
    before.unchanged_in(&s.snapshot());
}

#[test]
fn a_model_with_a_users_file_beside_it_is_not_replaced() {
    let s = Sandbox::with_model();
    s.write("model/notes.txt", "my notes on this model");
    train_into(&s, "model", "holds `notes.txt`");
}

#[test]
fn a_model_whose_files_were_edited_is_not_replaced() {
    let s = Sandbox::with_model();
    let calibration = s.path("model/calibration.f64");
    let mut bytes = std::fs::read(&calibration).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&calibration, bytes).unwrap();
    train_into(&s, "model", "does not match its checksum");
}

#[test]
fn a_file_named_as_the_model_is_not_replaced() {
    let s = Sandbox::new();
    s.write("results.csv", "precious");
    train_into(&s, "results.csv", "is a file");
}

#[test]
fn a_link_to_a_model_is_not_replaced() {
    let s = Sandbox::with_model();
    std::os::unix::fs::symlink(s.path("model"), s.path("current")).unwrap();
    train_into(&s, "current", "symbolic link");
}

#[test]
fn a_vigil_model_is_replaced_whole_and_an_empty_folder_is_used() {
    let s = Sandbox::with_model();
    s.write("longer.csv", &crate::support::periodic_csv(300, 0.0));
    let mut args = vec!["train", "--train", "longer.csv", "--detector", "pca", "-q"];
    args.extend(["--model", "model"]);
    s.ok(&args);
    assert_eq!(
        crate::support::manifest(&s.path("model"))["training"]["train_steps"],
        300
    );
    std::fs::create_dir(s.path("empty")).unwrap();
    let mut args = TRAIN.to_vec();
    args.extend(["--model", "empty"]);
    s.ok(&args);
    assert!(s.path("empty/manifest.json").exists());
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

/// A sandbox with a small generated fleet in `fleet/`, and the fleet bench command that keeps
/// its scratch fleets in `work/`.
fn fleet_bench_sandbox() -> (Sandbox, [&'static str; 15]) {
    let s = Sandbox::new();
    s.ok(&[
        "fleet",
        "generate",
        "--out",
        "fleet",
        "--entities",
        "4",
        "--archetypes",
        "2",
        "--metrics",
        "2",
        "--period",
        "24",
        "-q",
    ]);
    let bench = [
        "bench",
        "--fleet",
        "--dataset",
        "fleet",
        "--detectors",
        "usad",
        "--epochs",
        "1",
        "--segment-length",
        "24",
        "--strategies",
        "omnitransfer",
        "--work-dir",
        "work",
        "-q",
    ];
    (s, bench)
}

fn bench_refused_and_nothing_changed(s: &Sandbox, bench: &[&str]) {
    let before = s.snapshot();
    let out = s.run(bench);
    crate::support::refused_with(
        &out,
        &["bench --fleet --work-dir work"],
        "is not a fleet folder an earlier",
    );
    before.unchanged_in(&s.snapshot());
}

#[test]
fn a_fleet_work_folder_of_the_users_is_not_removed_by_the_fleet_bench() {
    let (s, bench) = fleet_bench_sandbox();
    // A folder of the user's where the bench keeps its scratch fleets.
    s.write("work/usad/split-0/omnitransfer/thesis.tex", "years of work");
    bench_refused_and_nothing_changed(&s, &bench);
}

#[test]
fn a_model_folder_with_a_sub_folder_of_the_users_is_not_replaced() {
    let s = Sandbox::with_model();
    s.write("model/plots/loss.png", "not a png, but the user's");
    train_into(&s, "model", "holds `plots`");
}

#[test]
fn a_killed_runs_staging_folder_is_removed_and_the_model_written() {
    let s = Sandbox::with_model();
    // What a run killed while staging leaves beside the model (pid 0: no such process).
    s.write(".model.vigil-0-Zz9Yy8.staging/weights.json", "half a model");
    let mut args = TRAIN.to_vec();
    args.extend(["--model", "model"]);
    s.ok(&args);
    assert!(!s.path(".model.vigil-0-Zz9Yy8.staging").exists());
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[test]
fn a_users_file_deep_in_an_earlier_fleet_bench_folder_is_not_removed() {
    let (s, bench) = fleet_bench_sandbox();
    s.ok(&bench);
    // The same command again replaces its own folders...
    s.ok(&bench);
    // ... but not once the user keeps something inside them.
    let cluster = std::fs::read_dir(s.path("work/usad/split-0/omnitransfer/base"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(cluster.join("notes.txt"), "why this cluster matters").unwrap();
    bench_refused_and_nothing_changed(&s, &bench);
}
