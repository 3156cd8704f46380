//! `vigil train`: fit a detector on a series and write a model directory.

use super::SpecArgs;
use crate::budget::{self, BudgetArgs, Role};
use crate::output::Ui;
use crate::progress::epoch_bar;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use vigil_core::topology::Topology;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training series (.csv with header, .npy, or .txt headerless numbers).
    #[arg(long)]
    pub train: PathBuf,
    /// Model directory to write.
    #[arg(long)]
    pub model: PathBuf,
    /// The system's call graph, an edge list (`caller,callee` per line) over the components
    /// that the columns name (`component.metric`): for detectors that read a topology
    /// (`topomad`), which keep it with the model.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

pub fn run(args: TrainArgs, ui: &Ui) -> anyhow::Result<()> {
    let (mut spec, threshold) = args.spec.resolve()?;
    let role = args.budget.role();
    match role {
        Role::Free => {}
        // The detector as configured, then ever smaller variants.
        Role::Supervisor(limit) => {
            let ladder =
                vigil_models::registry::memory_ladder(&spec.detector, spec.config.as_ref())?;
            return budget::supervise(limit, &budget::ladder_labels(&spec.detector, &ladder), ui);
        }
        Role::Worker { candidate, share } => {
            let ladder =
                vigil_models::registry::memory_ladder(&spec.detector, spec.config.as_ref())?;
            spec.config = Some(
                ladder
                    .get(candidate)
                    .with_context(|| format!("there is no memory-ladder candidate {candidate}"))?
                    .clone(),
            );
            budget::start_worker(share)?;
        }
    }
    let series = vigil_core::read::read_series(&args.train)?;
    if let Some(edges) = &args.topology {
        let detector = vigil_models::registry::build(&spec.detector, spec.config.as_ref())?;
        if !detector.reads_topology() {
            anyhow::bail!(
                "--topology: the {} detector does not read a topology (topomad does); drop \
                 --topology, or train topomad",
                spec.detector
            );
        }
        spec.topology = Some(Topology::read(&series.metric_names, &args.train, edges)?);
    }
    let (bar, on_epoch) = epoch_bar(ui, &spec.detector);
    let mut model = vigil_models::train(series, &spec, on_epoch)?;
    // The rule `vigil detect` applies unless told otherwise.
    model.manifest.threshold = Some(threshold);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Role::Worker { share, .. } = role {
        budget::commit_check(share)?;
    }
    model.save(&args.model)?;
    let t = &model.manifest.training;
    if ui.json {
        crate::say!("{}", serde_json::to_string_pretty(&model.manifest)?)?;
    } else {
        let loss = t
            .final_loss
            .map_or(String::new(), |l| format!(", final loss {l:.5}"));
        crate::say!(
            "trained {} on {} steps x {} metrics in {:.1}s ({} epochs{loss}); model written to {}",
            model.manifest.detector,
            t.train_steps,
            model.manifest.metric_names.len(),
            t.train_seconds,
            t.epochs,
            args.model.display()
        )?;
    }
    Ok(())
}
