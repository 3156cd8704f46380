//! Baseline extraction (OmniTransfer §III-B): the normal pattern of a series, without the
//! anomalies and noise that would otherwise split one shape into several clusters. Per metric:
//! drop the `drop_fraction` of points that deviate most from the metric's mean, fill them by
//! linear interpolation between their kept neighbours, then smooth with a moving average.

use serde::{Deserialize, Serialize};

/// How baselines are extracted (the paper's values by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Share of points, per metric, treated as extreme and replaced (paper: 5%).
    pub drop_fraction: f64,
    /// Moving-average window in steps (paper: 12).
    pub smoothing_window: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            drop_fraction: 0.05,
            smoothing_window: 12,
        }
    }
}

/// The baseline of one metric's values.
pub fn extract(values: &[f32], config: &BaselineConfig) -> Vec<f32> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    // The points furthest from the mean, by rank (ties broken by position, so that the result
    // does not depend on the sort's stability).
    let dropped = ((n as f64 * config.drop_fraction).floor() as usize).min(n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    let deviation = |i: usize| (values[i] as f64 - mean).abs();
    order.sort_by(|&a, &b| deviation(b).total_cmp(&deviation(a)).then(a.cmp(&b)));
    let mut kept = vec![true; n];
    for &i in &order[..dropped] {
        kept[i] = false;
    }
    let filled = interpolate(values, &kept);
    moving_average(&filled, config.smoothing_window)
}

/// Replaces every value not `kept` by linear interpolation between the nearest kept values on
/// either side (the nearest one alone at the ends).
fn interpolate(values: &[f32], kept: &[bool]) -> Vec<f32> {
    let n = values.len();
    let mut out = values.to_vec();
    let mut previous: Option<usize> = None;
    let mut i = 0;
    while i < n {
        if kept[i] {
            previous = Some(i);
            i += 1;
            continue;
        }
        let gap_end = (i..n).find(|&j| kept[j]);
        for (k, slot) in out
            .iter_mut()
            .enumerate()
            .take(gap_end.unwrap_or(n))
            .skip(i)
        {
            *slot = match (previous, gap_end) {
                (Some(a), Some(b)) => {
                    let w = (k - a) as f32 / (b - a) as f32;
                    values[a] + w * (values[b] - values[a])
                }
                (Some(a), None) => values[a],
                (None, Some(b)) => values[b],
                (None, None) => values[k],
            };
        }
        i = gap_end.unwrap_or(n);
    }
    out
}

/// Trailing moving average over `window` steps (fewer at the start, where fewer exist).
fn moving_average(values: &[f32], window: usize) -> Vec<f32> {
    let window = window.max(1);
    let mut sum = 0.0f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            sum += v as f64;
            if i >= window {
                sum -= values[i - window] as f64;
            }
            (sum / (i + 1).min(window) as f64) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_are_replaced_by_their_neighbours_line() {
        let mut values: Vec<f32> = (0..100).map(|i| i as f32 * 0.1).collect();
        values[40] = 500.0; // an anomaly
        let config = BaselineConfig {
            drop_fraction: 0.01,
            smoothing_window: 1,
        };
        let base = extract(&values, &config);
        assert!((base[40] - 4.0).abs() < 1e-5, "{}", base[40]);
        assert_eq!(base[39], values[39]);
    }

    #[test]
    fn interpolation_fills_gaps_and_ends() {
        let values = [9.0, 1.0, 9.0, 9.0, 4.0, 9.0];
        let kept = [false, true, false, false, true, false];
        assert_eq!(
            interpolate(&values, &kept),
            vec![1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
        );
    }

    #[test]
    fn the_moving_average_trails() {
        let out = moving_average(&[3.0, 6.0, 9.0, 12.0], 2);
        assert_eq!(out, vec![3.0, 4.5, 7.5, 10.5]);
    }
}
