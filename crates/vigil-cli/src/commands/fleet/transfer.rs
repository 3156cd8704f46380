//! `vigil fleet transfer`: adapt each entity from its short-term data by full or partial
//! transfer, in worker processes; resumable.

use super::workers::{spread, workers};
use crate::output::Ui;
use clap::Args;
use std::path::PathBuf;
use vigil_core::read::entities::{entity_files, read_entity};
use vigil_fleet::fleet::FleetClusters;
use vigil_fleet::transfer::{base_model_problem, finished, transfer_entity, TransferConfig};
use vigil_models::{TrainSpec, Transfer};

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

/// How many entities a transfer run adapted.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct TransferTally {
    full: usize,
    partial: usize,
    done_earlier: usize,
}

/// The transfer settings the flags give.
fn transfer_config(args: &TransferArgs, clusters: &FleetClusters) -> TransferConfig {
    TransferConfig {
        spec: TrainSpec {
            seed: args.seed,
            epochs: Some(args.epochs),
            ..TrainSpec::default()
        },
        steps: args.steps.unwrap_or(clusters.config.segment_length),
        tau: args.tau,
    }
}

pub(super) fn transfer(args: TransferArgs, ui: &Ui) -> anyhow::Result<()> {
    let clusters = FleetClusters::load(&args.fleet)?;
    // Refused here, before any worker starts, with the message a config would give.
    let config = transfer_config(&args, &clusters);
    config.spec.validate()?;
    config.validate()?;
    for cluster in &clusters.clusters {
        if let Some(problem) = base_model_problem(&args.fleet, &clusters, cluster.id) {
            anyhow::bail!(
                "the fleet {} {problem}; run `vigil fleet train-base --entities <the clustered entities> --fleet {}` first",
                args.fleet.display(),
                args.fleet.display()
            );
        }
    }
    let files = entity_files(&args.entities)?;
    let started = std::time::Instant::now();
    let jobs = args.jobs.unwrap_or_else(rayon::current_num_threads).max(1);
    let share = |index, count| transfer_share(&args, &clusters, &files, index, count, ui);
    let Some(shares) = spread(args.worker.as_deref(), jobs, "transfer", ui, share)? else {
        return Ok(());
    };
    let tally = shares
        .into_iter()
        .fold(TransferTally::default(), |sum, part| TransferTally {
            full: sum.full + part.full,
            partial: sum.partial + part.partial,
            done_earlier: sum.done_earlier + part.done_earlier,
        });
    let seconds = started.elapsed().as_secs_f64();
    let adapted = tally.full + tally.partial;
    let per_minute = adapted as f64 / seconds.max(1e-9) * 60.0;
    if ui.json {
        crate::say!(
            "{}",
            serde_json::json!({"adapted": adapted, "full": tally.full, "partial": tally.partial, "done_earlier": tally.done_earlier, "seconds": seconds, "entities_per_minute": per_minute, "jobs": jobs})
        )?;
    } else {
        crate::say!(
            "adapted {adapted} entities ({} full, {} partial transfer; {} done by an earlier run) in {seconds:.1}s with {}: {per_minute:.0} per minute; models under {}",
            tally.full,
            tally.partial,
            tally.done_earlier,
            workers(jobs),
            args.fleet.join("entities").display()
        )?;
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
    let config = transfer_config(args, clusters);
    let mut tally = TransferTally::default();
    for (i, (name, path)) in files.iter().enumerate().skip(index).step_by(count) {
        if finished(&args.fleet, name, clusters, &config).is_some() {
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
