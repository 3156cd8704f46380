//! `vigil bench`: detectors over a benchmark data set, one markdown table with the command line.

use super::bench_journal::{Journal, JournalHeader};
use super::SpecArgs;
use crate::output::{write_atomic, Ui};
use crate::table;
use clap::Args;
use std::path::PathBuf;
use vigil_core::read::{load_benchmark, BenchmarkKind};
use vigil_models::experiment::{run_entity, EntityOutcome};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Data set: smd, smap, msl or skab (with `--fleet`, also a fleet folder).
    #[arg(long)]
    pub dataset: String,
    /// Folder holding SMD/, SKAB/ and SMAP_MSL/ (default: $VIGIL_DATA_DIR, then ../shared/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Comma-separated detectors to run (default: usad,pca; with `--fleet`, usad).
    #[arg(long, value_delimiter = ',')]
    pub detectors: Option<Vec<String>>,
    /// Only these entities (comma-separated names); all when absent.
    #[arg(long, value_delimiter = ',')]
    pub entities: Vec<String>,
    /// Markdown file to write (the table and the command that made it). Until it is written,
    /// finished rows are kept in `<output>.journal.jsonl`: after an interruption, the same
    /// command goes on from there.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Run every detector on every entity in a fresh child process, so that each row's peak
    /// memory is that run's alone, and add a memory table (peak GB, F1/GB; the GON paper's
    /// Tables 2-3).
    #[arg(long)]
    pub memory: bool,
    /// Folder to keep each run's scores in, as `DIR/<detector>/<entity>.json` (calibration
    /// scores, test scores and test labels), so that threshold rules can be compared on the
    /// same scores without training again (`vigil thresholds`).
    #[arg(long)]
    pub keep_scores: Option<PathBuf>,
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub fleet: super::bench_fleet::FleetBenchArgs,
}

impl BenchArgs {
    /// The folder that holds the benchmarks.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| std::env::var_os("VIGIL_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("../shared/data"))
    }

    fn detectors(&self) -> Vec<String> {
        self.detectors
            .clone()
            .unwrap_or_else(|| vec!["usad".into(), "pca".into()])
    }
}

pub fn run(args: BenchArgs, ui: &Ui) -> anyhow::Result<()> {
    if args.fleet.fleet {
        return super::bench_fleet::run(&args, ui);
    }
    let kind: BenchmarkKind = args.dataset.parse()?;
    let dataset = load_benchmark(kind, &args.data_dir(), &args.entities)?;
    // A benchmark judges a whole test set at once, so its headline threshold is POT fitted on
    // the test scores (label-free); train-calibrated POT and SPOT, and LSTM-NDT's dynamic
    // threshold on the test scores, are reported beside it.
    let (base_spec, method, threshold_name) = args.spec.resolve_with("pot-batch")?;
    let mut also = Vec::new();
    for name in ["pot", "spot", "ndt"] {
        if name != threshold_name {
            also.push((name.to_string(), name.parse()?));
        }
    }
    // Every detector named must exist and accept its config before hours go into the others
    // (a [detector_config] is for the detector it was written for; see `run_here`).
    for detector in args.detectors() {
        let config = (detector == base_spec.detector)
            .then_some(base_spec.config.as_ref())
            .flatten();
        vigil_models::registry::build(&detector, config)?;
    }
    // With `--output`, finished rows go to a journal beside it, and a run of the same command
    // after an interruption picks up where that one stopped.
    let mut journal = match &args.output {
        Some(path) => Some(Journal::open(
            path,
            JournalHeader::of_command(std::env::args().skip(1), args.spec.config.as_deref())?,
        )?),
        None => None,
    };
    if let Some(journal) = journal.as_ref().filter(|j| j.earlier_rows() > 0) {
        ui.note(format!(
            "resuming: {} rows come from {}",
            journal.earlier_rows(),
            journal.path().display()
        ));
    }
    let run = |journal: Option<&mut Journal>| {
        if args.memory {
            run_in_children(&args, &dataset.entities, journal, ui)
        } else {
            run_here(
                &args,
                &dataset.entities,
                &base_spec,
                method,
                &also,
                journal,
                ui,
            )
        }
    };
    let outcomes = match run(journal.as_mut()) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            return Err(match journal.as_ref().filter(|j| j.path().exists()) {
                // The cause first, then what is kept (anyhow prints contexts before causes).
                Some(j) => anyhow::anyhow!(
                    "{e:#}\n(the rows finished so far are kept in {}: once that is fixed, the same command goes on from there)",
                    j.path().display()
                ),
                None => e,
            });
        }
    };
    if ui.json {
        crate::say!("{}", serde_json::to_string_pretty(&outcomes)?)?;
    } else {
        crate::say!("{}", table::markdown(&outcomes, &threshold_name))?;
        if args.memory {
            crate::say!("{}", table::memory_markdown(&outcomes, &threshold_name))?;
        }
    }
    if let Some(path) = &args.output {
        // The program as `vigil` (not the path it ran from), then the arguments as given.
        let command: Vec<String> = std::iter::once("vigil".to_string())
            .chain(std::env::args().skip(1))
            .collect();
        let memory_note = if args.memory {
            "Each row ran in a process of its own (`--memory`): its peak RSS is that run's high-water mark, data loading included, measured by the OS."
        } else {
            "Peak RSS is the process high-water mark after each entity (measured by the OS)."
        };
        let resumed = match journal.as_ref().map(Journal::earlier_rows) {
            Some(n) if n > 0 => format!(
                " {n} of the {} rows were measured by an earlier run of this command that was interrupted (kept in its journal); their seconds and peak memory are that run's.",
                outcomes.len()
            ),
            _ => String::new(),
        };
        let mut tables = table::markdown(&outcomes, &threshold_name);
        if args.memory {
            tables.push('\n');
            tables.push_str(&table::memory_markdown(&outcomes, &threshold_name));
        }
        let text = format!(
            "# vigil bench — {}\n\nCommand: `{}`\n\nEvery threshold shown is label-free: `pot-batch` fits POT on the test scores being judged, `pot` and `spot` are calibrated on the training scores, `ndt` is LSTM-NDT's dynamic threshold on the smoothed test scores (docs/thresholds.md); \"oracle\" columns choose the threshold with the test labels and are shown for reference only. {memory_note}{resumed}\n\n{}",
            dataset.name,
            command.join(" "),
            tables
        );
        write_atomic(path, text.as_bytes())?;
        ui.note(format!("table written to {}", path.display()));
    }
    if let Some(journal) = journal {
        journal.remove()?;
    }
    Ok(())
}

/// Every detector on every entity, in this process.
fn run_here(
    args: &BenchArgs,
    entities: &[vigil_core::Entity],
    base_spec: &vigil_models::TrainSpec,
    method: vigil_core::threshold::ThresholdMethod,
    also: &[(String, vigil_core::threshold::ThresholdMethod)],
    mut journal: Option<&mut Journal>,
    ui: &Ui,
) -> anyhow::Result<Vec<EntityOutcome>> {
    let mut outcomes = Vec::new();
    for detector in &args.detectors() {
        let mut spec = base_spec.clone();
        spec.detector = detector.clone();
        // A [detector_config] belongs to the detector it was written for (`--detector` or the
        // config file's `detector`); the other detectors of the run keep their defaults.
        if *detector != base_spec.detector {
            spec.config = None;
        }
        for entity in entities {
            if let Some(done) = journal
                .as_ref()
                .and_then(|j| j.finished(detector, &entity.name))
            {
                outcomes.push(done.clone());
                continue;
            }
            ui.note(format!("{detector} on {} ...", entity.name));
            let (outcome, trace, model) = run_entity(entity, &spec, method, also)?;
            if let Some(dir) = &args.keep_scores {
                keep_scores(dir, detector, entity, &model.calibration, &trace.scores)?;
            }
            if let Some(journal) = journal.as_mut() {
                journal.record(&outcome)?;
            }
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
    Ok(outcomes)
}

/// Writes one entity's calibration scores, test scores and test labels for `vigil thresholds`.
fn keep_scores(
    dir: &std::path::Path,
    detector: &str,
    entity: &vigil_core::Entity,
    calibration: &[f64],
    test: &[f64],
) -> anyhow::Result<()> {
    let saved = vigil_core::threshold::SavedScores {
        entity: entity.name.clone(),
        detector: detector.to_string(),
        calibration: calibration.to_vec(),
        test: test.to_vec(),
        labels: entity.test.labels.clone().unwrap_or_default(),
    };
    // An entity named `valve1/0` (SKAB) lies one folder deeper.
    let path = dir.join(detector).join(format!("{}.json", entity.name));
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", folder.display()))?;
    }
    write_atomic(&path, &serde_json::to_vec(&saved)?)
}

/// Every detector on every entity, each in a fresh `vigil bench` child process that runs just
/// that pair with the same options and prints its outcome as JSON (a process's peak memory
/// never falls, so rows run in one process would each report the largest so far).
fn run_in_children(
    args: &BenchArgs,
    entities: &[vigil_core::Entity],
    mut journal: Option<&mut Journal>,
    ui: &Ui,
) -> anyhow::Result<Vec<EntityOutcome>> {
    let mut outcomes = Vec::new();
    for detector in &args.detectors() {
        for entity in entities {
            if let Some(done) = journal
                .as_ref()
                .and_then(|j| j.finished(detector, &entity.name))
            {
                outcomes.push(done.clone());
                continue;
            }
            ui.note(format!("{detector} on {} (own process) ...", entity.name));
            // The child replaces what it runs and how it reports; every other option carries.
            let out = crate::relaunch::again(
                &["--output", "--detectors", "--entities"],
                &["--memory", "--json", "-q", "--quiet"],
            )?
            .args([
                "--detectors",
                detector,
                "--entities",
                &entity.name,
                "--json",
                "-q",
            ])
            .output()?;
            if !out.status.success() {
                anyhow::bail!(
                    "the child run of {detector} on {} failed: {}",
                    entity.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let rows: Vec<EntityOutcome> = serde_json::from_slice(&out.stdout)?;
            for row in rows {
                if let Some(journal) = journal.as_mut() {
                    journal.record(&row)?;
                }
                outcomes.push(row);
            }
        }
    }
    Ok(outcomes)
}
