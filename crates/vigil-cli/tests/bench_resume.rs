//! `vigil bench --output` keeps a journal of finished rows, so that an interrupted run started
//! again with the same command goes on where it stopped, and never mixes rows of another command.

mod common;

use common::{vigil, vigil_ok};
use std::path::Path;

const BENCH: [&str; 11] = {
    let p = common::PCA_BENCH_ON_SMD;
    [
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], "--output", "table.md",
    ]
};

/// The journal's first line for `arguments` (what `vigil bench` writes before its first row).
fn header(arguments: &[&str]) -> String {
    serde_json::json!({
        "vigil": env!("CARGO_PKG_VERSION"),
        "arguments": arguments,
        "config": null,
    })
    .to_string()
}

/// The bench's rows as JSON, from a run that leaves nothing behind.
fn rows_of_a_whole_run(dir: &Path) -> Vec<serde_json::Value> {
    let out = vigil_ok(&[&BENCH[..], &["--json", "-q"]].concat(), dir);
    assert!(
        !dir.join("table.md.journal.jsonl").exists(),
        "a finished run removes its journal"
    );
    std::fs::remove_file(dir.join("table.md")).unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_interrupted_bench_run_again_keeps_its_finished_rows_and_runs_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    common::write_two_smd_machines(dir.path());
    let rows = rows_of_a_whole_run(dir.path());
    assert_eq!(rows.len(), 2);

    // What a run killed while writing its second row leaves: the header, the first row (with
    // a training time no run of pca on 600 steps takes, to see that it is reused, not re-run)
    // and the start of the second row.
    let mut first = rows[0].clone();
    assert_eq!(first["entity"], "machine-1-1");
    first["train_seconds"] = serde_json::json!(4321.5);
    let cut_short = &rows[1].to_string()[..40];
    let journal = dir.path().join("table.md.journal.jsonl");
    std::fs::write(
        &journal,
        format!("{}\n{first}\n{cut_short}", header(&BENCH)),
    )
    .unwrap();

    vigil_ok(&[&BENCH[..], &["-q"]].concat(), dir.path());
    let table = std::fs::read_to_string(dir.path().join("table.md")).unwrap();
    let row = |entity: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| pca | {entity} |")))
            .unwrap_or_else(|| panic!("no {entity} row in {table}"))
            .to_string()
    };
    assert!(row("machine-1-1").contains("| 4321.5 |"), "{table}");
    assert!(!row("machine-1-2").contains("| 4321.5 |"), "{table}");
    assert!(
        table.contains("1 of the 2 rows were measured by an earlier run"),
        "{table}"
    );
    assert!(
        !journal.exists(),
        "the journal is removed with the table written"
    );
}

#[test]
fn a_journal_written_by_another_command_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    common::write_two_smd_machines(dir.path());
    let other = [&BENCH[..8], &["2", "--output", "table.md"]].concat();
    let journal = dir.path().join("table.md.journal.jsonl");
    let text = format!("{}\n", header(&other));
    std::fs::write(&journal, &text).unwrap();

    let out = vigil(&BENCH, dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("written by another command"), "{err}");
    assert!(err.contains("--seed 2"), "{err}");
    assert!(err.contains("delete"), "{err}");
    assert!(!dir.path().join("table.md").exists());
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), text);
}

#[test]
fn a_row_that_fails_keeps_the_rows_before_it_for_the_run_after_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    common::write_two_smd_machines(dir.path());
    let train = dir.path().join("SMD/train/machine-1-2.txt");
    let whole = std::fs::read_to_string(&train).unwrap();
    let short: String = whole.lines().take(30).map(|l| format!("{l}\n")).collect();
    std::fs::write(&train, short).unwrap();
    std::fs::write(
        dir.path().join("usad.toml"),
        "detector = \"usad\"\n[detector_config]\nwindow = 100\n",
    )
    .unwrap();
    let args = [
        &BENCH[..5],
        &[
            "--detectors",
            "usad",
            "--config",
            "usad.toml",
            "--epochs",
            "1",
            "--output",
            "table.md",
        ],
    ]
    .concat();

    let out = vigil(&args, dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("longer than the training series"), "{err}");
    assert!(err.contains("kept in table.md.journal.jsonl"), "{err}");
    assert!(!dir.path().join("table.md").exists());
    let journal = std::fs::read_to_string(dir.path().join("table.md.journal.jsonl")).unwrap();
    assert_eq!(
        journal.lines().count(),
        2,
        "header and machine-1-1: {journal}"
    );
    assert!(journal.contains("\"entity\":\"machine-1-1\""), "{journal}");

    std::fs::write(&train, whole).unwrap();
    vigil_ok(&args, dir.path());
    let table = std::fs::read_to_string(dir.path().join("table.md")).unwrap();
    assert!(table.contains("| usad | machine-1-2 |"), "{table}");
    assert!(
        table.contains("1 of the 2 rows were measured by an earlier run"),
        "{table}"
    );
}
