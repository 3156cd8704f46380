//! `vigil bench --fleet`: the OmniTransfer paper's evaluation (Tables I and II) on a benchmark
//! or a generated fleet, for each detector: OmniTransfer against one model per entity trained
//! from scratch on the same short-term data, and the ablations C1-C3
//! (vigil_fleet::evaluation has the protocol).

use super::bench::BenchArgs;
use crate::fleet_table::{mean_markdown, split_markdown, SplitRun};
use crate::output::{write_atomic, Ui};
use anyhow::Context;
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vigil_core::read::entities::load_entity_folder;
use vigil_core::read::{load_benchmark, BenchmarkKind};
use vigil_core::{Dataset, Entity};
use vigil_fleet::baseline::BaselineConfig;
use vigil_fleet::cluster::Cut;
use vigil_fleet::evaluation::{run_fleet_bench, split_offline_online, FleetBenchConfig, Strategy};
use vigil_fleet::fleet::ClusterConfig;

/// The options of `vigil bench --fleet`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Fleet evaluation (--fleet)")]
pub struct FleetBenchArgs {
    /// Run the OmniTransfer evaluation: half the entities offline (clustered, base models), half
    /// online (adapted from one segment of their newest training data, tested on their test
    /// data), against one model per entity and the ablations C1-C3. `--dataset` may then also
    /// be a fleet folder with train/ and test/ (as `vigil fleet generate` writes).
    #[arg(long)]
    pub fleet: bool,
    /// Steps of short-term data, and of a clustered segment (default: one day — 1440 for SMD's
    /// minutes, the period in a generated fleet's truth.json).
    #[arg(long)]
    pub segment_length: Option<usize>,
    /// Cut the dendrogram between merges farther apart than this (`vigil fleet cluster`).
    #[arg(long, default_value_t = 0.7)]
    pub max_distance: f64,
    /// Cut into this many clusters instead.
    #[arg(long, conflicts_with = "max_distance")]
    pub clusters: Option<usize>,
    /// Segments per cluster that its base model trains on (the paper: 5).
    #[arg(long, default_value_t = 5)]
    pub nearest: usize,
    /// Epochs of each fine-tuning stage (as `vigil fleet transfer --epochs`). `--epochs` sets
    /// those of base models and of training from scratch (default: the detector's own).
    #[arg(long, default_value_t = vigil_fleet::transfer::DEFAULT_FINE_TUNE_EPOCHS)]
    pub fine_tune_epochs: usize,
    /// Full transfer at most this far from the centroid (default: the cluster's radius).
    #[arg(long)]
    pub tau: Option<f64>,
    /// The online entities (comma-separated); default: a random half, drawn with `--seed`.
    #[arg(long, value_delimiter = ',')]
    pub online: Vec<String>,
    /// Strategies to run (comma-separated): omnitransfer, per-entity, c1, c2, c3 (default: all).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<Strategy>,
    /// Random splits to run (seeds `--seed`, `--seed`+1, ...); their mean leads each
    /// detector's tables.
    #[arg(long, default_value_t = 1)]
    pub splits: usize,
    /// Scratch folder for base models (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// The detector the fleet evaluation runs when none is named.
const FLEET_DETECTORS: &str = "usad";

pub fn run(args: &BenchArgs, ui: &Ui) -> anyhow::Result<()> {
    let fleet = &args.fleet;
    if fleet.splits == 0 {
        anyhow::bail!("--splits must be at least 1");
    }
    if args.memory {
        anyhow::bail!("--memory measures detectors one by one; it does not apply to --fleet (whose tables time training instead)");
    }
    if fleet.splits > 1 && !fleet.online.is_empty() {
        anyhow::bail!("--online fixes the split; leave out --splits (or --online)");
    }
    let mut dataset = load_fleet(args)?;
    let (base_spec, threshold, threshold_name) = args.spec.resolve_with("pot-batch")?;
    // Clustering needs finite values as much as training does: clean every series first, so
    // that a gap is refused (or interpolated, `--missing interpolate`) with its entity named.
    for entity in &mut dataset.entities {
        for (part, series) in [("training", &mut entity.train), ("test", &mut entity.test)] {
            vigil_core::clean::clean(series, base_spec.missing).with_context(|| {
                format!("entity {}'s {part} series cannot be used", entity.name)
            })?;
        }
    }
    let segment_length = match fleet.segment_length {
        Some(n) => n,
        None => one_day(&args.dataset)?,
    };
    let cluster = ClusterConfig {
        segment_length,
        segments_per_entity: None,
        cut: match fleet.clusters {
            Some(k) => Cut::Clusters(k),
            None => Cut::Distance(fleet.max_distance),
        },
        nearest: fleet.nearest,
        baseline: BaselineConfig::default(),
        align: true,
    };
    let scratch = tempfile::tempdir()?;
    let work = fleet.work_dir.as_deref().unwrap_or(scratch.path());
    let detectors: Vec<String> = match &args.detectors {
        Some(d) => d.clone(),
        None => vec![FLEET_DETECTORS.to_string()],
    };
    let strategies: &[Strategy] = if fleet.strategies.is_empty() {
        &Strategy::ALL
    } else {
        &fleet.strategies
    };
    let mut tables: Vec<(String, Vec<SplitRun>)> = Vec::new();
    for detector in &detectors {
        let mut spec = base_spec.clone();
        spec.detector = detector.clone();
        if *detector != base_spec.detector {
            spec.config = None;
        }
        vigil_models::registry::build(&spec.detector, spec.config.as_ref())?;
        let config = FleetBenchConfig {
            cluster: cluster.clone(),
            spec,
            fine_tune_epochs: fleet.fine_tune_epochs,
            tau: fleet.tau,
            threshold,
        };
        let mut runs = Vec::new();
        for k in 0..fleet.splits {
            let seed = base_spec.seed + k as u64;
            let (offline, online) = split(&dataset, &fleet.online, seed)?;
            if fleet.splits > 1 {
                ui.note(format!("split {} of {} (seed {seed})", k + 1, fleet.splits));
            }
            let results = run_fleet_bench(
                &offline,
                &online,
                &config,
                strategies,
                &work.join(detector).join(format!("split-{k}")),
                &|line| ui.note(line),
            )?;
            let names = |set: &[&Entity]| set.iter().map(|e| e.name.clone()).collect();
            runs.push(SplitRun {
                seed: fleet.online.is_empty().then_some(seed),
                offline: names(&offline),
                online: names(&online),
                results,
            });
        }
        tables.push((detector.clone(), runs));
    }
    if ui.json {
        crate::say!("{}", serde_json::to_string_pretty(&tables)?)?;
    }
    let mut text = String::new();
    for (detector, runs) in &tables {
        let _ = writeln!(text, "## {detector}\n");
        if runs.len() > 1 {
            let _ = writeln!(
                text,
                "Mean over {} random splits (seeds {}-{}); the last column counts the splits where the strategy's F1* was at least one model per entity's:\n",
                runs.len(),
                base_spec.seed,
                base_spec.seed + runs.len() as u64 - 1
            );
            text.push_str(&mean_markdown(runs, &threshold_name));
            text.push('\n');
        }
        for run in runs {
            if runs.len() > 1 {
                let _ = writeln!(
                    text,
                    "### Split seed {}\n\nOffline: {}\n\nOnline: {}\n",
                    run.seed.unwrap_or_default(),
                    name_list(&run.offline),
                    name_list(&run.online)
                );
            }
            text.push_str(&split_markdown(run, &threshold_name));
            text.push('\n');
        }
    }
    if !ui.json {
        crate::say!("{text}")?;
    }
    if let Some(path) = &args.output {
        let command: Vec<String> = std::iter::once("vigil".to_string())
            .chain(std::env::args().skip(1))
            .collect();
        let split_line = match tables.first().map(|(_, runs)| runs.as_slice()) {
            Some([only]) => format!(
                "Offline ({}): {}\n\nOnline ({}): {}",
                only.offline.len(),
                name_list(&only.offline),
                only.online.len(),
                name_list(&only.online)
            ),
            _ => format!(
                "{} random splits into offline and online halves, each listed with its tables.",
                fleet.splits
            ),
        };
        let header = format!(
            "# vigil bench --fleet — {}\n\nCommand: `{}`\n\n{split_line}\n\nEach online entity brings its newest {segment_length} training steps; every strategy gets its model from those alone and is tested on the entity's test series. F1* is the best F1 over all thresholds (an oracle, the paper's measure), micro-averaged: each entity at its own best threshold, true and false positives and negatives summed over the entities. PA-F1 is point-adjusted F1 at the label-free `{threshold_name}` threshold, averaged over entities. Offline time is clustering and base models (paid once per fleet); online time is getting every online entity's model (training from scratch, or transfer), one process, one after another.\n\n",
            dataset.name,
            command.join(" "),
        );
        write_atomic(path, format!("{header}{text}").as_bytes())?;
        ui.note(format!("tables written to {}", path.display()));
    }
    Ok(())
}

/// Every name of a benchmark's few entities; the first dozen of a large fleet's.
fn name_list(names: &[String]) -> String {
    if names.len() <= 16 {
        return names.join(", ");
    }
    format!("{}, ... ({} in all)", names[..12].join(", "), names.len())
}

/// A benchmark by name, or a fleet folder (train/ and test/).
fn load_fleet(args: &BenchArgs) -> anyhow::Result<Dataset> {
    match args.dataset.parse::<BenchmarkKind>() {
        Ok(kind) => Ok(load_benchmark(kind, &args.data_dir(), &args.entities)?),
        Err(_) if Path::new(&args.dataset).is_dir() => {
            let dir = Path::new(&args.dataset);
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| args.dataset.clone());
            Ok(load_entity_folder(dir, &name, &args.entities)?)
        }
        Err(e) => Err(anyhow::anyhow!(
            "{e}, or give a fleet folder with train/ and test/ (no such folder: {})",
            args.dataset
        )),
    }
}

/// One day of steps for the data sets whose sampling vigil knows.
fn one_day(dataset: &str) -> anyhow::Result<usize> {
    if dataset.eq_ignore_ascii_case("smd") {
        return Ok(1440);
    }
    let truth = Path::new(dataset).join("truth.json");
    if let Ok(text) = std::fs::read_to_string(&truth) {
        let value: serde_json::Value = serde_json::from_str(&text)?;
        if let Some(period) = value["config"]["period"].as_u64() {
            return Ok(period as usize);
        }
    }
    anyhow::bail!(
        "how many steps make a day in {dataset} is unknown; give --segment-length (the short-term span each online entity brings)"
    )
}

/// The offline and online entities: those named online, or a seeded random half.
fn split<'a>(
    dataset: &'a Dataset,
    online_names: &[String],
    seed: u64,
) -> anyhow::Result<(Vec<&'a Entity>, Vec<&'a Entity>)> {
    if dataset.entities.len() < 2 {
        anyhow::bail!(
            "the fleet evaluation needs at least 2 entities (one offline, one online); {} has {}",
            dataset.name,
            dataset.entities.len()
        );
    }
    if online_names.is_empty() {
        let (offline, online) = split_offline_online(dataset.entities.len(), seed);
        let pick = |idx: Vec<usize>| idx.into_iter().map(|i| &dataset.entities[i]).collect();
        return Ok((pick(offline), pick(online)));
    }
    for name in online_names {
        if !dataset.entities.iter().any(|e| &e.name == name) {
            anyhow::bail!(
                "--online names {name}, which is not an entity of {}",
                dataset.name
            );
        }
    }
    let (online, offline): (Vec<&Entity>, Vec<&Entity>) = dataset
        .entities
        .iter()
        .partition(|e| online_names.contains(&e.name));
    if offline.is_empty() {
        anyhow::bail!("--online names every entity; leave at least one offline");
    }
    Ok((offline, online))
}
