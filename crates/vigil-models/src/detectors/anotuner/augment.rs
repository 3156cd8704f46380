//! False-negative augmentation (the paper's §3.3): operators report few missed anomalies, so
//! each one becomes several. The window is encoded, latent codes are drawn from its posterior
//! (z = μ + σ·ε, ε ~ N(0, I)), and each is decoded under the window's own STL condition: new
//! windows with the trend and season of the missed anomaly and the variation the model has
//! learnt around them. The paper generates until false negatives balance false positives
//! (a ratio near 1 worked best, its §4.4); `per_source` says how many each window gives.
//!
//! Deviations: every window holding a step labelled anomalous is a source (a missed anomaly,
//! or history TSAL labelled anomalous: the fit cannot tell them apart), and the balance is
//! against every window labelled normal in the fine-tune (false alarms and the history beside
//! them), not against false-alarm feedback alone. When anomalous windows already outnumber
//! normal ones, nothing is generated.

use super::condition::Decomposer;
use super::net::CvaeNet;
use super::training_set::Generated;
use crate::detector::MtsInput;
use crate::error::Result;
use crate::nn;

/// How many windows to generate from each of `anomalous` labelled windows so that, with them,
/// anomalous windows number `ratio` times the `normal` ones — at most `most` per window.
pub(super) fn per_source(anomalous: usize, normal: usize, ratio: f64, most: usize) -> usize {
    if anomalous == 0 {
        return 0;
    }
    let wanted = (ratio * normal as f64 / anomalous as f64).ceil() as usize;
    wanted.saturating_sub(1).min(most)
}

/// Windows generated from the windows of `input` starting at `sources` (each `window` steps),
/// `per_source` from each, source after source, each step labelled as its source's step; the
/// network is the fitted (not the training) one, and `seed` draws the codes. Decoded in chunks,
/// so that the encoder's and decoder's activations stay small whatever the count.
#[allow(clippy::too_many_arguments)]
pub(super) fn false_negatives(
    net: &CvaeNet,
    stl: &Decomposer,
    input: &MtsInput,
    window: usize,
    sources: &[usize],
    per_source: usize,
    std_epsilon: f64,
    seed: u64,
) -> Result<Generated> {
    const ROWS_PER_PASS: usize = 1024;
    let m = input.n_metrics;
    let d = window * m;
    let count = sources.len() * per_source;
    if count == 0 {
        return Ok(Generated::none());
    }
    let device = nn::device_of(net);
    let mut noise = nn::Noise::for_fit(seed);
    let mut generated = Generated {
        values: Vec::with_capacity(count * d),
        conditions: Vec::with_capacity(count * 2 * d),
        step_labels: Vec::with_capacity(count * window),
        weights: Vec::with_capacity(count),
        count,
    };
    let sources_per_pass = (ROWS_PER_PASS / per_source).max(1);
    for chunk in sources.chunks(sources_per_pass) {
        let mut values = Vec::with_capacity(chunk.len() * d);
        input.gather_windows(window, chunk, &mut values);
        let conditions = stl.conditions(&values, chunk.len(), m)?;
        // Each source repeated `per_source` times, so that one decoder pass makes them all.
        let repeat = |rows: &[f32], width: usize| -> Vec<f32> {
            rows.chunks_exact(width)
                .flat_map(|row| std::iter::repeat_n(row, per_source).flatten().copied())
                .collect()
        };
        let rows = chunk.len() * per_source;
        let (values, conditions) = (repeat(&values, d), repeat(&conditions, 2 * d));
        let x = nn::tensor2(values, rows, d, &device);
        let c = nn::tensor2(conditions.clone(), rows, 2 * d, &device);
        let (mean_z, std_z) = net.encode(x, c.clone(), std_epsilon);
        let eps = noise.standard_normal(mean_z.dims(), &device);
        let (mean_x, _) = net.decode_raw(mean_z + std_z * eps, c);
        generated.values.extend(nn::to_vec(mean_x));
        generated.conditions.extend(conditions);
        for &s in chunk {
            let labels = input
                .labels
                .map_or(vec![0; window], |l| l[s..s + window].to_vec());
            let weight = input.window_weight(s, window).unwrap_or(1.0);
            for _ in 0..per_source {
                generated.step_labels.extend_from_slice(&labels);
                generated.weights.push(weight);
            }
        }
    }
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_anomalies_are_multiplied_until_they_balance_the_false_alarms() {
        // 4 missed anomalies against 40 normal windows: 10 each at ratio 1 (the source + 9).
        assert_eq!(per_source(4, 40, 1.0, 64), 9);
        assert_eq!(per_source(4, 40, 1.0, 5), 5);
        assert_eq!(per_source(4, 40, 0.5, 64), 4);
        // Already balanced, or nothing to multiply.
        assert_eq!(per_source(40, 4, 1.0, 64), 0);
        assert_eq!(per_source(0, 40, 1.0, 64), 0);
    }
}
