//! Point-wise confusion counts and the measures derived from them.

use serde::{Deserialize, Serialize};

/// Confusion counts of binary predictions against binary labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Anomalous points flagged.
    pub tp: u64,
    /// Normal points flagged.
    pub fp: u64,
    /// Anomalous points missed.
    pub fn_: u64,
    /// Normal points not flagged.
    pub tn: u64,
}

impl Confusion {
    /// Counts predictions against labels (both 0/1, same length).
    pub fn count(pred: &[u8], labels: &[u8]) -> Confusion {
        let mut c = Confusion::default();
        for (&p, &l) in pred.iter().zip(labels) {
            match (p != 0, l != 0) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    /// TP / (TP + FP); 0 when nothing is flagged.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// TP / (TP + FN); 0 when there is no anomaly.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }

    /// Matthews correlation coefficient (0 when any marginal is empty, as scikit-learn does).
    pub fn mcc(&self) -> f64 {
        let (tp, fp, fn_, tn) = (
            self.tp as f64,
            self.fp as f64,
            self.fn_ as f64,
            self.tn as f64,
        );
        let denom = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        if denom == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / denom
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Harmonic mean, 0 when both are 0.
pub fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// Flags the points whose score is at least `threshold`.
pub fn predict(scores: &[f64], threshold: f64) -> Vec<u8> {
    scores.iter().map(|&s| u8::from(s >= threshold)).collect()
}
