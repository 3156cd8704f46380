//! Fine-tuning a trained model on new data of its entity, with operators' labels when the data
//! carries them (issue 26 item 4): the entry point of the feedback loop (AnoTuner) and of the
//! service's background retraining. The model keeps its detector, config and normaliser; its
//! network continues from its weights, with chosen layer groups frozen; windows holding a step
//! labelled anomalous are not learnt as normal, and those steps are left out of the
//! calibration scores the label-free thresholds are fitted on.

use crate::detector::FitOptions;
use crate::error::{ModelError, Result};
use crate::model_dir::manifest_fingerprint;
use crate::pipeline::{finite_scores, Prepared, TrainedModel};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use vigil_core::window::check_window;
use vigil_core::Series;

/// How to fine-tune.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuneSpec {
    /// Epochs of fine-tuning; `None` runs the detector's configured number.
    pub epochs: Option<usize>,
    /// Layer groups kept frozen (names the detector declares in `layer_groups`).
    pub frozen_groups: Vec<String>,
    /// Seed of the fine-tune's random choices (batch order, dropout, posterior samples).
    pub seed: u64,
    /// Optional weight of each step of the fine-tuning series (finite, zero or more): how much
    /// it counts, e.g. recent feedback above old data ([`crate::detector::MtsInput::weights`]).
    pub step_weights: Option<Vec<f32>>,
}

impl TuneSpec {
    /// Checks what the user chose: at least one epoch; weights finite and zero or more.
    pub fn validate(&self) -> Result<()> {
        vigil_core::validate::positive_count("epochs", self.epochs.unwrap_or(1))?;
        let weights = self.step_weights.as_deref().unwrap_or_default();
        if let Some((step, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(ModelError::config(
                "fine-tune",
                format!("step_weights[{step}] is {w}; a weight must be finite and zero or more"),
            ));
        }
        Ok(())
    }
}

/// The manifest key under which a fine-tuned model records the model it started from: the
/// SHA-256 of that model's `manifest.json` ([`crate::model_dir::model_fingerprint`]).
pub const FINE_TUNED_FROM: &str = "fine_tuned_from";

/// `model` fine-tuned on `series` by `spec`, as a new model (`model` itself is unchanged, so a
/// service can go on scoring with it meanwhile). The series must have the model's metrics; its
/// `labels`, when present, mark steps operators judged anomalous (non-zero) or normal (zero).
/// Refused with a reason: a detector that cannot continue training (the classical ones: train
/// a new model instead), an unknown frozen group, labels that leave no window to learn from.
pub fn fine_tune(
    model: &TrainedModel,
    mut series: Series,
    spec: &TuneSpec,
) -> Result<TrainedModel> {
    spec.validate()?;
    let kind = model.detector.kind();
    if !model.detector.continues_training() {
        return Err(ModelError::config(
            kind,
            "this detector cannot continue training from a fitted model (it is fitted in one \
             pass over its data); train a new model on the new data with `vigil train`",
        ));
    }
    let declared: Vec<String> = model
        .detector
        .layer_groups()
        .into_iter()
        .map(|g| g.name)
        .collect();
    if let Some(unknown) = spec.frozen_groups.iter().find(|g| !declared.contains(g)) {
        return Err(ModelError::config(
            kind,
            format!(
                "has no layer group `{unknown}` to freeze; its groups are: {}",
                declared.join(", ")
            ),
        ));
    }
    let report = model.admit(&mut series, "the fine-tuning series")?;
    let window = model.detector.window();
    check_window(window, series.len(), "the fine-tuning series")?;
    let labels = series.labels.take();
    if labels.is_some() && !model.detector.learns_from_labels() {
        return Err(ModelError::config(
            kind,
            "this detector does not learn from labels; remove the `label` column to fine-tune \
             without them",
        ));
    }
    // The model's own normaliser: a new one would move every input the network has learnt.
    let steps = series.len();
    // The tuned model has seen this data: the drift report measures from its range too.
    let mut normaliser = model.manifest.normaliser.clone();
    normaliser.widen_range(&series);
    let prepared = Prepared::new(series, &model.manifest.normaliser)?;
    let mut input = prepared.input();
    if let Some(weights) = &spec.step_weights {
        if weights.len() != steps {
            return Err(ModelError::Shape(format!(
                "{} step weights for a fine-tuning series of {steps} steps; give one per step",
                weights.len()
            )));
        }
        input = input.with_weights(weights);
    }
    if let Some(labels) = &labels {
        input = input.with_labels(labels);
        let learnable = (0..input.n_full_windows(window))
            .filter(|&s| !input.window_labelled_anomalous(s, window))
            .count();
        if learnable == 0 {
            return Err(ModelError::Shape(format!(
                "every {window}-step window of the fine-tuning series holds a step labelled \
                 anomalous, so there is nothing normal to learn from; add normal data"
            )));
        }
    }
    // A copy to train: the caller's model stays as it was.
    let files = model.files()?;
    let mut tuned = TrainedModel::from_files(model.manifest.clone(), &files)?;
    let options = FitOptions {
        seed: spec.seed,
        epochs: spec.epochs,
        frozen_groups: spec.frozen_groups.clone(),
        warm_start: true,
        ..FitOptions::default()
    };
    let started = Instant::now();
    let summary = tuned.detector.fit(&input, &options)?;
    let train_seconds = started.elapsed().as_secs_f64();
    // The check above counts every window; a detector trains on fewer (a stride, a held-out
    // tail, batches of at least two), which the labels may have emptied.
    if summary.windows == 0 {
        return Err(ModelError::Shape(format!(
            "no window the {kind} model trains on is left once the windows holding a step \
             labelled anomalous are left out, so it learnt nothing; add normal data"
        )));
    }
    let scores = finite_scores(tuned.detector.score(&input)?, kind, "fine-tuning series")?;
    // Steps labelled anomalous are not normal data to calibrate on, nor steps whose window
    // holds a step weighted 0: training never drew those windows (a window weighs the least
    // of its steps' weights), and a caller that joins pieces of data separates them with
    // steps weighted 0, so that no window across a junction is learnt or calibrated on.
    let left_out = |t: usize| {
        labels.as_ref().is_some_and(|l| l[t] != 0)
            || spec
                .step_weights
                .as_ref()
                .is_some_and(|w| w[(t + 1).saturating_sub(window)..=t].contains(&0.0))
    };
    tuned.calibration = scores
        .total
        .into_iter()
        .enumerate()
        .filter(|&(t, _)| !left_out(t))
        .map(|(_, s)| s)
        .collect();
    let manifest = &mut tuned.manifest;
    manifest.normaliser = normaliser;
    // Calibrated on the steps it was tuned on.
    manifest.training.calibration_steps = 0;
    manifest.vigil_version = env!("CARGO_PKG_VERSION").into();
    manifest.training.seed = spec.seed;
    manifest.training.train_steps = prepared.steps();
    manifest.training.missing_values = report.missing_values;
    manifest.training.epochs = summary.epochs;
    manifest.training.final_loss = summary.final_loss;
    manifest.training.train_seconds = train_seconds;
    manifest.training.labelled_anomalous = labels
        .as_ref()
        .map_or(0, |l| l.iter().filter(|&&l| l != 0).count());
    // As `model_dir::model_fingerprint` of the directory the model came from (or would go to).
    manifest.lineage.insert(
        FINE_TUNED_FROM.into(),
        manifest_fingerprint(&model.manifest, &files),
    );
    Ok(tuned)
}
