//! The authors' anomaly criterion in its batch form, beside vigil's streaming one.
//!
//! The authors cut a test series into windows that do not overlap and, inside each, give every
//! step softmax over the window's steps of −temperature · discrepancy times its squared error.
//! A step's value then depends on the steps after it in its window, so this cannot be the
//! Detector's (streaming) score; it is here to measure whether vigil's streaming form
//! (`AnomalyTransformer::score`) ranks points differently from the paper's
//! (`bench/results/smd-anomaly-transformer-criterion.md`, made with
//! `examples/anomaly_transformer_in_window.rs`).

use super::{AnomalyTransformer, SCORE_CHUNK_WINDOWS};
use crate::detector::{MtsInput, Scores};
use crate::error::Result;
use crate::nn;
use crate::nn::discrepancy::association_discrepancy;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use vigil_core::window::check_window;

/// The first step of each window the authors' test loader cuts from `n` steps: consecutive
/// windows of `w` that do not overlap, then — where `n` is not a multiple of `w` (their loader
/// drops that tail) — one window ending at the last step, which gives only its new steps.
fn window_starts(n: usize, w: usize) -> Vec<usize> {
    let whole = n / w;
    (0..whole)
        .map(|i| i * w)
        .chain((!n.is_multiple_of(w)).then_some(n - w))
        .collect()
}

impl AnomalyTransformer {
    /// The authors' criterion over the whole of `input` (module docs): per-metric
    /// contributions, weight × squared error / metric count, adding up to it.
    pub fn in_window_criterion(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w, n) = (input.n_metrics, self.config.window, input.len());
        check_window(w, n, "series")?;
        let net = self.net.get(m)?;
        let device = nn::device_of(net);
        let fixed = net.fixed_encodings(w, &device);
        let starts = window_starts(n, w);
        let tiled_end = (n / w) * w;
        let mut contributions = vec![0f32; n * m];
        for chunk in starts.chunks(SCORE_CHUNK_WINDOWS) {
            let rows = chunk.len();
            let x: Vec<f32> = chunk
                .iter()
                .flat_map(|&s| &input.values[s * m..(s + w) * m])
                .copied()
                .collect();
            let windows = nn::tensor3(x, rows, w, m, &device);
            let out = net.forward(windows.clone(), &fixed);
            // Per step: the symmetric KL of its rows, mean over heads, summed over layers.
            let mut discrepancy = Tensor::<2>::zeros([rows, w], &device);
            for a in out.associations {
                let heads = a.series.dims()[1];
                let kl = association_discrepancy(a.series, a.prior).sum_dim(3);
                discrepancy =
                    discrepancy + kl.reshape([rows, heads, w]).mean_dim(1).reshape([rows, w]);
            }
            let weights = nn::to_vec(softmax(discrepancy.mul_scalar(-self.config.temperature), 1));
            let errors = nn::to_vec((out.reconstruction - windows).square());
            for (r, &s) in chunk.iter().enumerate() {
                for p in 0..w {
                    let t = s + p;
                    // The last window overlaps steps already given by the one before it.
                    if s + w > tiled_end && t < tiled_end {
                        continue;
                    }
                    let weight = weights[r * w + p];
                    for j in 0..m {
                        contributions[t * m + j] = weight * errors[(r * w + p) * m + j] / m as f32;
                    }
                }
            }
        }
        Ok(Scores::from_contributions(contributions, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{Detector, FitOptions};
    use crate::detectors::anomaly_transformer::AnomalyTransformerConfig;

    #[test]
    fn windows_tile_the_series_and_the_last_one_ends_at_its_end() {
        assert_eq!(window_starts(300, 100), vec![0, 100, 200]);
        assert_eq!(window_starts(250, 100), vec![0, 100, 150]);
        assert_eq!(window_starts(100, 100), vec![0]);
    }

    /// Inside each window the weights are a softmax over its steps, so a window's criterion
    /// is a weighted mean of its steps' errors: with equal weights (a temperature near zero),
    /// every step's value is its error over the window's step count.
    #[test]
    fn weights_share_out_each_window() {
        let (n, m) = (25, 2);
        let values: Vec<f32> = (0..n * m).map(|i| ((i * 7) % 11) as f32 / 11.0).collect();
        let input = MtsInput::new(&values, m);
        let config = |temperature| AnomalyTransformerConfig {
            window: 10,
            d_model: 8,
            heads: 2,
            layers: 1,
            feedforward: 8,
            epochs: 1,
            batch_size: 4,
            temperature,
            ..AnomalyTransformerConfig::default()
        };
        let mut hot = AnomalyTransformer::new(config(50.0)).unwrap();
        hot.fit(&input, &FitOptions::default()).unwrap();
        let weights = hot.save_weights().unwrap();
        let mut flat = AnomalyTransformer::new(config(1e-9)).unwrap();
        flat.load_weights(&weights, m).unwrap();

        let (hot, flat) = (
            hot.in_window_criterion(&input).unwrap(),
            flat.in_window_criterion(&input).unwrap(),
        );
        assert_eq!(hot.total.len(), n);
        // Windows [0, 10), [10, 20) and the last, [15, 25), which gives steps 20..25.
        for (steps, from) in [(0..10, 0), (10..20, 10), (20..25, 15)] {
            let hot_sum: f64 = steps.clone().map(|t| hot.total[t]).sum();
            let flat_sum: f64 = steps.clone().map(|t| flat.total[t]).sum();
            assert!(hot_sum > 0.0 && flat_sum > 0.0);
            if from == 0 || from == 10 {
                // A softmax's weights sum to one: the hot criterion is a weighted mean of the
                // same errors the flat one averages, so it lies within their range.
                let errors: Vec<f64> = steps.clone().map(|t| flat.total[t] * 10.0).collect();
                let (low, high) = errors
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(l, h), &e| (l.min(e), h.max(e)));
                assert!(
                    hot_sum >= low - 1e-6 && hot_sum <= high + 1e-6,
                    "{hot_sum} outside [{low}, {high}]"
                );
            }
        }
        for (t, total) in flat.total.iter().enumerate() {
            let parts: f64 = flat.per_metric[t * m..(t + 1) * m]
                .iter()
                .map(|&v| v as f64)
                .sum();
            assert!((parts - total).abs() < 1e-6);
        }
    }
}
