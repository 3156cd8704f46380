//! Killed at every step of every write (crash points: `vigil_core::write::crash`): the file or
//! model on disk is then the old one or the new one, complete — never half of one, never
//! none — and the next run cleans what the killed one left.

use crate::support::{manifest, Sandbox};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

/// Every step of an output file's replacement.
const OUTPUT_POINTS: [&str; 4] = [
    "output:created",
    "output:written",
    "output:synced",
    "output:renamed",
];

/// Every step of a model directory's replacement (the exchange path, and the two-rename
/// fallback for file systems that cannot exchange).
const MODEL_POINTS: [&str; 5] = [
    "model:staged",
    "model:swapped",
    "model:swap-synced",
    "model:moved-aside",
    "model:renamed",
];

fn run_crashing_at(s: &Sandbox, point: &str, args: &[&str]) -> Output {
    run_crashing(s, point, args, false)
}

/// Runs vigil killed at `point`; `fallback` makes folder swaps take the two-rename path that
/// file systems without RENAME_EXCHANGE get.
fn run_crashing(s: &Sandbox, point: &str, args: &[&str], fallback: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command
        .args(args)
        .current_dir(s.dir.path())
        .env("VIGIL_CRASH_AT", point);
    if fallback {
        command.env("VIGIL_NO_EXCHANGE", "1");
    }
    command.output().unwrap()
}

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(9)
}

#[test]
fn a_scores_file_killed_at_every_step_is_old_or_new() {
    let s = Sandbox::with_model();
    let detect = [
        "detect",
        "--model",
        "model",
        "--input",
        "train.csv",
        "--output",
        "scores.csv",
        "-q",
    ];
    let mut reached = 0;
    for point in OUTPUT_POINTS {
        s.write("scores.csv", "old");
        let out = run_crashing_at(&s, point, &detect);
        assert!(
            killed(&out),
            "{point} was not reached: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        reached += 1;
        let text = std::fs::read_to_string(s.path("scores.csv")).unwrap();
        let complete_new = text.starts_with("step,score") && text.lines().count() == 201;
        assert!(
            text == "old" || complete_new,
            "after a kill at {point}: {text:.80}"
        );
        if point == "output:renamed" {
            assert!(complete_new, "renamed, so the new file is in place");
        }
        // The next run cleans the killed run's temporary file and writes the scores.
        s.ok(&detect);
        assert!(
            s.leftovers().is_empty(),
            "after {point}: {:?}",
            s.leftovers()
        );
    }
    assert_eq!(reached, OUTPUT_POINTS.len());
}

#[test]
fn a_model_killed_at_every_step_of_its_replacement_is_old_or_new() {
    let reached = kill_every_model_step(false);
    // Staging is always reached, and one of the two ways of swapping.
    assert!(reached.contains(&"model:staged"), "{reached:?}");
    assert!(
        reached.contains(&"model:swapped") || reached.contains(&"model:moved-aside"),
        "{reached:?}"
    );
}

#[test]
fn without_rename_exchange_a_killed_replacement_still_leaves_a_model() {
    let reached = kill_every_model_step(true);
    assert_eq!(
        reached,
        ["model:staged", "model:moved-aside", "model:renamed"]
    );
}

/// Retrains `model/` killed at each model crash point; after each kill the model verifies and
/// is the old or the new one (a model moved aside is put back by the next read), and the next
/// write leaves no temporary name. Returns the points reached.
fn kill_every_model_step(fallback: bool) -> Vec<&'static str> {
    let s = Sandbox::with_model();
    s.write("longer.csv", &crate::support::periodic_csv(300, 0.0));
    let retrain = [
        "train",
        "--train",
        "longer.csv",
        "--model",
        "model",
        "--detector",
        "pca",
        "-q",
    ];
    let restore = [
        "train",
        "--train",
        "train.csv",
        "--model",
        "model",
        "--detector",
        "pca",
        "-q",
    ];
    let mut reached = Vec::new();
    for point in MODEL_POINTS {
        let out = run_crashing(&s, point, &retrain, fallback);
        if killed(&out) {
            reached.push(point);
        } else {
            assert!(
                out.status.success(),
                "{point}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The model verifies (every checksum; reading puts back a model left aside) and is the
        // old one or the new one.
        s.detect_ok("s.csv");
        let steps = manifest(&s.path("model"))["training"]["train_steps"].clone();
        assert!(
            steps == 200 || steps == 300,
            "after a kill at {point}: {steps}"
        );
        // The next write cleans up after the killed one.
        s.ok(&restore);
        assert_eq!(manifest(&s.path("model"))["training"]["train_steps"], 200);
        assert!(
            s.leftovers().is_empty(),
            "after {point}: {:?}",
            s.leftovers()
        );
    }
    reached
}

#[test]
fn a_first_model_killed_while_written_is_absent_or_complete() {
    for point in MODEL_POINTS {
        let s = Sandbox::new();
        let train = [
            "train",
            "--train",
            "train.csv",
            "--model",
            "fresh",
            "--detector",
            "pca",
            "-q",
        ];
        let out = run_crashing_at(&s, point, &train);
        if s.path("fresh").exists() {
            // Whatever is there is a whole model.
            s.ok(&[
                "detect",
                "--model",
                "fresh",
                "--input",
                "train.csv",
                "--output",
                "s.csv",
                "-q",
            ]);
        } else {
            assert!(killed(&out), "{point}: no model and no kill");
        }
        s.ok(&train);
        assert!(
            s.leftovers().is_empty(),
            "after {point}: {:?}",
            s.leftovers()
        );
    }
}
