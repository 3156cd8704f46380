//! Segments: an entity's baseline cut into pieces of the target length (the span a new entity
//! brings, e.g. one day), each metric standardised within its piece.
//!
//! Standardised, because clustering is about shape: entities of one kind differ in offset and
//! scale per metric (one server's CPU sits at 20%, another's at 60%), and Euclidean distance on
//! raw values would group them by level instead. The paper leaves this step implicit.

use crate::baseline::{self, BaselineConfig};

/// One segment, metric-major: `values[j * len + i]` is metric `j` at step `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Index of the entity it came from.
    pub entity: usize,
    /// First step of the segment in the entity's series.
    pub start: usize,
    /// Steps.
    pub len: usize,
    /// Metrics.
    pub metrics: usize,
    /// Standardised baseline values, metric-major.
    pub values: Vec<f32>,
}

impl Segment {
    /// Metric `j`'s values.
    pub fn metric(&self, j: usize) -> &[f32] {
        &self.values[j * self.len..(j + 1) * self.len]
    }
}

/// The baseline of a series (`steps x metrics`, row-major, raw values in f64) per metric,
/// metric-major.
pub fn baseline_metric_major(values: &[f64], metrics: usize, config: &BaselineConfig) -> Vec<f64> {
    let steps = values.len() / metrics.max(1);
    let mut out = Vec::with_capacity(values.len());
    let mut column = Vec::with_capacity(steps);
    for j in 0..metrics {
        column.clear();
        column.extend((0..steps).map(|t| values[t * metrics + j]));
        out.extend(baseline::extract(&column, config));
    }
    out
}

/// Cuts entity `entity`'s series (`steps x metrics`, row-major) into consecutive segments of
/// `len` steps (a shorter rest is left out), at most `most` of them counted from the end (the
/// newest data; `None`: all), each turned into its standardised baseline. The baseline is
/// extracted within each segment, so that a segment of a clustered entity and the short-term
/// data of a new one (which is all a new entity has) go through exactly the same steps, and
/// their distances to a centroid compare.
pub fn slice(
    entity: usize,
    values: &[f64],
    metrics: usize,
    len: usize,
    most: Option<usize>,
    config: &BaselineConfig,
) -> Vec<Segment> {
    let steps = values.len() / metrics.max(1);
    let starts = segment_starts(steps, len, most);
    if starts.len() == 0 {
        return Vec::new();
    }
    // A metric that barely moves within a segment must not be blown up to unit variance: its
    // standard deviation counts as at least a share of the metric's range over the series.
    let floors: Vec<f64> = (0..metrics)
        .map(|j| {
            let (lo, hi) = (0..steps).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
                let v = values[t * metrics + j];
                (lo.min(v), hi.max(v))
            });
            config.flat_fraction * (hi - lo)
        })
        .collect();
    starts
        .map(|start| {
            let span = &values[start * metrics..(start + len) * metrics];
            let values =
                standardise_with_floor(&baseline_metric_major(span, metrics, config), len, &floors);
            Segment {
                entity,
                start,
                len,
                metrics,
                values,
            }
        })
        .collect()
}

/// Where the segments of a series of `steps` steps start: consecutive whole segments of `len`
/// steps aligned to the series' end (so that the newest steps are always in one; a shorter
/// rest at the start is left out), at most `most` of them counted from the end.
pub fn segment_starts(
    steps: usize,
    len: usize,
    most: Option<usize>,
) -> impl ExactSizeIterator<Item = usize> {
    let count = steps.checked_div(len).unwrap_or(0);
    let first = count - most.unwrap_or(count).min(count);
    let offset = steps - count * len;
    (first..count).map(move |k| offset + k * len)
}

/// Standardises each run of `len` values (one metric) to mean 0 and standard deviation 1; a
/// constant metric becomes zeros.
pub fn standardise(values: &mut [f32], len: usize) {
    let floors = vec![0.0; values.len() / len.max(1)];
    let wide: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    values.copy_from_slice(&standardise_with_floor(&wide, len, &floors));
}

/// [`standardise`] on raw f64 values, dividing metric `j` by at least `floors[j]`; the
/// standardised values (near 1 in size) are returned as f32.
pub fn standardise_with_floor(values: &[f64], len: usize, floors: &[f64]) -> Vec<f32> {
    let mut out = Vec::with_capacity(values.len());
    for (metric, &floor) in values.chunks_exact(len.max(1)).zip(floors) {
        let n = metric.len() as f64;
        let mean = metric.iter().sum::<f64>() / n;
        let var = metric.iter().map(|&v| (v - mean).powi(2)).sum::<f64>() / n;
        let sd = var.sqrt().max(floor);
        out.extend(metric.iter().map(|&v| {
            if sd > 1e-12 {
                ((v - mean) / sd) as f32
            } else {
                0.0
            }
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_flat_within_a_segment_stays_small() {
        // Metric 0 jumps once between segments and only jitters within each; metric 1 swings.
        let values: Vec<f64> = (0..40)
            .flat_map(|t| {
                let level = if t < 20 { 0.0 } else { 10.0 };
                [level + 0.01 * f64::from(t % 3), (f64::from(t) * 0.7).sin()]
            })
            .collect();
        let config = BaselineConfig {
            drop_fraction: 0.0,
            smoothing_window: 1,
            flat_fraction: 0.05,
        };
        for s in slice(0, &values, 2, 20, None, &config) {
            let largest = |j: usize| s.metric(j).iter().fold(0.0f32, |a, v| a.max(v.abs()));
            assert!(largest(0) < 0.05, "jitter blown up to {}", largest(0));
            assert!(largest(1) > 1.0, "a real swing keeps unit scale");
        }
    }

    #[test]
    fn segments_are_the_newest_whole_spans_standardised() {
        // 2 metrics, 25 steps: segments of 10 are steps 5..15 and 15..25.
        let values: Vec<f64> = (0..25).flat_map(|t| [f64::from(t), 100.0]).collect();
        let config = BaselineConfig {
            drop_fraction: 0.0,
            smoothing_window: 1,
            flat_fraction: 0.0,
        };
        let all = slice(3, &values, 2, 10, None, &config);
        assert_eq!(all.iter().map(|s| s.start).collect::<Vec<_>>(), vec![5, 15]);
        let newest = slice(3, &values, 2, 10, Some(1), &config);
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].start, 15);
        let s = &newest[0];
        assert_eq!(s.entity, 3);
        let ramp = s.metric(0);
        assert!((ramp.iter().sum::<f32>()).abs() < 1e-4);
        assert!(ramp.windows(2).all(|w| w[1] > w[0]));
        assert!(s.metric(1).iter().all(|&v| v == 0.0), "a constant metric");
        assert!(slice(0, &values, 2, 30, None, &config).is_empty());
    }
}
