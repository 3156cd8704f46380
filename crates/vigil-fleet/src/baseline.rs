//! Baseline extraction (OmniTransfer §III-B): the normal pattern of a segment, without the
//! anomalies and noise that would otherwise split one shape into several clusters. Per metric:
//! drop the `drop_fraction` of points that deviate most from the metric's mean, fill them by
//! linear interpolation between their kept neighbours, then smooth with a moving average.
//!
//! Both the filling and the average treat the segment as circular (the step after the last is
//! the first). Phase alignment compares segments under circular shifts, and a baseline that is
//! circular commutes with them: a shifted copy of a segment has the shifted baseline. A
//! trailing average instead leaves a warm-up at the segment's start that does not move with
//! the shift (it split a generated fleet's archetypes into extra clusters).

use serde::{Deserialize, Serialize};

/// How baselines are extracted (the paper's values by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Share of points, per metric, treated as extreme and replaced (paper: 5%).
    pub drop_fraction: f64,
    /// Moving-average window in steps (paper: 12).
    pub smoothing_window: usize,
    /// When a segment is standardised, a metric's standard deviation counts as at least this
    /// share of its range over the whole series given (not in the paper; docs/fleet.md).
    pub flat_fraction: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            drop_fraction: 0.05,
            smoothing_window: 12,
            flat_fraction: 0.05,
        }
    }
}

/// The baseline of one metric's values.
pub fn extract(values: &[f64], config: &BaselineConfig) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    // The points furthest from the mean, by rank (ties broken by position, so that the result
    // does not depend on the sort's stability).
    let dropped = ((n as f64 * config.drop_fraction).floor() as usize).min(n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    let deviation = |i: usize| (values[i] - mean).abs();
    order.sort_by(|&a, &b| deviation(b).total_cmp(&deviation(a)).then(a.cmp(&b)));
    let mut kept = vec![true; n];
    for &i in &order[..dropped] {
        kept[i] = false;
    }
    let filled = interpolate(values, &kept);
    moving_average(&filled, config.smoothing_window)
}

/// Replaces every value not `kept` by linear interpolation between the nearest kept values on
/// either side, around the circle.
fn interpolate(values: &[f64], kept: &[bool]) -> Vec<f64> {
    let n = values.len();
    let mut out = values.to_vec();
    let Some(anchor) = (0..n).find(|&i| kept[i]) else {
        return out; // nothing kept: nothing to interpolate from
    };
    // Walk the circle once from a kept point; each gap lies between two kept points.
    let mut previous = anchor;
    for step in 1..=n {
        let i = (anchor + step) % n;
        if !kept[i] {
            continue;
        }
        let gap = (i + n - previous) % n;
        let gap = if gap == 0 { n } else { gap };
        for k in 1..gap {
            let w = k as f64 / gap as f64;
            out[(previous + k) % n] = values[previous] + w * (values[i] - values[previous]);
        }
        previous = i;
    }
    out
}

/// Centred moving average over `window` steps, around the circle.
fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let n = values.len();
    let window = window.clamp(1, n.max(1));
    let back = window / 2;
    let mut sum: f64 = (0..window).map(|k| values[(k + n - back) % n]).sum();
    (0..n)
        .map(|i| {
            let mean = sum / window as f64;
            // Slide: drop the oldest, add the next.
            sum -= values[(i + n - back) % n];
            sum += values[(i + window - back) % n];
            mean
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_are_replaced_by_their_neighbours_line() {
        let mut values: Vec<f64> = (0..100).map(|i| i as f64 * 0.1).collect();
        values[40] = 500.0; // an anomaly
        let config = BaselineConfig {
            drop_fraction: 0.01,
            smoothing_window: 1,
            flat_fraction: 0.0,
        };
        let base = extract(&values, &config);
        assert!((base[40] - 4.0).abs() < 1e-5, "{}", base[40]);
        assert_eq!(base[39], values[39]);
    }

    #[test]
    fn interpolation_fills_gaps_around_the_circle() {
        let values = [9.0, 1.0, 9.0, 9.0, 4.0, 9.0];
        let kept = [false, true, false, false, true, false];
        // 4 → 1 across the wrap: steps 5 and 0 lie at 1/3 and 2/3 of the way.
        assert_eq!(
            interpolate(&values, &kept),
            vec![2.0, 1.0, 2.0, 3.0, 4.0, 3.0]
        );
    }

    #[test]
    fn the_moving_average_is_centred_and_circular() {
        let out = moving_average(&[3.0, 6.0, 9.0, 12.0], 3);
        assert_eq!(out, vec![7.0, 6.0, 9.0, 8.0]);
    }

    #[test]
    fn a_shifted_segment_has_the_shifted_baseline() {
        let values: Vec<f64> = (0..60)
            .map(|i| (i as f64 * 0.3).sin() + if i == 17 { 4.0 } else { 0.0 })
            .collect();
        let config = BaselineConfig::default();
        let base = extract(&values, &config);
        for shift in [1, 13, 59] {
            let shifted: Vec<f64> = (0..60).map(|i| values[(i + 60 - shift) % 60]).collect();
            let shifted_base = extract(&shifted, &config);
            for i in 0..60 {
                assert!((shifted_base[i] - base[(i + 60 - shift) % 60]).abs() < 1e-5);
            }
        }
    }
}
