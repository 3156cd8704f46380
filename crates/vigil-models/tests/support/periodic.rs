//! The small periodic series the learning tests train on, shared with
//! `examples/usad_small_series.rs` (which includes this file by path) and built the same way by
//! `bench/reference/usad_small_series.py`, so that all three see one series.

/// Three correlated sine metrics of period 50 in [0, 1], `n` steps, row-major.
pub fn periodic(n: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|t| {
            let x = t as f32 * std::f32::consts::TAU / 50.0;
            [
                0.5 + 0.4 * x.sin(),
                0.5 + 0.4 * x.cos(),
                0.5 + 0.2 * (x.sin() + x.cos()) / 1.5,
            ]
        })
        .collect()
}

/// Test steps of [`periodic_with_burst`] that are inverted.
pub const BURST: std::ops::Range<usize> = 200..205;
/// Normal test steps the burst is compared with (far from the series' start and the burst).
pub const NORMAL: std::ops::Range<usize> = 50..150;

/// [`periodic`] with the steps in [`BURST`] inverted (1 − v): a short anomaly to rank.
pub fn periodic_with_burst(n: usize) -> Vec<f32> {
    let mut series = periodic(n);
    for v in &mut series[BURST.start * 3..BURST.end * 3] {
        *v = 1.0 - *v;
    }
    series
}

/// The mean of `scores` over `steps`.
pub fn mean_over(scores: &[f64], steps: std::ops::Range<usize>) -> f64 {
    let n = steps.len() as f64;
    scores[steps].iter().sum::<f64>() / n
}
