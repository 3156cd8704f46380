//! Best F1 over all thresholds — an *oracle*, because it chooses the threshold with the test labels.
//! Reported beside label-free thresholds, never instead of them.

use crate::metrics::adjust::segments;
use crate::metrics::point::f1;
use serde::{Deserialize, Serialize};

/// The best F1 found and the threshold that gives it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestF1 {
    /// The F1 at the best threshold.
    pub f1: f64,
    /// Precision there.
    pub precision: f64,
    /// Recall there.
    pub recall: f64,
    /// The threshold (points with score >= threshold are flagged).
    pub threshold: f64,
}

/// Best point-wise F1 over every distinct score used as threshold; O(T log T).
pub fn best_f1_pointwise(scores: &[f64], labels: &[u8]) -> Option<BestF1> {
    let positives = labels.iter().filter(|&&l| l != 0).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut flagged) = (0f64, 0f64);
    let mut best: Option<BestF1> = None;
    for (k, &i) in idx.iter().enumerate() {
        tp += f64::from(labels[i] != 0);
        flagged += 1.0;
        let last_of_tie = idx.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            let (p, r) = (tp / flagged, tp / positives);
            let candidate = BestF1 {
                f1: f1(p, r),
                precision: p,
                recall: r,
                threshold: scores[i],
            };
            if best.is_none_or(|b| candidate.f1 > b.f1) {
                best = Some(candidate);
            }
        }
    }
    best
}

/// Best point-adjusted F1: at threshold τ a segment counts whole when its maximum score is ≥ τ;
/// normal points with score ≥ τ are false positives. O(T log T).
pub fn best_f1_adjusted(scores: &[f64], labels: &[u8]) -> Option<BestF1> {
    let segs = segments(labels);
    if segs.is_empty() {
        return None;
    }
    let positives: f64 = segs.iter().map(|s| s.len() as f64).sum();
    // Events: (score, true-positive gain, false-positive gain).
    let mut events: Vec<(f64, f64, f64)> = segs
        .iter()
        .map(|s| {
            (
                scores[s.clone()]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max),
                s.len() as f64,
                0.0,
            )
        })
        .collect();
    events.extend(
        scores
            .iter()
            .zip(labels)
            .filter(|(_, &l)| l == 0)
            .map(|(&s, _)| (s, 0.0, 1.0)),
    );
    events.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut best: Option<BestF1> = None;
    for k in 0..events.len() {
        tp += events[k].1;
        fp += events[k].2;
        let last_of_tie = events.get(k + 1).is_none_or(|e| e.0 != events[k].0);
        if last_of_tie && tp > 0.0 {
            let (p, r) = (tp / (tp + fp), tp / positives);
            let candidate = BestF1 {
                f1: f1(p, r),
                precision: p,
                recall: r,
                threshold: events[k].0,
            };
            if best.is_none_or(|b| candidate.f1 > b.f1) {
                best = Some(candidate);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::adjust::point_adjust;
    use crate::metrics::point::{predict, Confusion};

    /// Brute force over every threshold must agree with the sweep.
    #[test]
    fn sweeps_agree_with_brute_force() {
        let scores = [0.1, 0.9, 0.3, 0.3, 0.7, 0.2, 0.8, 0.05, 0.6, 0.4];
        let labels = [0, 1, 1, 1, 0, 0, 1, 1, 0, 0];
        let brute = |adjusted: bool| {
            scores
                .iter()
                .map(|&t| {
                    let pred = predict(&scores, t);
                    let pred = if adjusted {
                        point_adjust(&pred, &labels)
                    } else {
                        pred
                    };
                    Confusion::count(&pred, &labels).f1()
                })
                .fold(0.0, f64::max)
        };
        assert!((best_f1_pointwise(&scores, &labels).unwrap().f1 - brute(false)).abs() < 1e-12);
        assert!((best_f1_adjusted(&scores, &labels).unwrap().f1 - brute(true)).abs() < 1e-12);
    }
}
