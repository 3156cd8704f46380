//! HitRate@P% of per-metric contributions against interpretation labels (OmniAnomaly §5.5,
//! InterFusion): at each labelled anomalous time step with a named cause set G, rank metrics by
//! contribution and count how many of G are among the top ⌊P% · |G|⌋; average over those steps.

use crate::series::Interpretation;

/// Mean HitRate@`percent`% over every time step covered by an interpretation label.
/// `contributions` is `T x M` row-major. `None` when no step is labelled.
pub fn hit_rate(
    contributions: &[f32],
    m: usize,
    interpretation: &[Interpretation],
    percent: f64,
) -> Option<f64> {
    let t_len = contributions.len() / m.max(1);
    let (mut total, mut count) = (0f64, 0usize);
    let mut order: Vec<usize> = Vec::with_capacity(m);
    for seg in interpretation {
        let truth = &seg.metrics;
        if truth.is_empty() {
            continue;
        }
        let top = ((percent / 100.0) * truth.len() as f64).floor() as usize;
        for t in seg.start..=seg.end.min(t_len.saturating_sub(1)) {
            let row = &contributions[t * m..(t + 1) * m];
            order.clear();
            order.extend(0..m);
            // Stable sort: equal contributions keep metric order, so results are deterministic.
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let hits = order.iter().take(top).filter(|j| truth.contains(j)).count();
            total += hits as f64 / truth.len() as f64;
            count += 1;
        }
    }
    (count > 0).then(|| total / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_top_ranked_causes() {
        // One step, metrics 0..4; cause set {1, 3}; ranking 3, 0, 1, 2.
        let c = [0.5, 0.2, 0.1, 0.9];
        let seg = [Interpretation {
            start: 0,
            end: 0,
            metrics: vec![1, 3],
        }];
        assert_eq!(hit_rate(&c, 4, &seg, 100.0), Some(0.5));
        assert_eq!(hit_rate(&c, 4, &seg, 150.0), Some(1.0));
    }
}
