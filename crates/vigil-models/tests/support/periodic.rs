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
