//! Evaluation measures (see `../shared/notes/evaluation.md` and `docs/metrics.md`, which names the
//! independent implementation each one is checked against).
//!
//! Every report shows label-free-threshold figures beside threshold-free ones and the best-F1
//! oracle, never point-adjusted F1 alone.

pub mod adjust;
pub mod affiliation;
pub mod auc;
pub mod best;
pub mod hitrate;
pub mod localisation;
pub mod point;
pub mod vus;

use crate::series::Interpretation;
use adjust::{pa_k_curve, point_adjust};
use point::Confusion;
use serde::{Deserialize, Serialize};

/// Everything vigil reports for one scored and thresholded series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Point-wise precision at the label-free threshold.
    pub precision: f64,
    /// Point-wise recall at the label-free threshold.
    pub recall: f64,
    /// Point-wise F1 at the label-free threshold (no adjustment).
    pub f1: f64,
    /// Point-adjusted precision.
    pub pa_precision: f64,
    /// Point-adjusted recall.
    pub pa_recall: f64,
    /// Point-adjusted F1 (inflated; shown only beside the others).
    pub pa_f1: f64,
    /// Area under F1-vs-K of PA%K, K = 0..100.
    pub pa_k_area: f64,
    /// Matthews correlation at the label-free threshold.
    pub mcc: f64,
    /// Affiliation precision at the label-free threshold (Huet et al. 2022); `None` without alarms.
    pub affiliation_precision: Option<f64>,
    /// Affiliation recall at the label-free threshold.
    pub affiliation_recall: Option<f64>,
    /// Affiliation F1 at the label-free threshold (0 without alarms).
    pub affiliation_f1: Option<f64>,
    /// VUS-ROC of the raw scores (threshold-free; buffers up to 100 points, 250 thresholds).
    pub vus_roc: Option<f64>,
    /// VUS-PR of the raw scores (threshold-free).
    pub vus_pr: Option<f64>,
    /// ROC-AUC of the raw scores (threshold-free).
    pub roc_auc: Option<f64>,
    /// PR-AUC (average precision) of the raw scores (threshold-free).
    pub pr_auc: Option<f64>,
    /// Best point-wise F1 over all thresholds — oracle.
    pub best_f1: Option<f64>,
    /// Best point-adjusted F1 over all thresholds — oracle.
    pub best_pa_f1: Option<f64>,
    /// HitRate@100% of per-metric contributions, when interpretation labels exist.
    pub hit_rate_100: Option<f64>,
    /// HitRate@150%.
    pub hit_rate_150: Option<f64>,
    /// Fraction of points flagged.
    pub alarm_rate: f64,
}

/// Evaluates scores and alarms against labels. `contributions` (`T x M`) and `interpretation`
/// are optional; HitRate is reported when both are given.
pub fn evaluate(
    scores: &[f64],
    alarms: &[u8],
    labels: &[u8],
    contributions: Option<(&[f32], usize)>,
    interpretation: Option<&[Interpretation]>,
) -> EvalReport {
    let c = Confusion::count(alarms, labels);
    let aff = affiliation::affiliation(alarms, labels);
    let volume = vus::vus(
        scores,
        labels,
        vus::DEFAULT_MAX_WINDOW,
        vus::DEFAULT_THRESHOLDS,
    );
    let pa = Confusion::count(&point_adjust(alarms, labels), labels);
    let (_, pa_k_area) = pa_k_curve(alarms, labels);
    let hit = |p: f64| match (contributions, interpretation) {
        (Some((values, m)), Some(interp)) => hitrate::hit_rate(values, m, interp, p),
        _ => None,
    };
    EvalReport {
        precision: c.precision(),
        recall: c.recall(),
        f1: c.f1(),
        pa_precision: pa.precision(),
        pa_recall: pa.recall(),
        pa_f1: pa.f1(),
        pa_k_area,
        mcc: c.mcc(),
        affiliation_precision: aff.and_then(|a| a.precision),
        affiliation_recall: aff.map(|a| a.recall),
        affiliation_f1: aff.map(|a| a.f1()),
        vus_roc: volume.map(|v| v.roc),
        vus_pr: volume.map(|v| v.pr),
        roc_auc: auc::roc_auc(scores, labels),
        pr_auc: auc::average_precision(scores, labels),
        best_f1: best::best_f1_pointwise(scores, labels).map(|b| b.f1),
        best_pa_f1: best::best_f1_adjusted(scores, labels).map(|b| b.f1),
        hit_rate_100: hit(100.0),
        hit_rate_150: hit(150.0),
        alarm_rate: alarms.iter().filter(|&&a| a != 0).count() as f64 / alarms.len().max(1) as f64,
    }
}
