//! `vigil fleet train-base`: one base model per cluster, in worker processes; resumable.

use super::workers::{spread, workers};
use crate::commands::SpecArgs;
use crate::output::Ui;
use clap::Args;
use std::path::PathBuf;
use vigil_core::read::entities::{entity_files, read_entity};
use vigil_fleet::fleet::FleetClusters;
use vigil_fleet::transfer::{train_base_model, BaseRecord};
use vigil_models::TrainSpec;

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

/// The detector fleets use when none is named: a neural detector whose layers can transfer.
const FLEET_DETECTOR: &str = "usad";

pub(super) fn train_base(args: TrainBaseArgs, ui: &Ui) -> anyhow::Result<()> {
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
    let share = |index, count| train_base_share(&args, &clusters, &spec, index, count, ui);
    let Some(shares) = spread(args.worker.as_deref(), jobs, "train-base", ui, share)? else {
        return Ok(());
    };
    let mut records: Vec<BaseRecord> = shares.into_iter().flatten().collect();
    records.sort_by_key(|r| r.cluster);
    let seconds = started.elapsed().as_secs_f64();
    let reused = records.iter().filter(|r| r.reused).count();
    let stale = records.iter().filter(|r| r.replaced_stale).count();
    if ui.json {
        crate::say!(
            "{}",
            serde_json::json!({"detector": spec.detector, "base_models": records, "seconds": seconds, "jobs": jobs})
        )?;
    } else {
        crate::say!(
            "{} base models ({}; {reused} from an earlier run, {stale} retrained because the clustering or settings changed) in {seconds:.1}s with {} under {}",
            records.len(),
            spec.detector,
            workers(jobs),
            args.fleet.join("base").display()
        )?;
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
