//! Output paths: written as the user meant, never over an input, never replacing a FIFO, a
//! device or a link with an ordinary file.

use crate::support::{refused_with, Sandbox};
use std::os::unix::fs::FileTypeExt;

fn detect_to(s: &Sandbox, output: &str) -> std::process::Output {
    s.run(&[
        "detect",
        "--model",
        "model",
        "--input",
        "train.csv",
        "--output",
        output,
        "-q",
    ])
}

fn refused_detect(s: &Sandbox, output: &str, expect: &str) {
    let before = s.snapshot();
    let out = detect_to(s, output);
    refused_with(&out, &["detect --output", output], expect);
    before.unchanged_in(&s.snapshot());
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[test]
fn the_output_cannot_be_the_input() {
    let s = Sandbox::with_model();
    refused_detect(&s, "train.csv", "is the same file as --input");
}

#[test]
fn the_output_cannot_be_a_hard_link_to_the_input() {
    let s = Sandbox::with_model();
    std::fs::hard_link(s.path("train.csv"), s.path("alias.csv")).unwrap();
    refused_detect(&s, "alias.csv", "is the same file as --input");
}

#[test]
fn the_output_cannot_be_a_symbolic_link_to_the_input() {
    let s = Sandbox::with_model();
    std::os::unix::fs::symlink(s.path("train.csv"), s.path("link.csv")).unwrap();
    refused_detect(&s, "link.csv", "is the same file as --input");
}

#[test]
fn a_folder_as_output_is_refused() {
    let s = Sandbox::with_model();
    s.write("results/keep.txt", "keep");
    refused_detect(&s, "results", "is a folder");
}

#[test]
fn a_dangling_link_as_output_is_refused() {
    let s = Sandbox::with_model();
    std::os::unix::fs::symlink(s.path("nowhere/x.csv"), s.path("dangling.csv")).unwrap();
    refused_detect(&s, "dangling.csv", "does not exist");
}

#[test]
fn a_link_to_a_file_writes_the_file_and_keeps_the_link() {
    let s = Sandbox::with_model();
    s.write("real.csv", "old");
    std::os::unix::fs::symlink(s.path("real.csv"), s.path("link.csv")).unwrap();
    s.detect_ok("link.csv");
    let link = std::fs::symlink_metadata(s.path("link.csv")).unwrap();
    assert!(link.file_type().is_symlink());
    assert!(std::fs::read_to_string(s.path("real.csv"))
        .unwrap()
        .starts_with("step,score"));
}

#[test]
fn a_fifo_is_written_in_place_and_stays_a_fifo() {
    let s = Sandbox::with_model();
    let fifo = s.path("scores.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    s.detect_ok("scores.fifo");
    let text = reader.join().unwrap();
    assert!(
        text.starts_with("step,score") && text.lines().count() == 201,
        "{text}"
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn a_character_device_is_written_in_place() {
    let s = Sandbox::with_model();
    s.detect_ok("/dev/null");
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_full_disk_is_exit_2_with_the_path() {
    let s = Sandbox::with_model();
    let out = detect_to(&s, "/dev/full");
    refused_with(
        &out,
        &["detect --output /dev/full"],
        "cannot write /dev/full",
    );
}

#[test]
fn a_replaced_output_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let s = Sandbox::with_model();
    let path = s.write("private.csv", "old");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.detect_ok("private.csv");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_killed_runs_temporary_file_is_cleaned_and_a_users_dotfile_kept() {
    let s = Sandbox::with_model();
    // A leftover of a run whose process is gone (pid 0 is never a user process), and files
    // of the user's that merely look similar.
    s.write(".scores.csv.vigil-0-Ab12Cd.tmp", "half a file");
    s.write(".scores.csv.backup", "mine");
    s.write(".scores.csv.vigil-notes", "mine too");
    s.detect_ok("scores.csv");
    assert!(!s.path(".scores.csv.vigil-0-Ab12Cd.tmp").exists());
    assert!(s.path(".scores.csv.backup").exists() && s.path(".scores.csv.vigil-notes").exists());
}

#[test]
fn plot_does_not_draw_over_its_input() {
    let s = Sandbox::with_model();
    s.detect_ok("scores.csv");
    let before = s.snapshot();
    let out = s.run(&[
        "plot",
        "--series",
        "train.csv",
        "--scores",
        "scores.csv",
        "--output",
        "scores.csv",
    ]);
    refused_with(
        &out,
        &["plot --output scores.csv"],
        "is the same file as --scores",
    );
    before.unchanged_in(&s.snapshot());
}

#[test]
fn an_output_below_a_file_is_refused_naming_the_file() {
    let s = Sandbox::with_model();
    s.write("report", "a file, not a folder");
    refused_detect(
        &s,
        "report/scores.csv",
        "report: is a file, so it cannot hold the output",
    );
}

#[test]
fn an_output_named_with_spaces_quotes_and_unicode_is_written_as_named() {
    let s = Sandbox::with_model();
    let name = "scores \"v2\" — Δ ü.csv";
    s.detect_ok(name);
    assert!(std::fs::read_to_string(s.path(name))
        .unwrap()
        .starts_with("step,score"));
}

#[test]
fn dev_stdout_appended_to_a_log_keeps_the_log() {
    let s = Sandbox::with_model();
    let log = s.write("history.log", "precious 1\nprecious 2\n");
    let appending = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "detect",
            "--model",
            "model",
            "--input",
            "train.csv",
            "--output",
            "/dev/stdout",
            "-q",
        ])
        .current_dir(s.dir.path())
        .stdout(appending)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("precious 1\nprecious 2\nstep,score"),
        "{text:.80}"
    );
    assert_eq!(
        text.lines().count(),
        2 + 201,
        "the summary stays out of the scores"
    );
}

#[test]
fn an_output_inside_the_model_directory_is_refused() {
    let s = Sandbox::with_model();
    refused_detect(
        &s,
        "model/pca.json",
        "vigil does not write into a model directory",
    );
    refused_detect(
        &s,
        "model/new-scores.csv",
        "vigil does not write into a model directory",
    );
}

#[test]
fn the_scores_and_the_stream_state_cannot_share_a_path() {
    let s = Sandbox::with_model();
    let before = s.snapshot();
    let args = [
        "detect",
        "--model",
        "model",
        "--input",
        "train.csv",
        "--output",
        "same.csv",
        "--state",
        "same.csv",
    ];
    s.refused(&args, "--output is the same file as --state");
    before.unchanged_in(&s.snapshot());
    assert!(!s.path("same.csv").exists());
}

#[test]
fn a_file_with_other_hard_links_is_not_split() {
    let s = Sandbox::with_model();
    s.write("scores.csv", "old");
    std::fs::hard_link(s.path("scores.csv"), s.path("also-scores.csv")).unwrap();
    refused_detect(&s, "scores.csv", "has 2 hard links");
}
