//! One entity end to end: train on its training series, score its test series, threshold the
//! scores without labels, evaluate against the labels. Shared by `vigil demo`, `eval` and `bench`.

use crate::detector::Scores;
use crate::error::{ModelError, Result};
use crate::pipeline::{train, TrainSpec, TrainedModel};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use vigil_core::metrics::{evaluate, EvalReport};
use vigil_core::threshold::{decide, Decision, ThresholdMethod};
use vigil_core::{Entity, Interpretation};

/// The outcome of one entity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntityOutcome {
    /// Entity name.
    pub entity: String,
    /// Detector name.
    pub detector: String,
    /// Evaluation at the label-free threshold, plus threshold-free and oracle figures.
    pub report: EvalReport,
    /// Training seconds (fit only).
    pub train_seconds: f64,
    /// Scoring seconds for the test series.
    pub score_seconds: f64,
    /// Test time steps scored.
    pub test_steps: usize,
    /// Peak resident memory of the process so far, in bytes (Linux `VmHWM`), if known.
    pub peak_rss_bytes: Option<u64>,
    /// Alarm figures at further label-free thresholds, for comparison.
    pub also: Vec<ThresholdFigures>,
}

/// Alarm figures of one more label-free threshold on the same scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdFigures {
    /// The threshold's name (`pot-batch`, `spot`, ...).
    pub method: String,
    /// Point-wise F1.
    pub f1: f64,
    /// Point-adjusted F1.
    pub pa_f1: f64,
    /// Share of test points alarmed.
    pub alarm_rate: f64,
}

/// Scores, thresholds and alarms of a test series, kept for reports and plots.
pub struct EntityTrace {
    /// Per-step total scores.
    pub scores: Vec<f64>,
    /// Per-step thresholds.
    pub thresholds: Vec<f64>,
    /// Per-step alarms.
    pub alarms: Vec<u8>,
}

/// Runs one entity. The test series must carry labels. `also` names further label-free
/// thresholds whose F1 and PA-F1 are reported beside the main one.
pub fn run_entity(
    entity: &Entity,
    spec: &TrainSpec,
    method: ThresholdMethod,
    also: &[(String, ThresholdMethod)],
) -> Result<(EntityOutcome, EntityTrace, TrainedModel)> {
    let labels = entity.test.labels.clone().ok_or_else(|| {
        ModelError::Shape(format!(
            "entity {}: the test series has no labels to evaluate against",
            entity.name
        ))
    })?;
    let model = train(entity.train.clone(), spec, None)?;
    let started = Instant::now();
    let (scores, _) = model.score(
        entity.test.clone(),
        &format!("test series of {}", entity.name),
    )?;
    let score_seconds = started.elapsed().as_secs_f64();
    let (report, th, flagged) = threshold_and_evaluate(
        &scores,
        &model.calibration,
        method,
        &labels,
        entity.test.interpretation.as_deref(),
    )?;
    let mut also_figures = Vec::new();
    for (name, other) in also {
        let (r, _, _) = threshold_and_evaluate(&scores, &model.calibration, *other, &labels, None)?;
        also_figures.push(ThresholdFigures {
            method: name.clone(),
            f1: r.f1,
            pa_f1: r.pa_f1,
            alarm_rate: r.alarm_rate,
        });
    }
    let outcome = EntityOutcome {
        entity: entity.name.clone(),
        detector: spec.detector.clone(),
        report,
        train_seconds: model.manifest.training.train_seconds,
        score_seconds,
        test_steps: entity.test.len(),
        peak_rss_bytes: crate::memory::peak_rss_bytes(),
        also: also_figures,
    };
    Ok((
        outcome,
        EntityTrace {
            scores: scores.total,
            thresholds: th,
            alarms: flagged,
        },
        model,
    ))
}

/// Thresholds scores with `method` (calibrated on `calibration`) and evaluates the alarms
/// against `labels`; returns the report, the per-step thresholds and the alarms.
pub fn threshold_and_evaluate(
    scores: &Scores,
    calibration: &[f64],
    method: ThresholdMethod,
    labels: &[u8],
    interpretation: Option<&[Interpretation]>,
) -> Result<(EvalReport, Vec<f64>, Vec<u8>)> {
    let Decision {
        thresholds: th,
        alarms: flagged,
        ..
    } = decide(method, calibration, &scores.total, Some(labels))?;
    let report = evaluate(
        &scores.total,
        &flagged,
        labels,
        Some((&scores.per_metric, scores.n_metrics)),
        interpretation,
    );
    Ok((report, th, flagged))
}
