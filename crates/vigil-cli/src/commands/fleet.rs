//! `vigil fleet`: OmniTransfer over a fleet of entities (issue 4): `generate` (an archetype
//! fleet with its truth), `cluster` (I-HAC into a fleet directory), `train-base` (one base
//! model per cluster) and `transfer` (adapt entities from their short-term data; resumable).

use super::fleet_workers::{parse_worker, run_workers};
use super::SpecArgs;
use crate::output::{write_atomic, Ui};
use anyhow::Context;
use clap::{Args, Subcommand};
use rayon::prelude::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use vigil_core::archetypes::{generate_archetype_fleet, ArchetypeFleetConfig};
use vigil_core::read::entities::{entity_files, entity_files_in, read_entity};
use vigil_core::Series;
use vigil_fleet::baseline::BaselineConfig;
use vigil_fleet::cluster::Cut;
use vigil_fleet::fleet::{cluster_fleet, ClusterConfig, FleetClusters};
use vigil_fleet::rand_index::adjusted_rand_index;
use vigil_fleet::transfer::{
    finished, train_base_model, transfer_entity, BaseRecord, TransferConfig,
};
use vigil_models::{TrainSpec, Transfer};

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Write a generated fleet: N entities from K archetypes (train/, test/ and truth.json).
    Generate(GenerateArgs),
    /// Cluster a folder of entities by shape (I-HAC) into a fleet directory.
    Cluster(ClusterArgs),
    /// Train one base model per cluster on its segments nearest the centroid.
    TrainBase(TrainBaseArgs),
    /// Adapt each entity's model from its short-term data by full or partial transfer.
    Transfer(TransferArgs),
    /// Score every adapted entity's series with its model; evaluate when labelled.
    Detect(FleetDetectArgs),
}

#[derive(Debug, Args)]
pub struct FleetDetectArgs {
    /// Folder of series to score, one file per entity named as the entity (or a test/ folder
    /// of them).
    #[arg(long)]
    pub entities: PathBuf,
    /// Fleet directory whose entities/<name>/ models score them.
    #[arg(long)]
    pub fleet: PathBuf,
    /// Folder for one scores CSV per entity (as `vigil detect` writes).
    #[arg(long)]
    pub output: PathBuf,
    /// Label-free threshold: `spot` (default), `pot`, `pot-batch`, `ndt` (LSTM-NDT's dynamic threshold) or `quantile`.
    #[arg(long, default_value = "spot")]
    pub threshold: String,
}

#[derive(Debug, Args)]
pub struct TrainBaseArgs {
    /// The folder of entities that was clustered.
    #[arg(long)]
    pub entities: PathBuf,
    /// Fleet directory (with clusters.json); base models go to base/cluster-<id>/.
    #[arg(long)]
    pub fleet: PathBuf,
    /// Detector, config, seed, epochs (default detector for fleets: usad).
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Base models trained at once, each in a worker process on one core (default: the cores
    /// `--threads` allows).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Internal: run as worker I of N (`I/N`), training the clusters whose id is I mod N.
    #[arg(long, hide = true)]
    pub worker: Option<String>,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Folder of the entities to adapt (one series file each, or a train/ folder of them).
    #[arg(long)]
    pub entities: PathBuf,
    /// Fleet directory with clusters.json and base models; models go to entities/<name>/.
    #[arg(long)]
    pub fleet: PathBuf,
    /// Steps of short-term data per entity: its newest training steps (default: one segment).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Full transfer at most this far from the centroid, partial beyond (default: each
    /// cluster's radius, the 90th percentile of its members' distances).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Epochs of each fine-tuning stage (partial transfer has two: the rest with the generic
    /// layers frozen, then all).
    #[arg(long, default_value_t = vigil_fleet::transfer::DEFAULT_FINE_TUNE_EPOCHS)]
    pub epochs: usize,
    /// Entities adapted at once, each in a worker process on one core (default: the cores
    /// `--threads` allows).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Internal: run as worker I of N (`I/N`), adapting the entities whose index is I mod N.
    #[arg(long, hide = true)]
    pub worker: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder to write (train/ and test/ with one CSV per entity, truth.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of entities.
    #[arg(long, default_value_t = 1000)]
    pub entities: usize,
    /// Number of archetypes (shapes) they are drawn from.
    #[arg(long, default_value_t = 10)]
    pub archetypes: usize,
    /// Metrics per entity.
    #[arg(long, default_value_t = 8)]
    pub metrics: usize,
    /// Steps per day.
    #[arg(long, default_value_t = 288)]
    pub period: usize,
    /// Noise standard deviation relative to a metric's daily amplitude.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Folder of entities: one series file each, or a train/ folder of them (SMD's layout).
    #[arg(long)]
    pub entities: PathBuf,
    /// Fleet directory to write clusters.json into.
    #[arg(long)]
    pub fleet: PathBuf,
    /// Steps per segment: the span of data a new entity will bring (e.g. one day).
    #[arg(long, default_value_t = 288)]
    pub segment_length: usize,
    /// Segments per entity, newest first (default: all whole segments).
    #[arg(long)]
    pub segments_per_entity: Option<usize>,
    /// Cut into this many clusters (instead of by distance).
    #[arg(long, conflicts_with = "max_distance")]
    pub clusters: Option<usize>,
    /// Cut between merges whose average distance is above this (standardised units: 0
    /// identical, about 1 unrelated shapes; docs/fleet.md).
    #[arg(long, default_value_t = 0.7)]
    pub max_distance: f64,
    /// Segments kept per cluster for its base model (the paper: 5).
    #[arg(long, default_value_t = 5)]
    pub nearest: usize,
    /// Skip phase alignment (the paper's ablation C2).
    #[arg(long)]
    pub no_align: bool,
}

pub fn run(command: FleetCommand, ui: &Ui) -> anyhow::Result<()> {
    match command {
        FleetCommand::Generate(args) => generate(args, ui),
        FleetCommand::Cluster(args) => cluster(args, ui),
        FleetCommand::TrainBase(args) => train_base(args, ui),
        FleetCommand::Transfer(args) => transfer(args, ui),
        FleetCommand::Detect(args) => detect(args, ui),
    }
}

fn generate(args: GenerateArgs, ui: &Ui) -> anyhow::Result<()> {
    if args.entities == 0 || args.archetypes == 0 || args.metrics == 0 || args.period < 2 {
        anyhow::bail!(
            "--entities, --archetypes and --metrics must be at least 1 and --period at least 2"
        );
    }
    let config = ArchetypeFleetConfig {
        entities: args.entities,
        archetypes: args.archetypes,
        metrics: args.metrics,
        period: args.period,
        noise: args.noise,
        seed: args.seed,
        ..ArchetypeFleetConfig::default()
    };
    let fleet = generate_archetype_fleet(&config);
    fleet
        .dataset
        .entities
        .par_iter()
        .try_for_each(|e| -> anyhow::Result<()> {
            let file = format!("{}.csv", e.name);
            vigil_core::write::write_series_csv(&e.train, &args.out.join("train").join(&file))?;
            vigil_core::write::write_series_csv(&e.test, &args.out.join("test").join(&file))?;
            Ok(())
        })?;
    let truth = serde_json::json!({
        "config": config,
        "entities": fleet.dataset.entities.iter().map(|e| &e.name).collect::<Vec<_>>(),
        "archetype": fleet.archetype,
        "shift": fleet.shift,
    });
    write_atomic(
        &args.out.join("truth.json"),
        serde_json::to_string_pretty(&truth)?.as_bytes(),
    )?;
    ui.note(format!(
        "{} entities from {} archetypes written to {}",
        args.entities,
        args.archetypes,
        args.out.display()
    ));
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"entities": args.entities, "out": args.out})
        );
    }
    Ok(())
}

fn cluster(args: ClusterArgs, ui: &Ui) -> anyhow::Result<()> {
    let files = entity_files(&args.entities)?;
    let first = read_entity(&files[0].1, None)?;
    let rest: Vec<Series> = files[1..]
        .par_iter()
        .map(|(_, path)| read_entity(path, Some(&first)))
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    let mut series = vec![first];
    series.extend(rest);
    for (name, s) in names.iter().zip(&series) {
        if s.values.iter().any(|v| !v.is_finite()) {
            anyhow::bail!("entity {name} has missing or non-finite values; clean it first (vigil train --missing interpolate shows where)");
        }
    }
    let config = ClusterConfig {
        segment_length: args.segment_length,
        segments_per_entity: args.segments_per_entity,
        cut: match args.clusters {
            Some(k) => Cut::Clusters(k),
            None => Cut::Distance(args.max_distance),
        },
        nearest: args.nearest,
        baseline: BaselineConfig::default(),
        align: !args.no_align,
    };
    let started = std::time::Instant::now();
    let clusters = cluster_fleet(&names, &series, &config)?;
    let seconds = started.elapsed().as_secs_f64();
    clusters.save(&args.fleet)?;
    let found: Vec<usize> = clusters.entities.iter().map(|e| e.cluster).collect();
    let ari =
        truth_archetypes(&args.entities, &names)?.map(|truth| adjusted_rand_index(&found, &truth));
    let sizes: Vec<usize> = clusters.clusters.iter().map(|c| c.entities.len()).collect();
    let segments: Vec<usize> = clusters.clusters.iter().map(|c| c.segments).collect();
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"entities": names.len(), "clusters": sizes.len(), "sizes": sizes, "segments": segments, "seconds": seconds, "adjusted_rand_index": ari, "fleet": args.fleet})
        );
    } else {
        println!(
            "{} entities ({} segments) in {} clusters in {seconds:.1}s; written to {}",
            names.len(),
            segments.iter().sum::<usize>(),
            sizes.len(),
            args.fleet.join(vigil_fleet::fleet::CLUSTERS_FILE).display()
        );
        println!("entities per cluster: {sizes:?}");
        println!("segments per cluster: {segments:?}");
        if let Some(ari) = ari {
            println!("adjusted Rand index against truth.json: {ari:.4}");
        }
    }
    Ok(())
}

/// The archetype of each entity from `dir/truth.json` (written by `vigil fleet generate`),
/// when there is one.
fn truth_archetypes(dir: &Path, names: &[String]) -> anyhow::Result<Option<Vec<usize>>> {
    let path = dir.join("truth.json");
    if !path.exists() {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct Truth {
        entities: Vec<String>,
        archetype: Vec<usize>,
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let truth: Truth = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a fleet truth file", path.display()))?;
    let by_name: std::collections::HashMap<&str, usize> = truth
        .entities
        .iter()
        .map(String::as_str)
        .zip(truth.archetype.iter().copied())
        .collect();
    Ok(names
        .iter()
        .map(|n| by_name.get(n.as_str()).copied())
        .collect::<Option<Vec<_>>>())
}

/// The detector fleets use when none is named: a neural detector whose layers can transfer.
const FLEET_DETECTOR: &str = "usad";

fn train_base(args: TrainBaseArgs, ui: &Ui) -> anyhow::Result<()> {
    let clusters = FleetClusters::load(&args.fleet)?;
    let (mut spec, _) = args.spec.resolve()?;
    if args.spec.detector.is_none() && args.spec.config.is_none() {
        spec.detector = FLEET_DETECTOR.into();
    }
    let started = std::time::Instant::now();
    let jobs = args
        .jobs
        .unwrap_or_else(rayon::current_num_threads)
        .clamp(1, clusters.clusters.len().max(1));
    let mut records = match (&args.worker, jobs) {
        (Some(worker), _) => {
            let (index, count) = parse_worker(worker)?;
            let records = train_base_share(&args, &clusters, &spec, index, count, ui)?;
            // A worker reports to its parent only.
            println!("{}", serde_json::to_string(&records)?);
            return Ok(());
        }
        (None, 1) => train_base_share(&args, &clusters, &spec, 0, 1, ui)?,
        (None, jobs) => {
            let reports = run_workers(jobs, "train-base", |_| {
                let mut worker: Vec<OsString> = vec!["fleet".into(), "train-base".into()];
                worker.extend(["--entities".into(), args.entities.clone().into()]);
                worker.extend(["--fleet".into(), args.fleet.clone().into()]);
                worker.extend(args.spec.to_args());
                worker.extend(quiet_worker(ui));
                worker
            })?;
            let mut records = Vec::new();
            for report in reports {
                let part: Vec<BaseRecord> = serde_json::from_slice(&report)
                    .context("a train-base worker's report is unreadable")?;
                records.extend(part);
            }
            records
        }
    };
    records.sort_by_key(|r| r.cluster);
    let seconds = started.elapsed().as_secs_f64();
    let reused = records.iter().filter(|r| r.reused).count();
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"detector": spec.detector, "base_models": records, "seconds": seconds, "jobs": jobs})
        );
    } else {
        println!(
            "{} base models ({}; {reused} from an earlier run) in {seconds:.1}s with {} under {}",
            records.len(),
            spec.detector,
            workers(jobs),
            args.fleet.join("base").display()
        );
    }
    Ok(())
}

/// Trains the base models of the clusters whose id is `index` mod `count`, one after another,
/// reading only the entities their segments come from; an earlier run's models are kept.
fn train_base_share(
    args: &TrainBaseArgs,
    clusters: &FleetClusters,
    spec: &TrainSpec,
    index: usize,
    count: usize,
    ui: &Ui,
) -> anyhow::Result<Vec<BaseRecord>> {
    let files: std::collections::HashMap<String, PathBuf> =
        entity_files(&args.entities)?.into_iter().collect();
    let mut series = std::collections::HashMap::new();
    let mine: Vec<usize> = (index..clusters.clusters.len()).step_by(count).collect();
    for &c in &mine {
        for segment in &clusters.clusters[c].nearest {
            if series.contains_key(&segment.entity) {
                continue;
            }
            let path = files.get(&segment.entity).ok_or_else(|| {
                vigil_fleet::fleet::FleetError::Missing {
                    entity: segment.entity.clone(),
                }
            })?;
            series.insert(segment.entity.clone(), read_entity(path, None)?);
        }
    }
    let mut records = Vec::new();
    for c in mine {
        ui.note(format!("base model of cluster {c} ..."));
        records.push(train_base_model(&args.fleet, clusters, c, spec, |name| {
            series.get(name)
        })?);
    }
    Ok(records)
}

/// How many entities a transfer run adapted.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct TransferTally {
    full: usize,
    partial: usize,
    done_earlier: usize,
}

fn transfer(args: TransferArgs, ui: &Ui) -> anyhow::Result<()> {
    let clusters = FleetClusters::load(&args.fleet)?;
    for cluster in &clusters.clusters {
        let base = vigil_fleet::transfer::base_dir(&args.fleet, cluster.id);
        if !base.join("manifest.json").exists() {
            anyhow::bail!(
                "the fleet {} has no base model for cluster {} ({}); run `vigil fleet train-base --entities <the clustered entities> --fleet {}` first",
                args.fleet.display(),
                cluster.id,
                base.display(),
                args.fleet.display()
            );
        }
    }
    let files = entity_files(&args.entities)?;
    let started = std::time::Instant::now();
    let jobs = args.jobs.unwrap_or_else(rayon::current_num_threads).max(1);
    let tally = match (&args.worker, jobs) {
        (Some(worker), _) => {
            let (index, count) = parse_worker(worker)?;
            let tally = transfer_share(&args, &clusters, &files, index, count, ui)?;
            // A worker reports to its parent only.
            println!("{}", serde_json::to_string(&tally)?);
            return Ok(());
        }
        (None, 1) => transfer_share(&args, &clusters, &files, 0, 1, ui)?,
        (None, jobs) => transfer_in_workers(&args, jobs, ui)?,
    };
    let seconds = started.elapsed().as_secs_f64();
    let adapted = tally.full + tally.partial;
    let per_minute = adapted as f64 / seconds.max(1e-9) * 60.0;
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"adapted": adapted, "full": tally.full, "partial": tally.partial, "done_earlier": tally.done_earlier, "seconds": seconds, "entities_per_minute": per_minute, "jobs": jobs})
        );
    } else {
        println!(
            "adapted {adapted} entities ({} full, {} partial transfer; {} done by an earlier run) in {seconds:.1}s with {}: {per_minute:.0} per minute; models under {}",
            tally.full,
            tally.partial,
            tally.done_earlier,
            workers(jobs),
            args.fleet.join("entities").display()
        );
    }
    Ok(())
}

/// Adapts the entities whose index is `index` mod `count`, one after another, skipping those an
/// earlier run finished.
fn transfer_share(
    args: &TransferArgs,
    clusters: &FleetClusters,
    files: &[(String, PathBuf)],
    index: usize,
    count: usize,
    ui: &Ui,
) -> anyhow::Result<TransferTally> {
    let config = TransferConfig {
        spec: TrainSpec {
            seed: args.seed,
            epochs: Some(args.epochs),
            ..TrainSpec::default()
        },
        steps: args.steps.unwrap_or(clusters.config.segment_length),
        tau: args.tau,
    };
    let mut tally = TransferTally::default();
    for (i, (name, path)) in files.iter().enumerate().skip(index).step_by(count) {
        if finished(&args.fleet, name).is_some() {
            tally.done_earlier += 1;
            continue;
        }
        let train = read_entity(path, None)?;
        let record = transfer_entity(&args.fleet, clusters, name, &train, &config)?;
        match record.transfer {
            Transfer::Full => tally.full += 1,
            Transfer::Partial => tally.partial += 1,
        }
        ui.note(format!(
            "[{}/{}] {name}: cluster {} at {:.3} (τ {:.3}), {:?} transfer, {:.2}s",
            i + 1,
            files.len(),
            record.cluster,
            record.distance,
            record.tau,
            record.transfer,
            record.seconds
        ));
    }
    Ok(tally)
}

/// Adapts the entities in `jobs` worker processes (one core each) and adds up what they did.
fn transfer_in_workers(args: &TransferArgs, jobs: usize, ui: &Ui) -> anyhow::Result<TransferTally> {
    let reports = run_workers(jobs, "transfer", |_| {
        let mut worker: Vec<OsString> = vec!["fleet".into(), "transfer".into()];
        worker.extend(["--entities".into(), args.entities.clone().into()]);
        worker.extend(["--fleet".into(), args.fleet.clone().into()]);
        worker.extend(["--seed".into(), args.seed.to_string().into()]);
        if let Some(steps) = args.steps {
            worker.extend(["--steps".into(), steps.to_string().into()]);
        }
        if let Some(tau) = args.tau {
            worker.extend(["--tau".into(), tau.to_string().into()]);
        }
        worker.extend(["--epochs".into(), args.epochs.to_string().into()]);
        worker.extend(quiet_worker(ui));
        worker
    })?;
    let mut tally = TransferTally::default();
    for report in reports {
        let part: TransferTally =
            serde_json::from_slice(&report).context("a transfer worker's report is unreadable")?;
        tally.full += part.full;
        tally.partial += part.partial;
        tally.done_earlier += part.done_earlier;
    }
    Ok(tally)
}

/// "1 job", "2 jobs".
fn workers(jobs: usize) -> String {
    format!("{jobs} job{}", if jobs == 1 { "" } else { "s" })
}

/// Workers print only their report on stdout; their notes go to stderr unless the run is quiet.
fn quiet_worker(ui: &Ui) -> Option<OsString> {
    (ui.quiet || ui.json).then(|| "-q".into())
}

fn detect(args: FleetDetectArgs, ui: &Ui) -> anyhow::Result<()> {
    let method: vigil_core::threshold::ThresholdMethod = args.threshold.parse()?;
    if matches!(
        method,
        vigil_core::threshold::ThresholdMethod::BestF1 { .. }
    ) {
        anyhow::bail!(
            "`{}` needs test labels; fleet detect thresholds without them",
            args.threshold
        );
    }
    let files = entity_files_in(&args.entities, "test")?;
    let (mut scored, mut without_model, mut alarms_total) = (0usize, Vec::new(), 0usize);
    let mut reports = Vec::new();
    for (name, path) in &files {
        let model_dir = vigil_fleet::transfer::entity_dir(&args.fleet, name);
        if !model_dir.exists() {
            without_model.push(name.clone());
            continue;
        }
        let model = vigil_models::TrainedModel::load(&model_dir)?;
        let series = read_entity(path, None)?;
        let labels = series.labels.clone();
        let interpretation = series.interpretation.clone();
        let (scores, _) = model.score(series, &path.display().to_string())?;
        let (th, flagged) = match &labels {
            Some(labels) => {
                let (report, th, flagged) = vigil_models::experiment::threshold_and_evaluate(
                    &scores,
                    &model.calibration,
                    method,
                    labels,
                    interpretation.as_deref(),
                )?;
                reports.push((name.clone(), report));
                (th, flagged)
            }
            None => {
                let decision =
                    vigil_core::threshold::decide(method, &model.calibration, &scores.total, None)?;
                (decision.thresholds, decision.alarms)
            }
        };
        alarms_total += flagged.iter().filter(|&&a| a != 0).count();
        super::detect::write_scores_csv(
            &args.output.join(format!("{name}.csv")),
            &model.manifest.metric_names,
            &scores,
            &th,
            &flagged,
            || Ok(()),
        )?;
        scored += 1;
        ui.note(format!("{name}: scored {} steps", scores.total.len()));
    }
    if scored == 0 {
        anyhow::bail!(
            "no entity in {} has a model in {}; run `vigil fleet transfer` on them first",
            args.entities.display(),
            args.fleet.join("entities").display()
        );
    }
    let mean = |f: &dyn Fn(&vigil_core::metrics::EvalReport) -> f64| {
        (!reports.is_empty())
            .then(|| reports.iter().map(|(_, r)| f(r)).sum::<f64>() / reports.len() as f64)
    };
    let (f1, pa_f1, best_f1) = (
        mean(&|r| r.f1),
        mean(&|r| r.pa_f1),
        mean(&|r| r.best_f1.unwrap_or(f64::NAN)),
    );
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"scored": scored, "alarms": alarms_total, "without_model": without_model, "mean_f1": f1, "mean_pa_f1": pa_f1, "mean_best_f1": best_f1, "output": args.output})
        );
    } else {
        println!(
            "scored {scored} entities ({alarms_total} alarms); scores in {}",
            args.output.display()
        );
        if let (Some(f1), Some(pa), Some(best)) = (f1, pa_f1, best_f1) {
            println!(
                "labelled: mean F1 {f1:.4}, PA-F1 {pa:.4} ({}), best F1 {best:.4} (oracle)",
                args.threshold
            );
        }
        if !without_model.is_empty() {
            println!(
                "{} entities have no model yet (not transferred): {}",
                without_model.len(),
                without_model.join(", ")
            );
        }
    }
    Ok(())
}
