//! The process edges: closed pipes, full disks, `--json` errors, flags that a config file
//! would refuse.

use crate::support::Sandbox;
use std::process::{Command, Stdio};

#[test]
fn a_closed_pipe_ends_quietly() {
    // A pipe whose reading end is closed before vigil starts: its first write to stdout fails
    // with EPIPE, deterministically (as `vigil models | head -1` does once head has exited).
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() returns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here alone.
    let (read_end, write_end) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(read_end);
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("models")
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_full_standard_output_is_exit_2() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("models")
        .stdout(full)
        .output()
        .unwrap();
    crate::support::refused_with(
        &out,
        &["models > /dev/full"],
        "cannot write to standard output",
    );
}

#[test]
fn json_errors_name_file_line_and_column_on_stdout() {
    let s = Sandbox::new();
    s.write("bad.csv", "a,b\n1,2\n3,x\n");
    let out = s.refused(
        &[
            "--json",
            "train",
            "--train",
            "bad.csv",
            "--model",
            "m",
            "--detector",
            "pca",
        ],
        "is not a number",
    );
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["path"], "bad.csv");
    assert_eq!(error["line"], 3);
    assert_eq!(error["column"], "b");
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("`x` is not a number"));
    // A model directory problem names the directory; an unknown flag is JSON too.
    let out = s.refused(
        &[
            "--json", "detect", "--model", "nope", "--input", "bad.csv", "--output", "o.csv",
        ],
        "nope",
    );
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["path"], "nope");
    let out = s.refused(&["--json", "models", "--bogus"], "--bogus");
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(error["error"].as_str().unwrap().contains("--bogus"));
}

#[test]
fn a_flag_is_refused_with_the_message_its_config_key_gets() {
    let s = Sandbox::new();
    s.write("zero.toml", "detector = \"usad\"\nepochs = 0\n");
    let from_file = s.refused(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "m",
            "--config",
            "zero.toml",
        ],
        "epochs must be at least 1, got 0",
    );
    let from_flag = s.refused(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "m",
            "--detector",
            "usad",
            "--epochs",
            "0",
        ],
        "epochs must be at least 1, got 0",
    );
    assert_eq!(from_file.stderr, from_flag.stderr);
    assert!(!s.path("m").exists());
}

#[test]
fn a_config_path_that_is_a_folder_is_refused() {
    let s = Sandbox::new();
    std::fs::create_dir(s.path("conf")).unwrap();
    s.refused(
        &[
            "train",
            "--train",
            "train.csv",
            "--model",
            "m",
            "--config",
            "conf",
        ],
        "cannot read config file conf",
    );
    assert!(!s.path("m").exists());
}

#[test]
fn zero_threads_is_refused() {
    let s = Sandbox::new();
    s.refused(
        &["--threads", "0", "models"],
        "--threads must be at least 1",
    );
}
