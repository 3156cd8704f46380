//! `--memory-budget` for `vigil train` and `vigil detect`: run the largest variant whose peak
//! memory, as the OS measures it, fits; refuse when none does.
//!
//! How. A budgeted run is supervised: the `vigil` the user started reads no data and stays
//! small; it runs the job in a worker process (the same command line plus two hidden flags),
//! one candidate at a time, largest first — for `train` the configured detector and the
//! smaller variants of `registry::memory_ladder`, for `detect` smaller scoring chunks. A
//! worker's share is the budget less the supervisor's own resident size. The worker stops
//! itself the moment its live heap passes the share (guard.rs) — a candidate that is certainly
//! too big costs little — and before it commits any output it compares its peak resident size
//! (`VmHWM`) with the share, exiting with [`guard::EXIT_OVER_BUDGET`] and writing nothing when
//! over. The first candidate that finishes is the answer, so when the largest fits the work is
//! done once. The supervisor then reports the worker's peak as the kernel accounted it
//! (`wait4`'s `ru_maxrss`) plus its own.
//!
//! Why processes: a process's peak never falls, so a candidate that did not fit would leave
//! its high-water mark on every later try in the same process; and the stop must be able to
//! end a try without unwinding through half-done work.

pub mod guard;
pub mod size;

use crate::output::Ui;
use anyhow::Context;
use clap::Args;
use guard::EXIT_OVER_BUDGET;
use size::MemorySize;
use std::fmt;
use std::io::Read;
use std::process::Stdio;
use vigil_models::memory::{peak_rss_bytes, rss_bytes};

/// The memory-budget flags of `train` and `detect`.
#[derive(Debug, Args, Clone, Default)]
pub struct BudgetArgs {
    /// Peak memory the run may use, e.g. `64MiB`, `1GiB`: vigil runs the largest model (train)
    /// or scoring chunk (detect) whose peak resident memory, measured by the OS, fits, and
    /// refuses when none does (Linux).
    #[arg(long, value_name = "SIZE")]
    pub memory_budget: Option<MemorySize>,
    /// Internal: run as the budget worker that tries candidate N.
    #[arg(
        long,
        hide = true,
        requires = "memory_budget",
        requires = "budget_share"
    )]
    pub budget_candidate: Option<usize>,
    /// Internal: the worker's share of the budget, in bytes.
    #[arg(long, hide = true, requires = "budget_candidate")]
    pub budget_share: Option<u64>,
}

/// What this process does about the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No budget: run the job here.
    Free,
    /// Run the job in workers until a candidate fits.
    Supervisor(MemorySize),
    /// Run candidate `candidate` within `share` bytes.
    Worker { candidate: usize, share: u64 },
}

impl BudgetArgs {
    pub fn role(&self) -> Role {
        match (self.memory_budget, self.budget_candidate, self.budget_share) {
            (None, _, _) => Role::Free,
            (Some(_), Some(candidate), Some(share)) => Role::Worker { candidate, share },
            (Some(budget), _, _) => Role::Supervisor(budget),
        }
    }
}

/// A worker's peak passed its share before it committed anything (exit status 3).
#[derive(Debug)]
pub struct OverBudget {
    pub peak: u64,
    pub share: u64,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this candidate peaked at {} (measured by the OS) over its {} share of the budget; nothing written",
            MemorySize(self.peak),
            MemorySize(self.share)
        )
    }
}

impl std::error::Error for OverBudget {}

/// A worker failed for a reason other than memory and has said why on stderr; the supervisor
/// exits with the worker's status and says nothing more.
#[derive(Debug)]
pub struct WorkerFailed(pub u8);

impl fmt::Display for WorkerFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the budget worker failed with status {}", self.0)
    }
}

impl std::error::Error for WorkerFailed {}

/// In a worker: arms the stop so that live heap plus what is resident besides the heap now
/// stays within `share`.
pub fn start_worker(share: u64) -> anyhow::Result<()> {
    let resident = rss_bytes().context(NEEDS_PROC)?;
    let beside_heap = resident.saturating_sub(guard::live_bytes() as u64);
    guard::stop_above(share.saturating_sub(beside_heap) as usize);
    Ok(())
}

/// In a worker, just before committing output: the peak so far, measured by the OS, must be
/// within `share`.
pub fn commit_check(share: u64) -> anyhow::Result<()> {
    let peak = peak_rss_bytes().context(NEEDS_PROC)?;
    if peak > share {
        return Err(OverBudget { peak, share }.into());
    }
    Ok(())
}

const NEEDS_PROC: &str =
    "cannot read this process's memory from /proc/self/status: --memory-budget needs Linux";

/// Runs the command line in a worker per candidate (labelled for people by `labels`, largest
/// first) until one fits `budget`; prints the worker's output and the memory it took.
pub fn supervise(budget: MemorySize, labels: &[String], ui: &Ui) -> anyhow::Result<()> {
    let own = rss_bytes().context(NEEDS_PROC)?;
    let share = budget.0.saturating_sub(own);
    if share == 0 {
        anyhow::bail!(
            "a memory budget of {budget} is less than vigil itself takes before reading anything \
             ({}); give a larger --memory-budget",
            MemorySize(own)
        );
    }
    let mut refused = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        ui.note(format!("memory budget {budget}: trying {label}"));
        let worker = run_worker(i, share)?;
        match worker.status {
            0 => return report(budget, label, &worker, ui),
            EXIT_OVER_BUDGET => refused.push(format!("{label} (stopped above its share)")),
            status => return Err(WorkerFailed(status.clamp(1, 255) as u8).into()),
        }
    }
    anyhow::bail!(
        "nothing fits in a memory budget of {budget} ({} for the work once vigil's supervisor \
         has its {}): tried, largest first, {}. Give a larger --memory-budget, or make the job \
         smaller (a shorter series or window)",
        MemorySize(share),
        MemorySize(own),
        refused.join("; ")
    )
}

/// What a worker left behind.
struct WorkerRun {
    /// Exit status (128 + signal when killed).
    status: i32,
    /// Its peak resident size in bytes, as the kernel accounted it.
    peak: u64,
    stdout: Vec<u8>,
}

/// Runs this command line again as worker `candidate` with `share` bytes. Its stderr is the
/// user's (progress, errors); its stdout is kept for [`report`].
fn run_worker(candidate: usize, share: u64) -> anyhow::Result<WorkerRun> {
    // Reaped by `wait_with_peak` (wait4), not by std's wait, which drops the resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = crate::relaunch::again(&[], &[])?
        .args(["--budget-candidate", &candidate.to_string()])
        .args(["--budget-share", &share.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start a budget worker process")?;
    let mut pipe = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        pipe.read_to_end(&mut text).map(|_| text)
    });
    let (status, peak) = wait_with_peak(child.id())?;
    let stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the worker's output reader panicked"))?
        .context("cannot read the budget worker's output")?;
    Ok(WorkerRun {
        status,
        peak,
        stdout,
    })
}

/// Waits for process `pid` and returns its exit status and peak resident size in bytes.
/// By hand because std's `Child::wait` drops the resource usage that `wait4` returns.
fn wait_with_peak(pid: u32) -> anyhow::Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; zero is a valid value for every field.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child; both pointers are to live locals.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("cannot wait for the budget worker");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    // Linux gives ru_maxrss in KiB.
    Ok((code, usage.ru_maxrss.max(0) as u64 * 1024))
}

/// Prints the successful worker's output with the memory the run took beside it.
fn report(budget: MemorySize, label: &str, worker: &WorkerRun, ui: &Ui) -> anyhow::Result<()> {
    let own = peak_rss_bytes().context(NEEDS_PROC)?;
    let total = worker.peak + own;
    let text = String::from_utf8_lossy(&worker.stdout);
    if ui.json {
        let mut value: serde_json::Value =
            serde_json::from_str(&text).context("the budget worker's JSON output is unreadable")?;
        value["memory"] = serde_json::json!({
            "budget_bytes": budget.0,
            "peak_bytes": total,
            "worker_peak_bytes": worker.peak,
            "supervisor_peak_bytes": own,
            "chosen": label,
        });
        crate::say!("{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        print!("{text}");
        crate::say!(
            "memory: peak {} of the {budget} budget ({} the work, {} the supervisor; measured by \
             the OS) with {label}",
            MemorySize(total),
            MemorySize(worker.peak),
            MemorySize(own)
        )?;
    }
    if total > budget.0 {
        anyhow::bail!(
            "the run went over its memory budget while writing its output ({} > {budget}); \
             the output is written — give a larger --memory-budget next time",
            MemorySize(total)
        );
    }
    Ok(())
}

/// Labels for a ladder of detector configs: each names the keys that change along the ladder.
pub fn ladder_labels(detector: &str, ladder: &[serde_json::Value]) -> Vec<String> {
    let keys: Vec<&String> = match ladder.first().and_then(|c| c.as_object()) {
        Some(first) => first
            .keys()
            .filter(|k| {
                ladder
                    .iter()
                    .any(|c| c.get(k.as_str()) != first.get(k.as_str()))
            })
            .collect(),
        None => vec![],
    };
    ladder
        .iter()
        .map(|config| {
            let sizes: Vec<String> = keys
                .iter()
                .map(|k| format!("{k} {}", config[k.as_str()]))
                .collect();
            if sizes.is_empty() {
                detector.to_string()
            } else {
                format!("{detector} ({})", sizes.join(", "))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_labels_name_what_shrinks() {
        let ladder = [
            serde_json::json!({"window": 15, "hidden": [16, 16], "batch_size": 64}),
            serde_json::json!({"window": 15, "hidden": [16, 16], "batch_size": 32}),
            serde_json::json!({"window": 15, "hidden": [8, 8], "batch_size": 32}),
        ];
        let labels = ladder_labels("gon", &ladder);
        assert_eq!(labels[0], "gon (batch_size 64, hidden [16,16])");
        assert_eq!(labels[2], "gon (batch_size 32, hidden [8,8])");
        assert_eq!(ladder_labels("pca", &ladder[..1]), ["pca"]);
    }

    #[test]
    fn the_role_follows_the_flags() {
        let mut args = BudgetArgs::default();
        assert_eq!(args.role(), Role::Free);
        args.memory_budget = Some(MemorySize(1 << 26));
        assert_eq!(args.role(), Role::Supervisor(MemorySize(1 << 26)));
        args.budget_candidate = Some(2);
        args.budget_share = Some(5);
        assert_eq!(
            args.role(),
            Role::Worker {
                candidate: 2,
                share: 5
            }
        );
    }
}
