//! Point adjustment (PA) and PA%K (Kim et al., AAAI 2022).
//!
//! PA marks a whole labelled segment as detected when any of its points is flagged; it inflates
//! F1 so much that random scores look state-of-the-art. PA%K adjusts a segment only when more
//! than K% of its points are flagged (tadpak's rule: `flagged > K/100 · len`); K = 0 is PA,
//! K = 100 is plain point-wise scoring.

use crate::metrics::point::Confusion;

/// Maximal runs of 1s in `labels`, as half-open ranges.
pub fn segments(labels: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().enumerate() {
        match (l != 0, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..labels.len());
    }
    out
}

/// Predictions after PA%K: a segment with more than `k_percent`% of its points flagged is flagged whole.
pub fn adjust_pa_k(pred: &[u8], labels: &[u8], k_percent: f64) -> Vec<u8> {
    let mut out = pred.to_vec();
    for seg in segments(labels) {
        let flagged = pred[seg.clone()].iter().filter(|&&p| p != 0).count() as f64;
        if flagged > k_percent / 100.0 * seg.len() as f64 {
            out[seg].fill(1);
        }
    }
    out
}

/// Classic point adjustment (PA%K with K = 0).
pub fn point_adjust(pred: &[u8], labels: &[u8]) -> Vec<u8> {
    adjust_pa_k(pred, labels, 0.0)
}

/// F1 under PA%K for K = 0, 1, ..., 100, and the area under that curve (trapezoid rule, K scaled
/// to [0, 1]), as Kim et al. recommend reporting.
pub fn pa_k_curve(pred: &[u8], labels: &[u8]) -> (Vec<f64>, f64) {
    let curve: Vec<f64> = (0..=100)
        .map(|k| Confusion::count(&adjust_pa_k(pred, labels, k as f64), labels).f1())
        .collect();
    let area = curve.windows(2).map(|w| 0.5 * (w[0] + w[1]) / 100.0).sum();
    (curve, area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_adjustment() {
        let labels = [0, 1, 1, 1, 1, 0, 1, 1];
        assert_eq!(segments(&labels), vec![1..5, 6..8]);
        let pred = [1, 0, 1, 0, 0, 0, 0, 0];
        assert_eq!(point_adjust(&pred, &labels), vec![1, 1, 1, 1, 1, 0, 0, 0]);
        // 1 of 4 points = 25%: adjusted for K < 25, not for K = 25.
        assert_eq!(adjust_pa_k(&pred, &labels, 24.0)[3], 1);
        assert_eq!(adjust_pa_k(&pred, &labels, 25.0)[3], 0);
    }
}
