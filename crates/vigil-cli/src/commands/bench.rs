//! `vigil bench`: detectors over a benchmark data set, one markdown table with the command line.

use super::SpecArgs;
use crate::output::{write_atomic, Ui};
use crate::table;
use clap::Args;
use std::path::PathBuf;
use vigil_core::read::{load_benchmark, BenchmarkKind};
use vigil_models::experiment::run_entity;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Data set: smd, smap, msl or skab.
    #[arg(long)]
    pub dataset: String,
    /// Folder holding SMD/, SKAB/ and SMAP_MSL/ (default: $VIGIL_DATA_DIR, then ../shared/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Comma-separated detectors to run.
    #[arg(long, default_value = "usad,pca", value_delimiter = ',')]
    pub detectors: Vec<String>,
    /// Only these entities (comma-separated names); all when absent.
    #[arg(long, value_delimiter = ',')]
    pub entities: Vec<String>,
    /// Markdown file to write (the table and the command that made it).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub spec: SpecArgs,
}

pub fn run(args: BenchArgs, ui: &Ui) -> anyhow::Result<()> {
    let kind: BenchmarkKind = args.dataset.parse()?;
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("VIGIL_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    let dataset = load_benchmark(kind, &data_dir, &args.entities)?;
    // A benchmark judges a whole test set at once, so its headline threshold is POT fitted on
    // the test scores (label-free); train-calibrated POT and SPOT are reported beside it.
    let (base_spec, method, threshold_name) = args.spec.resolve_with("pot-batch")?;
    let mut also = Vec::new();
    for name in ["pot", "spot"] {
        if name != threshold_name {
            also.push((name.to_string(), name.parse()?));
        }
    }
    let mut outcomes = Vec::new();
    for detector in &args.detectors {
        let mut spec = base_spec.clone();
        spec.detector = detector.clone();
        // A [detector_config] belongs to the detector it was written for (`--detector` or the
        // config file's `detector`); the other detectors of the run keep their defaults.
        if *detector != base_spec.detector {
            spec.config = None;
        }
        vigil_models::registry::build(&spec.detector, spec.config.as_ref())?;
        for entity in &dataset.entities {
            ui.note(format!("{detector} on {} ...", entity.name));
            let (outcome, _, _) = run_entity(entity, &spec, method, &also)?;
            ui.note(format!(
                "  PA-F1 {:.4}  F1 {:.4}  best PA-F1 {:.4}  ({:.1}s train)",
                outcome.report.pa_f1,
                outcome.report.f1,
                outcome.report.best_pa_f1.unwrap_or(0.0),
                outcome.train_seconds
            ));
            outcomes.push(outcome);
        }
    }
    if ui.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        println!("{}", table::markdown(&outcomes, &threshold_name));
    }
    if let Some(path) = &args.output {
        // The program as `vigil` (not the path it ran from), then the arguments as given.
        let command: Vec<String> = std::iter::once("vigil".to_string())
            .chain(std::env::args().skip(1))
            .collect();
        let text = format!(
            "# vigil bench — {}\n\nCommand: `{}`\n\nEvery threshold shown is label-free: `pot-batch` fits POT on the test scores being judged, `pot` and `spot` are calibrated on the training scores (docs/thresholds.md); \"oracle\" columns choose the threshold with the test labels and are shown for reference only. Peak RSS is the process high-water mark after each entity (measured by the OS).\n\n{}",
            dataset.name,
            command.join(" "),
            table::markdown(&outcomes, &threshold_name)
        );
        write_atomic(path, text.as_bytes())?;
        ui.note(format!("table written to {}", path.display()));
    }
    Ok(())
}
