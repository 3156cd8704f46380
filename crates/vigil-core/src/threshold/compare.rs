//! Judging a threshold rule on saved scores against their labels: the figures of
//! `vigil thresholds` and `bench/thresholds/` (point-wise, point-adjusted and affiliation F1,
//! beside the oracle's best point-wise F1 on the same scores).

use crate::error::{CoreError, Result};
use crate::metrics::adjust::point_adjust;
use crate::metrics::affiliation::affiliation;
use crate::metrics::best::best_f1_pointwise;
use crate::metrics::point::Confusion;
use crate::threshold::auto::AutoChoice;
use crate::threshold::{decide, Decision, SavedScores, ThresholdMethod};
use serde::{Deserialize, Serialize};

/// One rule on one entity's saved scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleFigures {
    /// Detector that made the scores.
    pub detector: String,
    /// Entity.
    pub entity: String,
    /// The rule, as given.
    pub rule: String,
    /// Point-wise F1.
    pub f1: f64,
    /// Point-adjusted F1 (every point of a segment counts once any point of it is alarmed).
    pub pa_f1: f64,
    /// Affiliation F1 (Huet et al., KDD 2022; 0 when the rule raised no alarm); `None` when
    /// nothing is labelled anomalous.
    pub affiliation_f1: Option<f64>,
    /// The oracle's best point-wise F1 on the same scores (reads the labels).
    pub best_f1: f64,
    /// Alarmed points.
    pub alarms: usize,
    /// Test points.
    pub points: usize,
    /// Points labelled anomalous.
    pub anomalies: usize,
    /// Under `auto`: what it chose.
    pub choice: Option<AutoChoice>,
}

/// Applies `method` to `saved` and measures the alarms against its labels.
pub fn judge(saved: &SavedScores, rule: &str, method: ThresholdMethod) -> Result<RuleFigures> {
    let Decision { alarms, choice, .. } =
        decide(method, &saved.calibration, &saved.test, Some(&saved.labels))?;
    let mut figures = judge_alarms(saved, rule, &alarms)?;
    figures.choice = choice;
    Ok(figures)
}

/// Measures alarms that another tool raised on `saved`'s test scores (PyThresh's, in
/// `bench/thresholds/`) with the same measures as [`judge`].
pub fn judge_alarms(saved: &SavedScores, rule: &str, alarms: &[u8]) -> Result<RuleFigures> {
    if alarms.len() != saved.labels.len() {
        return Err(CoreError::invalid(format!(
            "rule {rule} on {}: {} alarms for {} test points",
            saved.entity,
            alarms.len(),
            saved.labels.len()
        )));
    }
    let point = Confusion::count(alarms, &saved.labels);
    let adjusted = Confusion::count(&point_adjust(alarms, &saved.labels), &saved.labels);
    Ok(RuleFigures {
        detector: saved.detector.clone(),
        entity: saved.entity.clone(),
        rule: rule.to_string(),
        f1: point.f1(),
        pa_f1: adjusted.f1(),
        affiliation_f1: affiliation(alarms, &saved.labels).map(|a| a.f1()),
        best_f1: best_f1_pointwise(&saved.test, &saved.labels).map_or(0.0, |b| b.f1),
        alarms: alarms.iter().filter(|&&a| a != 0).count(),
        points: saved.test.len(),
        anomalies: saved.labels.iter().filter(|&&l| l != 0).count(),
        choice: None,
    })
}
