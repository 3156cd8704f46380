//! Helpers and fixtures shared by the CLI's integration tests.

// Each test crate includes this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the real `vigil` binary with `args` in `cwd`.
pub fn vigil(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the vigil binary runs")
}

/// Runs `vigil` and insists that it succeeds (its stderr is the failure message).
pub fn vigil_ok(args: &[&str], cwd: &Path) -> Output {
    let out = vigil(args, cwd);
    assert!(
        out.status.success(),
        "vigil {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `vigil train --train TRAIN --model MODEL --detector DETECTOR -q`, then `extra`, in
/// `cwd`, and insists that it succeeds.
pub fn train_ok(cwd: &Path, train: &str, model: &str, detector: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--train",
        train,
        "--model",
        model,
        "--detector",
        detector,
        "-q",
    ];
    args.extend_from_slice(extra);
    vigil_ok(&args, cwd)
}

/// `vigil bench` of PCA with seed 1 over the SMD layout that [`write_two_smd_machines`] writes
/// in the working folder.
pub const PCA_BENCH_ON_SMD: [&str; 9] = [
    "bench",
    "--dataset",
    "smd",
    "--data-dir",
    ".",
    "--detectors",
    "pca",
    "--seed",
    "1",
];

/// Writes a two-machine SMD layout under `root/SMD` (train/, test/, test_label/, headerless
/// numbers): three periodic metrics, 600 steps each, the test series with a 20-step spike at
/// steps 400..420 labelled anomalous.
pub fn write_two_smd_machines(root: &Path) {
    let smd = root.join("SMD");
    for sub in ["train", "test", "test_label"] {
        std::fs::create_dir_all(smd.join(sub)).unwrap();
    }
    for (machine, phase) in [("machine-1-1", 0.0), ("machine-1-2", 1.0)] {
        let rows = |anomalous: bool| {
            (0..600)
                .map(|t| {
                    let x = t as f64 / 12.0 + phase;
                    let spike = if anomalous && (400..420).contains(&t) {
                        5.0
                    } else {
                        0.0
                    };
                    format!(
                        "{:.4},{:.4},{:.4}\n",
                        x.sin() + spike,
                        x.cos(),
                        (2.0 * x).sin()
                    )
                })
                .collect::<String>()
        };
        std::fs::write(smd.join(format!("train/{machine}.txt")), rows(false)).unwrap();
        std::fs::write(smd.join(format!("test/{machine}.txt")), rows(true)).unwrap();
        let labels: String = (0..600)
            .map(|t| {
                if (400..420).contains(&t) {
                    "1\n"
                } else {
                    "0\n"
                }
            })
            .collect();
        std::fs::write(smd.join(format!("test_label/{machine}.txt")), labels).unwrap();
    }
}
