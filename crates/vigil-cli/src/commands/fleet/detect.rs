//! `vigil fleet detect`: score every adapted entity with its own model.

use crate::output::Ui;
use clap::Args;
use std::path::PathBuf;
use vigil_core::read::entities::{entity_files_in, read_entity};

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
    /// Label-free threshold: `auto` (default), `spot`, `dspot`, `pot`, `pot-batch`, `ndt` (LSTM-NDT's dynamic threshold) or `quantile`.
    #[arg(long, default_value = "auto")]
    pub threshold: String,
}

pub(super) fn detect(args: FleetDetectArgs, ui: &Ui) -> anyhow::Result<()> {
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
    // Checked for every entity before any is scored, so a clash writes nothing.
    vigil_core::write::refuse_writing_inside(
        "--output",
        &args.output.join("x.csv"),
        "--fleet",
        &args.fleet,
    )?;
    for (name, path) in &files {
        vigil_core::write::refuse_overwriting_inputs(
            "--output",
            &scores_path(&args, name),
            &[("--entities", path)],
        )?;
    }
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
        crate::commands::detect::write_scores_csv(
            &scores_path(&args, name),
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
        crate::say!(
            "{}",
            serde_json::json!({"scored": scored, "alarms": alarms_total, "without_model": without_model, "mean_f1": f1, "mean_pa_f1": pa_f1, "mean_best_f1": best_f1, "output": args.output})
        )?;
    } else {
        crate::say!(
            "scored {scored} entities ({alarms_total} alarms); scores in {}",
            args.output.display()
        )?;
        if let (Some(f1), Some(pa), Some(best)) = (f1, pa_f1, best_f1) {
            crate::say!(
                "labelled: mean F1 {f1:.4}, PA-F1 {pa:.4} ({}), best F1 {best:.4} (oracle)",
                args.threshold
            )?;
        }
        if !without_model.is_empty() {
            crate::say!(
                "{} entities have no model yet (not transferred): {}",
                without_model.len(),
                without_model.join(", ")
            )?;
        }
    }
    Ok(())
}

/// Where an entity's scores go: `<output>/<entity>.csv`.
fn scores_path(args: &FleetDetectArgs, entity: &str) -> PathBuf {
    args.output.join(format!("{entity}.csv"))
}
