//! VUS-ROC and VUS-PR: volumes under range-aware ROC and PR surfaces (Paparrizos et al., VLDB 2022).
//!
//! We follow the original definition as the authors' `vus` package (and TSB-AD 1.5, which ranks
//! VUS-PR most reliable) compute it, so our numbers compare with theirs:
//! - for each buffer length `w = 0..=max_window`, every labelled segment gets slopes of
//!   `w / 2` points on each side with weight `sqrt(1 − d / w)` at distance `d` (capped at 1 where
//!   slopes overlap), and segments whose buffered ranges overlap merge;
//! - thresholds are the sorted scores at `thresholds` evenly spaced ranks; a point is predicted
//!   when its score is at least the threshold;
//! - TP counts predicted labelled points plus predicted slope weight; recall is TP over
//!   `P + slope/2` (capped at 1) times the share of buffered segments holding a prediction; FPR
//!   divides the remaining predictions by `n − (P + slope/2)`; precision is TP over predictions;
//! - ROC area by trapezoids from (0, 0) to (1, 1); PR area as Σ ΔTPR · precision; the volume is the
//!   mean area over buffer lengths.
//!
//! The package recomputes every threshold on the whole series (O(w · thresholds · n)). Only
//! labelled points, slopes and segments matter, so here each threshold costs O(slope points +
//! segments): a 28k-point SMD machine takes milliseconds. Checked against the package in
//! `tests/goldens.rs`.

use super::adjust::segments;

/// The defaults of TSB-AD's `get_metrics`: buffers up to 100 points, 250 thresholds.
pub const DEFAULT_MAX_WINDOW: usize = 100;
/// See [`DEFAULT_MAX_WINDOW`].
pub const DEFAULT_THRESHOLDS: usize = 250;

/// VUS-ROC and VUS-PR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vus {
    pub roc: f64,
    pub pr: f64,
}

/// VUS with buffers `0..=max_window` and `thresholds` thresholds; `None` without labelled points.
pub fn vus(scores: &[f64], labels: &[u8], max_window: usize, thresholds: usize) -> Option<Vus> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "scores and labels differ in length"
    );
    let n = scores.len();
    let segs = segments(labels);
    if segs.is_empty() || n == 0 || thresholds == 0 {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l != 0).count() as f64;
    let mut sorted: Vec<f64> = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a)); // descending
                                           // numpy's linspace(0, n − 1, k).astype(int): evenly spaced ranks, truncated.
    let cuts: Vec<f64> = (0..thresholds)
        .map(|k| {
            let rank = if thresholds == 1 {
                0.0
            } else {
                (n - 1) as f64 * k as f64 / (thresholds - 1) as f64
            };
            sorted[rank as usize]
        })
        .collect();
    let at_least = |t: f64| sorted.partition_point(|&s| s >= t) as f64;
    let predicted: Vec<f64> = cuts.iter().map(|&t| at_least(t)).collect();
    let mut labelled_scores: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l != 0)
        .map(|(&s, _)| s)
        .collect();
    labelled_scores.sort_by(|a, b| b.total_cmp(a));
    let hits: Vec<f64> = cuts
        .iter()
        .map(|&t| labelled_scores.partition_point(|&s| s >= t) as f64)
        .collect();

    let (mut roc_sum, mut pr_sum) = (0.0, 0.0);
    for w in 0..=max_window {
        let half = w / 2;
        // Slope weights on unlabelled points, capped at 1.
        let mut slope: std::collections::BTreeMap<usize, f64> = Default::default();
        for seg in &segs {
            for d in 1..=half {
                let weight = (1.0 - d as f64 / w as f64).sqrt();
                if seg.end - 1 + d < n {
                    *slope.entry(seg.end - 1 + d).or_default() += weight;
                }
                if seg.start >= d {
                    *slope.entry(seg.start - d).or_default() += weight;
                }
            }
        }
        let slope: Vec<(f64, f64)> = slope
            .into_iter()
            .filter(|(i, _)| labels[*i] == 0)
            .map(|(i, v)| (scores[i], v.min(1.0)))
            .collect();
        // Buffered segments, merged where they overlap; each keeps its highest score.
        let mut buffered: Vec<(usize, usize)> = Vec::new();
        for seg in &segs {
            let (start, end) = (seg.start.saturating_sub(half), seg.end - 1 + half);
            match buffered.last_mut() {
                Some(last) if last.1 >= start => last.1 = end,
                _ => buffered.push((start, end)),
            }
        }
        let peaks: Vec<f64> = buffered
            .iter()
            .map(|&(s, e)| {
                scores[s..=e.min(n - 1)]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();

        let mut curve = vec![(0.0f64, 0.0f64)]; // (TPR, FPR)
        let mut precision = Vec::with_capacity(thresholds);
        for (k, &t) in cuts.iter().enumerate() {
            let slope_hit: f64 = slope.iter().filter(|(s, _)| *s >= t).map(|(_, v)| v).sum();
            let tp = hits[k] + slope_hit;
            let p_new = positives + slope_hit / 2.0;
            let recall = (tp / p_new).min(1.0);
            let existence = peaks.iter().filter(|&&p| p >= t).count() as f64 / peaks.len() as f64;
            let fpr = (predicted[k] - tp) / (n as f64 - p_new);
            curve.push((recall * existence, fpr));
            precision.push(tp / predicted[k]);
        }
        curve.push((1.0, 1.0));
        roc_sum += curve
            .windows(2)
            .map(|p| (p[1].1 - p[0].1) * (p[1].0 + p[0].0) / 2.0)
            .sum::<f64>();
        pr_sum += (1..=thresholds)
            .map(|k| (curve[k].0 - curve[k - 1].0) * precision[k - 1])
            .sum::<f64>();
    }
    let volumes = (max_window + 1) as f64;
    Some(Vus {
        roc: roc_sum / volumes,
        pr: pr_sum / volumes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_that_marks_the_anomaly_beats_noise() {
        let mut labels = vec![0u8; 500];
        labels[200..220].fill(1);
        let good: Vec<f64> = (0..500)
            .map(|i| if (200..220).contains(&i) { 1.0 } else { 0.0 })
            .collect();
        let noise: Vec<f64> = (0..500).map(|i| ((i * 7919) % 101) as f64).collect();
        let g = vus(&good, &labels, 20, 50).unwrap();
        let r = vus(&noise, &labels, 20, 50).unwrap();
        assert!(g.roc > 0.9 && g.pr > 0.5, "{g:?}");
        assert!(r.roc < 0.7 && r.pr < 0.2, "{r:?}");
    }

    #[test]
    fn no_labels_no_volume() {
        assert_eq!(vus(&[1.0, 2.0], &[0, 0], 10, 10), None);
    }
}
