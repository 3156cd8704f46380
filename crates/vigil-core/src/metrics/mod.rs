//! Evaluation measures (see `../shared/notes/evaluation.md` and `docs/metrics.md`).
//!
//! Every report shows label-free-threshold figures beside threshold-free ones and the best-F1
//! oracle, never point-adjusted F1 alone.

pub mod adjust;
pub mod auc;
pub mod best;
pub mod hitrate;
pub mod point;

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
        roc_auc: auc::roc_auc(scores, labels),
        pr_auc: auc::average_precision(scores, labels),
        best_f1: best::best_f1_pointwise(scores, labels).map(|b| b.f1),
        best_pa_f1: best::best_f1_adjusted(scores, labels).map(|b| b.f1),
        hit_rate_100: hit(100.0),
        hit_rate_150: hit(150.0),
        alarm_rate: alarms.iter().filter(|&&a| a != 0).count() as f64 / alarms.len().max(1) as f64,
    }
}
