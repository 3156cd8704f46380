//! TranAD's scoring pass on slices ([`crate::nn::infer`]): the computation of
//! [`TranadNet::forward`] without dropout, for a chunk of windows on one core. The decoders see
//! one target token, so their self-attention reduces to the value and output projections.

use super::{DecoderLayer, EncoderLayer, FeedForward, TranadNet};
use crate::nn::infer::{activate, AttentionWeights, Dense};
use crate::nn::Activation;
use std::ops::Range;
use vigil_core::window::windows_ending_at;

/// Windows per task when scoring: each is `window` rows of the encoder, so 32 windows of SMD's
/// 10 x 76 keep a task's activations in L2 (16-64 measured within noise; 32 was best).
pub(super) const CHUNK_WINDOWS: usize = 64;

struct FeedForwardKernels {
    inner: Dense,
    outer: Dense,
    negative_slope: f32,
}

impl FeedForwardKernels {
    fn new(ff: &FeedForward) -> Self {
        FeedForwardKernels {
            inner: Dense::from_linear(&ff.inner),
            outer: Dense::from_linear(&ff.outer),
            negative_slope: ff.negative_slope as f32,
        }
    }

    /// `out = x + outer(leaky_relu(inner(x)))`.
    fn forward_residual(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        let mut hidden = Vec::new();
        self.inner.forward(x, rows, Activation::Linear, &mut hidden);
        if self.negative_slope != 1.0 {
            let slope = self.negative_slope;
            hidden
                .iter_mut()
                .for_each(|h| *h = if *h >= 0.0 { *h } else { *h * slope });
        }
        self.outer.forward_residual(&hidden, rows, x, out);
    }
}

struct EncoderKernels {
    self_attention: AttentionWeights,
    feedforward: FeedForwardKernels,
}

impl EncoderKernels {
    fn new(layer: &EncoderLayer) -> Self {
        EncoderKernels {
            self_attention: layer.self_attention.inference_weights(),
            feedforward: FeedForwardKernels::new(&layer.feedforward),
        }
    }

    /// The memory of `n` sequences of `len` rows each.
    fn forward(&self, x: &[f32], n: usize, len: usize, out: &mut Vec<f32>) {
        let mut attended = Vec::new();
        self.self_attention
            .forward_residual(x, len, x, len, n, x, &mut attended);
        self.feedforward.forward_residual(&attended, n * len, out);
    }
}

struct DecoderKernels {
    self_attention: AttentionWeights,
    cross_attention: AttentionWeights,
    feedforward: FeedForwardKernels,
}

impl DecoderKernels {
    fn new(layer: &DecoderLayer) -> Self {
        DecoderKernels {
            self_attention: layer.self_attention.inference_weights(),
            cross_attention: layer.cross_attention.inference_weights(),
            feedforward: FeedForwardKernels::new(&layer.feedforward),
        }
    }

    /// One target token per sequence (`n` rows) attending over `n` memories of `len` rows.
    fn forward(&self, target: &[f32], memory: &[f32], n: usize, len: usize, out: &mut Vec<f32>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.self_attention
            .forward_residual(target, 1, target, 1, n, target, &mut a);
        self.cross_attention
            .forward_residual(&a, 1, memory, len, n, &a, &mut b);
        self.feedforward.forward_residual(&b, n, out);
    }
}

/// A trained TranAD network's weights, for scoring.
pub(super) struct TranadKernels {
    n_metrics: usize,
    window: usize,
    /// The positional encoding, `window x d_model`.
    positions: Vec<f32>,
    encoder: EncoderKernels,
    decoder1: DecoderKernels,
    decoder2: DecoderKernels,
    output: Dense,
}

impl TranadKernels {
    pub(super) fn new(net: &TranadNet) -> Self {
        let [_, window, _] = net.positions.dims();
        TranadKernels {
            n_metrics: net.n_metrics,
            window,
            positions: crate::nn::to_vec(net.positions.clone()),
            encoder: EncoderKernels::new(&net.encoder),
            decoder1: DecoderKernels::new(&net.decoder1),
            decoder2: DecoderKernels::new(&net.decoder2),
            output: Dense::from_linear(&net.output),
        }
    }

    /// The encoder input [W ‖ focus]·√F + positions for `n` windows; `focus(r, t, c)` gives the
    /// focus score of window `r`, step `t`, metric `c`.
    fn encoder_input(
        &self,
        x: &[f32],
        n: usize,
        focus: impl Fn(usize, usize, usize) -> f32,
    ) -> Vec<f32> {
        let (m, w) = (self.n_metrics, self.window);
        let d = 2 * m;
        let scale = (m as f32).sqrt();
        let mut e = Vec::with_capacity(n * w * d);
        for r in 0..n {
            for t in 0..w {
                let pos = &self.positions[t * d..(t + 1) * d];
                let step = &x[(r * w + t) * m..(r * w + t + 1) * m];
                e.extend(step.iter().zip(&pos[..m]).map(|(v, p)| v * scale + p));
                e.extend((0..m).map(|c| focus(r, t, c) * scale + pos[m + c]));
            }
        }
        e
    }

    /// sigmoid(output(decoder(target, encoder(input)))) for `n` windows: `n x F`.
    fn reconstruct(
        &self,
        decoder: &DecoderKernels,
        input: &[f32],
        target: &[f32],
        n: usize,
    ) -> Vec<f32> {
        let (mut memory, mut decoded, mut out) = (Vec::new(), Vec::new(), Vec::new());
        self.encoder.forward(input, n, self.window, &mut memory);
        decoder.forward(target, &memory, n, self.window, &mut decoded);
        self.output
            .forward(&decoded, n, Activation::Linear, &mut out);
        activate(&mut out, Activation::Sigmoid);
        out
    }

    /// Per-metric scores (x2 − W_K)² of the windows ending at each point of `rows`, into `out`
    /// (`rows.len() x F`).
    pub(super) fn score_rows(&self, values: &[f32], rows: Range<usize>, out: &mut [f32]) {
        let (m, w) = (self.n_metrics, self.window);
        let n = rows.len();
        let mut x = Vec::new();
        windows_ending_at(values, m, w, rows, &mut x);
        let newest = |r: usize| &x[(r * w + w - 1) * m..(r * w + w) * m];
        let target: Vec<f32> = (0..n)
            .flat_map(|r| newest(r).iter().chain(newest(r)).copied())
            .collect();
        let phase1 = self.encoder_input(&x, n, |_, _, _| 0.0);
        let x1 = self.reconstruct(&self.decoder1, &phase1, &target, n);
        let phase2 = self.encoder_input(&x, n, |r, t, c| {
            let e = x1[r * m + c] - x[(r * w + t) * m + c];
            e * e
        });
        let x2 = self.reconstruct(&self.decoder2, &phase2, &target, n);
        for r in 0..n {
            for (c, v) in newest(r).iter().enumerate() {
                let e = x2[r * m + c] - v;
                out[r * m + c] = e * e;
            }
        }
    }
}
