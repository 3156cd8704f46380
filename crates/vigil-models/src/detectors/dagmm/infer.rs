//! DAGMM's scoring on plain slices: the compression network's tanh layers, the two
//! reconstruction features and the sample energy under the training mixture, one chunk of
//! windows per core.
//!
//! Why not burn tensors: scoring runs a few small layers over tens of thousands of windows,
//! and through tensors every layer, tanh, feature and mixture term is its own allocating,
//! separately threaded pass — DAGMM scored at 0.75x PyTorch's points per second that way
//! (bench/results/speed.md). Here a chunk's windows go through everything while they are in
//! cache (the reasons of `nn::infer`, which this reuses). The weights and the factorised
//! mixture are copied from the trained module and `gmm::Prepared` at the start of a score
//! call; a test checks that both paths give the same scores.

use super::gmm::Prepared;
use super::{DagmmNet, DagmmScore, TanhStack};
use crate::detector::share_out;
use crate::nn::activations::tanh_in_place;
use crate::nn::infer::Dense;
use crate::nn::{self, Activation};
use std::ops::Range;

/// A [`TanhStack`]'s layers: tanh after every layer but the last.
struct SliceTanhStack {
    layers: Vec<Dense>,
}

impl SliceTanhStack {
    fn from_stack(stack: &TanhStack) -> SliceTanhStack {
        SliceTanhStack {
            layers: stack.layers.iter().map(Dense::from_linear).collect(),
        }
    }

    fn forward(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        let outputs = self.layers.last().map_or(0, Dense::outputs);
        self.forward_columns(x, rows, 0..outputs, out)
    }

    /// The output columns `cols` only (the last layer computes just those).
    fn forward_columns(&self, x: &[f32], rows: usize, cols: Range<usize>, out: &mut Vec<f32>) {
        let (last, hidden) = self.layers.split_last().expect("a stack has layers");
        let mut input = x.to_vec();
        for layer in hidden {
            layer.forward(&input, rows, Activation::Linear, out);
            tanh_in_place(out);
            std::mem::swap(&mut input, out);
        }
        last.forward_columns(&input, rows, cols, Activation::Linear, out);
    }
}

/// The training mixture, factorised once: per component ln φ, μ, L⁻¹ (lower, row-major) and
/// ln|2πΣ|.
struct SliceMixture {
    components: usize,
    k: usize,
    log_weights: Vec<f32>,
    means: Vec<f32>,
    inverse_factors: Vec<f32>,
    log_dets: Vec<f32>,
}

impl SliceMixture {
    fn from_prepared(prepared: &Prepared) -> SliceMixture {
        let [components, k] = prepared.means.dims();
        SliceMixture {
            components,
            k,
            log_weights: nn::to_vec(prepared.log_weights.clone()),
            means: nn::to_vec(prepared.means.clone()),
            inverse_factors: nn::to_vec(prepared.inverse_factors.clone()),
            log_dets: nn::to_vec(prepared.log_dets.clone()),
        }
    }

    /// −ln Σ_c φ_c N(z; μ_c, Σ_c) of one point, as `gmm::energy` computes it.
    fn energy(&self, z: &[f32], log_terms: &mut [f32], centred: &mut [f32]) {
        let k = self.k;
        for (c, log_term) in log_terms.iter_mut().enumerate() {
            for (j, d) in centred.iter_mut().enumerate() {
                *d = z[j] - self.means[c * k + j];
            }
            let factor = &self.inverse_factors[c * k * k..(c + 1) * k * k];
            // ‖L⁻¹(z − μ)‖²; L⁻¹ is lower-triangular, so row j needs the first j + 1 entries.
            let mahalanobis: f32 = (0..k)
                .map(|j| {
                    let y: f32 = (0..=j).map(|l| factor[j * k + l] * centred[l]).sum();
                    y * y
                })
                .sum();
            *log_term = -0.5 * (mahalanobis + self.log_dets[c]) + self.log_weights[c];
        }
    }
}

/// Everything a score call needs, copied once from the trained network and mixture.
pub(super) struct SliceScorer {
    encoder: SliceTanhStack,
    decoder: SliceTanhStack,
    mixture: SliceMixture,
    score: DagmmScore,
    window: usize,
    metrics: usize,
}

impl SliceScorer {
    pub(super) fn new(
        net: &DagmmNet,
        prepared: &Prepared,
        score: DagmmScore,
        window: usize,
        metrics: usize,
    ) -> SliceScorer {
        SliceScorer {
            encoder: SliceTanhStack::from_stack(&net.encoder),
            decoder: SliceTanhStack::from_stack(&net.decoder),
            mixture: SliceMixture::from_prepared(prepared),
            score,
            window,
            metrics,
        }
    }

    /// Per-metric contributions of `rows` windows `x` (`rows x window·metrics`) into `out`
    /// (`rows x metrics`), as `Dagmm::score` defines them.
    pub(super) fn score_chunk(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        let (w, m) = (self.window, self.metrics);
        let d = w * m;
        let (mut code, mut reconstruction) = (Vec::new(), Vec::new());
        self.encoder.forward(x, rows, &mut code);
        if self.score == DagmmScore::Reconstruction {
            // Only the newest step is scored: the decoder's last layer computes just its values.
            let newest = (w - 1) * m;
            self.decoder
                .forward_columns(&code, rows, newest..d, &mut reconstruction);
            for (i, (row, r)) in out
                .chunks_exact_mut(m)
                .zip(reconstruction.chunks_exact(m))
                .enumerate()
            {
                let xi = &x[i * d + newest..(i + 1) * d];
                for ((o, &a), &b) in row.iter_mut().zip(xi).zip(r) {
                    *o = (a - b) * (a - b);
                }
            }
            return;
        }
        self.decoder.forward(&code, rows, &mut reconstruction);
        let latent = code.len() / rows;
        let mixture = &self.mixture;
        let mut z = vec![0.0f32; latent + 2];
        let (mut log_terms, mut centred) = (vec![0.0; mixture.components], vec![0.0; mixture.k]);
        for i in 0..rows {
            let (xi, ri) = (&x[i * d..(i + 1) * d], &reconstruction[i * d..(i + 1) * d]);
            let row = &mut out[i * m..(i + 1) * m];
            // Squared error per metric, summed over the window's steps, and the features.
            row.fill(0.0);
            let (mut error, mut x_squares, mut r_squares, mut dot) = (0.0f32, 0.0, 0.0, 0.0);
            for (t, (&a, &b)) in xi.iter().zip(ri).enumerate() {
                let e = (a - b) * (a - b);
                row[t % m] += e;
                error += e;
                x_squares += a * a;
                r_squares += b * b;
                dot += a * b;
            }
            // The same small constants as `DagmmNet::compress`.
            let x_norm = (x_squares + 1e-10).sqrt();
            z[..latent].copy_from_slice(&code[i * latent..(i + 1) * latent]);
            z[latent] = (error + 1e-10).sqrt() / (x_norm + 1e-6);
            z[latent + 1] = dot / (x_norm * (r_squares + 1e-10).sqrt() + 1e-6);
            mixture.energy(&z, &mut log_terms, &mut centred);
            let top = log_terms.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = log_terms.iter().map(|&t| (t - top).exp()).sum();
            share_out(-(sum.ln() + top), row);
        }
    }
}
