//! `vigil tune`: fine-tune a trained model on new data of its entity, learning from the
//! operators' labels in the data's `label` column (1 anomalous, 0 normal), and write the result
//! as a model directory — beside the old model, or over it.

use crate::output::Ui;
use clap::Args;
use std::path::PathBuf;
use vigil_models::{fine_tune, TrainedModel, TuneSpec};

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Model directory to start from (written by `vigil train` or `vigil tune`).
    #[arg(long)]
    pub model: PathBuf,
    /// New data of the entity, with the model's metrics; a `label` column (CSV, Parquet) marks
    /// steps operators judged anomalous (1) or normal (0).
    #[arg(long)]
    pub input: PathBuf,
    /// Model directory to write; the same path as --model replaces that model (in one step: a
    /// kill leaves the old model or the new one).
    #[arg(long)]
    pub output: PathBuf,
    /// Epochs of fine-tuning (default: the detector's configured epochs).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// A layer group to keep frozen (repeatable); `vigil models` lists each detector's groups.
    #[arg(long = "freeze", value_name = "GROUP")]
    pub frozen_groups: Vec<String>,
    /// Seed of the fine-tune's random choices.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A column of the input holding each step's weight (finite, 0 or more) rather than a
    /// metric: how much the step counts (0 leaves its windows out, 10 counts it ten times).
    #[arg(long, value_name = "COLUMN")]
    pub weight_column: Option<String>,
    /// Operators' feedback instead of a `label` column: a CSV (`entity,start,end,label`) or JSON
    /// lines file of stretches judged `anomaly` or `normal` (`start`/`end` inclusive, as the
    /// input's timestamps, or step numbers when it has none). Steps no stretch covers are
    /// learnt as normal, as unlabelled input is.
    #[arg(long, value_name = "FILE")]
    pub feedback: Option<PathBuf>,
    /// The entity of the input, to pick its rows of --feedback (needed when the file is about
    /// several).
    #[arg(long, requires = "feedback")]
    pub entity: Option<String>,
}

pub fn run(args: TuneArgs, ui: &Ui) -> anyhow::Result<()> {
    let mut spec = TuneSpec {
        epochs: args.epochs,
        frozen_groups: args.frozen_groups,
        seed: args.seed,
        step_weights: None,
    };
    spec.validate()?;
    // A new model inside the old one would make the old one a folder vigil no longer owns
    // (it would hold files its manifest does not list); the same path replaces it.
    let same = std::fs::canonicalize(&args.output).ok() == std::fs::canonicalize(&args.model).ok()
        && args.output.exists();
    if !same {
        vigil_core::write::refuse_writing_inside("--output", &args.output, "--model", &args.model)?;
    }
    let model = TrainedModel::load(&args.model)?;
    let mut series = vigil_core::read::read_series(&args.input)?;
    if let Some(column) = &args.weight_column {
        let weights = series
            .take_column(column)
            .map_err(|e| anyhow::anyhow!("--weight-column: {}: {e}", args.input.display()))?;
        spec.step_weights = Some(weights.into_iter().map(|w| w as f32).collect());
    }
    if let Some(path) = &args.feedback {
        series.labels = Some(feedback_labels(
            &series,
            path,
            args.entity.as_deref(),
            &args.input,
        )?);
    }
    let tuned = fine_tune(&model, series, &spec)?;
    tuned.save(&args.output)?;
    let t = &tuned.manifest.training;
    if ui.json {
        crate::say!("{}", serde_json::to_string_pretty(&tuned.manifest)?)?;
    } else {
        let loss = t
            .final_loss
            .map_or(String::new(), |l| format!(", final loss {l:.5}"));
        crate::say!(
            "fine-tuned {} on {} steps ({} labelled anomalous, left out) in {:.1}s ({} epochs{loss}); model written to {}",
            tuned.manifest.detector,
            t.train_steps,
            t.labelled_anomalous,
            t.train_seconds,
            t.epochs,
            args.output.display()
        )?;
    }
    Ok(())
}

/// Each step's label from the feedback file's stretches about the input's entity.
fn feedback_labels(
    series: &vigil_core::Series,
    path: &std::path::Path,
    entity: Option<&str>,
    input: &std::path::Path,
) -> anyhow::Result<Vec<u8>> {
    use vigil_core::read::feedback::{entities_of, labels_from_feedback, read_feedback};
    if series.labels.is_some() {
        anyhow::bail!(
            "{} has a `label` column and --feedback gives labels too; use one of them",
            input.display()
        );
    }
    let ranges = read_feedback(path)?;
    let known = entities_of(&ranges);
    let entity = match (entity, known.as_slice()) {
        (Some(name), _) if known.contains(&name) => name,
        (Some(name), _) => anyhow::bail!(
            "{} has no feedback about entity `{name}`; it is about: {}",
            path.display(),
            known.join(", ")
        ),
        (None, [only]) => only,
        (None, _) => anyhow::bail!(
            "{} is about several entities ({}); name the input's with --entity",
            path.display(),
            known.join(", ")
        ),
    };
    Ok(labels_from_feedback(series, &ranges, entity, path)?)
}
