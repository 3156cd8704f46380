//! Worker processes for `vigil fleet train-base` and `vigil fleet transfer`: the parent runs
//! N copies of its own command, each on one core with a hidden `--worker I/N`, and each worker
//! does the items whose index is I mod N, then prints a JSON report on stdout.
//!
//! Processes rather than threads: burn's random generator is process-wide, and a model must
//! not depend on what else ran beside it. Deciding the shares by index, not by what is left to
//! do, keeps them disjoint even while other workers are finishing items.

use crate::output::Ui;
use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::process::{Command, Stdio};

/// Does a command's items as `worker` and `jobs` say and returns the reports of what was done,
/// one per share — or `None` in a worker, which has printed its share's report for its parent.
/// `share(I, N)` does the items whose index is I mod N. Workers run this same command line
/// ([`crate::relaunch`]) with `--threads 1`, `--worker I/N` and, unless the run is verbose, `-q`.
pub fn spread<R: Serialize + DeserializeOwned>(
    worker: Option<&str>,
    jobs: usize,
    what: &str,
    ui: &Ui,
    share: impl Fn(usize, usize) -> anyhow::Result<R>,
) -> anyhow::Result<Option<Vec<R>>> {
    if let Some(worker) = worker {
        let (index, count) = parse_worker(worker)?;
        // A worker reports to its parent only.
        crate::say!("{}", serde_json::to_string(&share(index, count)?)?)?;
        return Ok(None);
    }
    if jobs <= 1 {
        return Ok(Some(vec![share(0, 1)?]));
    }
    // Workers print only their report on stdout; their notes go to stderr unless the run is
    // quiet.
    let quiet = ui.quiet || ui.json;
    run_workers(jobs, what, quiet)?
        .iter()
        .map(|report| {
            serde_json::from_slice(report)
                .with_context(|| format!("a {what} worker's report is unreadable"))
        })
        .collect::<anyhow::Result<Vec<R>>>()
        .map(Some)
}

/// Parses a hidden `--worker I/N` value.
fn parse_worker(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    match parsed {
        Some((i, n)) if i < n => Ok((i, n)),
        _ => anyhow::bail!("--worker takes I/N with I < N, not `{text}`"),
    }
}

/// Runs `jobs` workers of this command line with `--threads 1 --worker I/N` (and `-q` when
/// `quiet`) in place of its own `--jobs`, `--threads` and output flags, and returns each one's
/// stdout. A worker that fails has said why on stderr; what the others finished stays for the
/// next run, and the error carries the failed worker's status.
fn run_workers(jobs: usize, what: &str, quiet: bool) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut children = Vec::new();
    for worker in 0..jobs {
        let mut command = crate::relaunch::again(
            &["--jobs", "--threads", "--worker"],
            &["--json", "-q", "--quiet"],
        )?;
        command
            .args(["--threads", "1"])
            .args(["--worker", &format!("{worker}/{jobs}")])
            .stdout(Stdio::piped());
        if quiet {
            command.arg("-q");
        }
        die_with_parent(&mut command);
        children.push(
            command
                .spawn()
                .with_context(|| format!("cannot start a {what} worker"))?,
        );
    }
    let mut reports = Vec::new();
    let mut failed = None;
    for child in children {
        let out = child.wait_with_output()?;
        if out.status.success() {
            reports.push(out.stdout);
        } else {
            failed.get_or_insert(out.status);
        }
    }
    if let Some(status) = failed {
        return Err(
            crate::budget::WorkerFailed(status.code().unwrap_or(2).clamp(1, 255) as u8).into(),
        );
    }
    Ok(reports)
}

/// Workers end with the run that started them (Linux): killing the parent must stop all of its
/// work, so that a rerun is the only thing writing.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only this (forked) process.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// "1 job", "2 jobs".
pub fn workers(jobs: usize) -> String {
    format!("{jobs} job{}", if jobs == 1 { "" } else { "s" })
}
