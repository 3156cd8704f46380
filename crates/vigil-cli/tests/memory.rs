//! `--memory-budget` end to end: the real `vigil` binary in a child process, its peak resident
//! memory as the kernel accounted it (the process and every worker it ran), against the budget.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Exit status and peak resident bytes of `vigil args` (the largest of the process and the
/// workers it waited for: Linux's `ru_maxrss` of a reaped child covers its reaped children).
fn vigil_with_peak(args: &[&str], cwd: &Path) -> (i32, u64, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Why a fork: at exec Linux folds the peak of the memory the process had before into its
    // `ru_maxrss`. std spawns with posix_spawn (vfork), whose child runs in this test
    // harness's memory, so the harness's own high-water mark — which grows with the tests
    // running beside this one — would be reported as vigil's. A forked child holds only a copy
    // of the harness's private pages, far below vigil's own size. Any `pre_exec` makes std fork.
    // SAFETY: the hook does nothing, so it is trivially async-signal-safe.
    unsafe {
        command.pre_exec(|| Ok(()));
    }
    // Reaped below by wait4, which std's wait would hide the resource usage of.
    #[allow(clippy::zombie_processes)]
    let mut child = command.spawn().expect("the vigil binary runs");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child into live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (
        code,
        usage.ru_maxrss as u64 * 1024,
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

/// A 6,000-step series of 8 smooth metrics.
fn write_series(path: &Path) {
    let mut csv = String::from("a,b,c,d,e,f,g,h\n");
    for t in 0..6000 {
        let row: Vec<String> = (0..8)
            .map(|k| format!("{:.4}", (t as f64 / (10.0 + k as f64)).sin()))
            .collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    std::fs::write(path, csv).unwrap();
}

fn trained_gon(dir: &Path) {
    write_series(&dir.join("series.csv"));
    let (code, _, _, err) = vigil_with_peak(
        &[
            "train",
            "--train",
            "series.csv",
            "--model",
            "model",
            "--detector",
            "gon",
            "--epochs",
            "1",
            "-q",
        ],
        dir,
    );
    assert_eq!(code, 0, "{err}");
}

const MIB: u64 = 1 << 20;

#[test]
fn detect_under_a_memory_budget_stays_under_it_and_scores_the_same() {
    if !Path::new("/proc/self/status").exists() {
        return; // the budget needs Linux's accounting
    }
    let dir = tempfile::tempdir().unwrap();
    trained_gon(dir.path());
    let detect = [
        "detect",
        "--model",
        "model",
        "--input",
        "series.csv",
        "--output",
    ];
    let (code, free_peak, _, err) =
        vigil_with_peak(&[&detect[..], &["free.csv"]].concat(), dir.path());
    assert_eq!(code, 0, "{err}");

    // Room for the work as measured without a budget, the supervisor (a bare vigil) and a
    // little slack: tight enough that a budget the run ignored would show.
    let budget = free_peak + 16 * MIB;
    let budget_arg = format!("{}B", budget);
    let (code, peak, out, err) = vigil_with_peak(
        &[
            &detect[..],
            &["budgeted.csv", "--memory-budget", &budget_arg, "--json"],
        ]
        .concat(),
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(peak <= budget, "peak {peak} over the budget {budget}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let memory = &report["memory"];
    let total = memory["peak_bytes"].as_u64().unwrap();
    assert_eq!(
        total,
        memory["worker_peak_bytes"].as_u64().unwrap()
            + memory["supervisor_peak_bytes"].as_u64().unwrap()
    );
    assert!(
        total <= budget,
        "worker + supervisor {total} over the budget {budget}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("free.csv")).unwrap(),
        std::fs::read(dir.path().join("budgeted.csv")).unwrap(),
        "a budget changes how scoring is chunked, never the scores"
    );
}

#[test]
fn a_budget_nothing_fits_in_is_refused_and_writes_nothing() {
    if !Path::new("/proc/self/status").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    trained_gon(dir.path());
    // Below what a bare vigil takes: refused before any work.
    let (code, _, _, err) = vigil_with_peak(
        &[
            "detect",
            "--model",
            "model",
            "--input",
            "series.csv",
            "--output",
            "s.csv",
            "--memory-budget",
            "1MiB",
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("less than vigil itself takes"), "{err}");
    // Room for vigil but not for the work: every candidate is tried and refused. (vigil takes
    // about 9 MiB to start, a little more or less by run: 9 MiB left it too little room in one
    // CI run; the smallest variant run to the end takes about 17 MiB.)
    let (code, peak, _, err) = vigil_with_peak(
        &[
            "train",
            "--train",
            "series.csv",
            "--model",
            "small",
            "--detector",
            "gon",
            "--epochs",
            "1",
            "--memory-budget",
            "11MiB",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("nothing fits in a memory budget of 11.0 MiB"),
        "{err}"
    );
    assert!(
        err.contains("hidden [4]"),
        "the smallest variant was tried: {err}"
    );
    // Each try is stopped inside the allocation that crosses its share, so the peak stays near
    // the budget (a little more when tests beside this one load the machine), far below the
    // 17 MiB the smallest variant would take run to the end.
    assert!(
        peak <= 11 * MIB + 2 * MIB,
        "a refused try went far over: {peak}"
    );
    assert!(!dir.path().join("small").exists() && !dir.path().join("s.csv").exists());
}

#[test]
fn train_under_a_memory_budget_reports_what_it_chose() {
    if !Path::new("/proc/self/status").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_series(&dir.path().join("series.csv"));
    let budget = 96 * MIB;
    let (code, peak, out, err) = vigil_with_peak(
        &[
            "train",
            "--train",
            "series.csv",
            "--model",
            "model",
            "--detector",
            "gon",
            "--epochs",
            "1",
            "--memory-budget",
            "96MiB",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(peak <= budget);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["detector"], "gon");
    assert_eq!(
        report["memory"]["chosen"],
        "gon (batch_size 64, hidden [16,16])"
    );
    assert!(report["memory"]["peak_bytes"].as_u64().unwrap() <= budget);
    assert!(dir.path().join("model/manifest.json").exists());
}

#[test]
fn bench_memory_runs_each_pair_in_its_own_process_and_reports_f1_per_gb() {
    let dir = tempfile::tempdir().unwrap();
    common::write_two_smd_machines(dir.path());
    let (code, _, _, err) = vigil_with_peak(
        &[
            "bench",
            "--dataset",
            "smd",
            "--data-dir",
            ".",
            "--detectors",
            "pca,iforest",
            "--memory",
            "--output",
            "table.md",
            "-q",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let table = std::fs::read_to_string(dir.path().join("table.md")).unwrap();
    assert!(
        table.contains("Each row ran in a process of its own"),
        "{table}"
    );
    let memory_rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.contains("peak memory GB"))
        .filter(|l| l.starts_with("| pca |") || l.starts_with("| iforest |"))
        .collect();
    assert_eq!(memory_rows.len(), 4, "{table}");
    for row in memory_rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | detector | entity | PA-F1 | best PA-F1 | peak GB | PA-F1/GB | train s | test s |
        let (f1, gb, per_gb): (f64, f64, f64) = (
            cells[3].parse().unwrap(),
            cells[5].parse().unwrap(),
            cells[6].parse().unwrap(),
        );
        assert!(gb > 0.001 && gb < 1.0, "peak {gb} GB in {row}");
        // The GB cell is rounded to 3 decimals; F1/GB comes from the unrounded peak.
        let (low, high) = (f1 / (gb + 0.0005), f1 / (gb - 0.0005));
        assert!(low <= per_gb + 0.01 && per_gb <= high + 0.01, "{row}");
    }
}
