//! InterFusion's scoring: MCMC imputation of each window's newest step, then the negative
//! log-likelihood of the observed newest step per metric.
//!
//! The authors' chain (`mcmc_reconstruct`, 10 iterations): treat the newest step as missing,
//! draw z2 and z1 from q given the current window, draw x from p, put the drawn newest step into
//! the window, repeat. An anomalous point is thereby replaced by what the model expects there
//! before the window is embedded, and cannot pull its own reconstruction towards itself.
//!
//! Scores must not depend on how the series is cut into batches or streamed (the Detector
//! contract), so the chain's randomness is a function of the window alone: each window's noise
//! comes from a generator seeded with a hash of its values. The final embedding follows the
//! posterior means (zero noise); the authors average 100 posterior draws there, which
//! approximates the same point at 100 times the cost.

use super::net::{negative_log_likelihood, InterFusionNet};
use super::temporal::compressed_length;
use super::InterFusionConfig;
use crate::detector::MtsInput;
use crate::nn::{self, infer::par_rows};
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use vigil_core::window::windows_ending_at;

/// Windows per scoring task (the authors' test batch: 50).
const SCORE_CHUNK_WINDOWS: usize = 50;

/// A generator seeded by the window's values. FNV-1a by hand, because std's hasher is not
/// guaranteed to hash the same way across Rust releases, and a saved model must score a series
/// the same way whatever vigil binary loads it.
fn window_rng(window: &[f32]) -> ChaCha8Rng {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in window.iter().flat_map(|v| v.to_bits().to_le_bytes()) {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(hash)
}

fn normals(rng: &mut ChaCha8Rng, n: usize, out: &mut Vec<f32>) {
    out.extend((0..n).map(|_| -> f32 { StandardNormal.sample(rng) }));
}

/// The newest step of each `batch × steps × metrics` tensor, `batch × metrics`.
fn newest(t: Tensor<3>) -> Tensor<2> {
    let [batch, steps, metrics] = t.dims();
    t.narrow(1, steps - 1, 1).reshape([batch, metrics])
}

/// Each point's score contributions (`len × metrics`, row-major): the negative log-likelihood
/// of its values under the model given its window with the newest step imputed.
pub fn newest_step_nll(net: &InterFusionNet, input: &MtsInput, c: &InterFusionConfig) -> Vec<f32> {
    let (m, w, l) = (input.n_metrics, c.window, c.latent);
    let compressed = compressed_length(w);
    let device = nn::device_of(net);
    par_rows(input.len(), m, SCORE_CHUNK_WINDOWS, |rows, out| {
        let n = rows.len();
        let mut observed = Vec::new();
        windows_ending_at(input.values, m, w, rows, &mut observed);
        let mut generators: Vec<ChaCha8Rng> = observed.chunks(w * m).map(window_rng).collect();
        let mut current = observed.clone();
        let (mut z2_noise, mut z1_noise, mut x_noise) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..c.mcmc_iterations {
            z2_noise.clear();
            z1_noise.clear();
            x_noise.clear();
            for rng in &mut generators {
                normals(rng, m * compressed, &mut z2_noise);
                normals(rng, w * l, &mut z1_noise);
                normals(rng, m, &mut x_noise);
            }
            let (mean, log_std) = net.newest_step(
                nn::tensor3(current.clone(), n, w, m, &device),
                nn::tensor3(z2_noise.clone(), n, m, compressed, &device),
                nn::tensor3(z1_noise.clone(), n, w, l, &device),
            );
            let std = log_std.clamp(-5.0, 2.0).exp();
            let x_noise = nn::tensor2(x_noise.clone(), n, m, &device);
            let drawn = nn::to_vec(mean + std * x_noise);
            for (r, values) in drawn.chunks_exact(m).enumerate() {
                let at = (r * w + w - 1) * m;
                current[at..at + m].copy_from_slice(values);
            }
        }
        let (mean, log_std) = net.newest_step(
            nn::tensor3(current, n, w, m, &device),
            Tensor::zeros([n, m, compressed], &device),
            Tensor::zeros([n, w, l], &device),
        );
        let x = newest(nn::tensor3(observed, n, w, m, &device));
        let nll = negative_log_likelihood(x, mean, log_std);
        out.copy_from_slice(&nn::to_vec(nll));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_seeds_the_same_chain_wherever_it_is_scored() {
        let a = [0.5f32, -1.0, 2.25];
        let mut first = window_rng(&a);
        let mut again = window_rng(&a.clone());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        normals(&mut first, 4, &mut x);
        normals(&mut again, 4, &mut y);
        assert_eq!(x, y);
        let mut other = window_rng(&[0.5f32, -1.0, 2.5]);
        let mut z = Vec::new();
        normals(&mut other, 4, &mut z);
        assert_ne!(x, z);
    }
}
