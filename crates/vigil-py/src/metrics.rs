//! vigil's evaluation measures over NumPy arrays (`vigil.metrics` in Python): the same code
//! `vigil eval` reports with, each checked against an independent implementation
//! (docs/metrics.md). Arrays of different lengths or labels other than 0/1 are refused.

use crate::arrays::{finite_vector, flags, vector_out};
use crate::errors::invalid;
use numpy::{PyArray1, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use vigil_core::metrics::{adjust, affiliation, auc, best, point::Confusion, vus};

/// The most thresholds a VUS sweep takes (vigil eval takes 250).
const MOST_THRESHOLDS: usize = 100_000;

/// Point-wise precision, recall, F1 and Matthews correlation of the alarms `pred`.
#[pyfunction]
pub fn point(
    py: Python<'_>,
    pred: PyReadonlyArrayDyn<'_, i64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
) -> PyResult<(f64, f64, f64, f64)> {
    let (pred, labels) = pair_of_flags(pred, labels)?;
    let c = py.detach(|| Confusion::count(&pred, &labels));
    Ok((c.precision(), c.recall(), c.f1(), c.mcc()))
}

/// The alarms after point adjustment: a labelled segment with one alarm counts as found whole
/// (the inflating convention; report it beside the point-wise figures, never alone).
#[pyfunction]
pub fn point_adjust<'py>(
    py: Python<'py>,
    pred: PyReadonlyArrayDyn<'_, i64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let (pred, labels) = pair_of_flags(pred, labels)?;
    let adjusted = py.detach(|| adjust::point_adjust(&pred, &labels));
    Ok(vector_out(py, adjusted))
}

/// Affiliation precision (`None` without alarms), recall and F1 (Huet et al., KDD 2022);
/// `None` when no step is labelled anomalous.
#[pyfunction]
#[pyo3(name = "affiliation")]
pub fn affiliation_figures(
    py: Python<'_>,
    pred: PyReadonlyArrayDyn<'_, i64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
) -> PyResult<Option<(Option<f64>, f64, f64)>> {
    let (pred, labels) = pair_of_flags(pred, labels)?;
    let found = py.detach(|| affiliation::affiliation(&pred, &labels));
    Ok(found.map(|a| (a.precision, a.recall, a.f1())))
}

/// VUS-ROC and VUS-PR of the scores (Paparrizos et al., VLDB 2022), with label buffers up to
/// `max_window` steps and `thresholds` thresholds; `None` without an anomalous label.
#[pyfunction]
#[pyo3(name = "vus", signature = (scores, labels, max_window=vus::DEFAULT_MAX_WINDOW, thresholds=vus::DEFAULT_THRESHOLDS))]
pub fn volumes(
    py: Python<'_>,
    scores: PyReadonlyArrayDyn<'_, f64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
    max_window: usize,
    thresholds: usize,
) -> PyResult<Option<(f64, f64)>> {
    let (scores, labels) = scores_and_labels(scores, labels)?;
    // VUS sweeps every buffer up to max_window at every threshold: bounded here so that a
    // mistyped parameter errs instead of running for hours or exhausting memory.
    if !(1..=MOST_THRESHOLDS).contains(&thresholds) {
        return Err(invalid(format!(
            "thresholds must be in [1, {MOST_THRESHOLDS}], got {thresholds} (vigil eval uses {})",
            vus::DEFAULT_THRESHOLDS
        )));
    }
    if max_window > scores.len().max(vus::DEFAULT_MAX_WINDOW) {
        return Err(invalid(format!(
            "max_window ({max_window}) must be at most the series' length ({}): a buffer longer \
             than the series changes nothing (vigil eval uses {})",
            scores.len(),
            vus::DEFAULT_MAX_WINDOW
        )));
    }
    Ok(py
        .detach(|| vus::vus(&scores, &labels, max_window, thresholds))
        .map(|v| (v.roc, v.pr)))
}

/// ROC-AUC and PR-AUC (average precision) of the scores; each `None` where the labels do not
/// allow it (one class only; no anomalous label).
#[pyfunction]
#[pyo3(name = "auc")]
pub fn areas(
    py: Python<'_>,
    scores: PyReadonlyArrayDyn<'_, f64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
) -> PyResult<(Option<f64>, Option<f64>)> {
    let (scores, labels) = scores_and_labels(scores, labels)?;
    Ok(py.detach(|| {
        (
            auc::roc_auc(&scores, &labels),
            auc::average_precision(&scores, &labels),
        )
    }))
}

/// The best F1 over every threshold (point-wise, or point-adjusted) — an oracle that looks at
/// the labels: its F1, precision, recall and threshold; `None` without an anomalous label.
#[pyfunction]
#[pyo3(signature = (scores, labels, adjusted=false))]
pub fn best_f1(
    py: Python<'_>,
    scores: PyReadonlyArrayDyn<'_, f64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
    adjusted: bool,
) -> PyResult<Option<(f64, f64, f64, f64)>> {
    let (scores, labels) = scores_and_labels(scores, labels)?;
    let found = py.detach(|| {
        if adjusted {
            best::best_f1_adjusted(&scores, &labels)
        } else {
            best::best_f1_pointwise(&scores, &labels)
        }
    });
    Ok(found.map(|b| (b.f1, b.precision, b.recall, b.threshold)))
}

/// Everything `vigil eval` reports for scores, their alarms and the labels, as JSON.
#[pyfunction]
pub fn evaluate(
    py: Python<'_>,
    scores: PyReadonlyArrayDyn<'_, f64>,
    alarms: PyReadonlyArrayDyn<'_, i64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
) -> PyResult<String> {
    let (scores, labels) = scores_and_labels(scores, labels)?;
    let alarms = flags(alarms, "alarms")?;
    same_length(alarms.len(), "alarms", labels.len())?;
    let report = py.detach(|| vigil_core::metrics::evaluate(&scores, &alarms, &labels, None, None));
    serde_json::to_string(&report).map_err(|e| invalid(format!("cannot encode the report: {e}")))
}

fn pair_of_flags(
    pred: PyReadonlyArrayDyn<'_, i64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
) -> PyResult<(Vec<u8>, Vec<u8>)> {
    let (pred, labels) = (flags(pred, "pred")?, flags(labels, "labels")?);
    same_length(pred.len(), "pred", labels.len())?;
    Ok((pred, labels))
}

fn scores_and_labels(
    scores: PyReadonlyArrayDyn<'_, f64>,
    labels: PyReadonlyArrayDyn<'_, i64>,
) -> PyResult<(Vec<f64>, Vec<u8>)> {
    let (scores, labels) = (finite_vector(scores, "scores")?, flags(labels, "labels")?);
    same_length(scores.len(), "scores", labels.len())?;
    Ok((scores, labels))
}

fn same_length(len: usize, what: &str, labels: usize) -> PyResult<()> {
    if len != labels {
        return Err(invalid(format!(
            "{what} has {len} steps but labels has {labels}: they must be the same series"
        )));
    }
    Ok(())
}
