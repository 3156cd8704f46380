//! Inference kernels on plain slices: dense layers, MLPs and row-parallel scoring.
//!
//! Why not burn tensors for scoring: scoring runs the same few small layers over tens of
//! thousands of windows. Through tensors each layer allocates its output, runs its own
//! multi-threaded gemm and then separate passes for the bias and the activation; on SMD shapes
//! that made vigil score slower than PyTorch (bench/results/speed.md). Here a chunk of windows
//! goes through every layer on one core — bias, product and activation while the chunk's rows
//! are in cache — and chunks are spread over the cores. The weights are copied, unchanged, from
//! the trained burn module at the start of a score call, so training stays on burn; each
//! detector's tests check that both forward passes give the same scores.

mod attention;
pub use attention::AttentionWeights;

use super::activations::{sigmoid_in_place, tanh_in_place};
use super::gemm::{matmul_serial, Strided};
use super::{Activation, Mlp};
use burn::nn::Linear;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A dense layer's weights as burn stores them: `weight` is `[inputs, outputs]` row-major.
#[derive(Debug, Clone)]
pub struct Dense {
    inputs: usize,
    outputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// Copies the weights of a burn linear layer (a missing bias reads as zeros).
    pub fn from_linear(linear: &Linear) -> Dense {
        let [inputs, outputs] = linear.weight.val().dims();
        let weight = super::to_vec(linear.weight.val());
        let bias = linear
            .bias
            .as_ref()
            .map_or_else(|| vec![0.0; outputs], |b| super::to_vec(b.val()));
        Dense {
            inputs,
            outputs,
            weight,
            bias,
        }
    }

    /// One layer computing several layers' outputs side by side (the same inputs): one wide
    /// product instead of several narrow ones, e.g. an attention's key and value projections.
    pub fn concat(parts: &[&Dense]) -> Dense {
        let inputs = parts.first().map_or(0, |p| p.inputs);
        assert!(
            parts.iter().all(|p| p.inputs == inputs),
            "concat of layers with different inputs"
        );
        let outputs = parts.iter().map(|p| p.outputs).sum();
        let mut weight = Vec::with_capacity(inputs * outputs);
        for r in 0..inputs {
            for p in parts {
                weight.extend_from_slice(&p.weight[r * p.outputs..(r + 1) * p.outputs]);
            }
        }
        let bias = parts.iter().flat_map(|p| p.bias.iter().copied()).collect();
        Dense {
            inputs,
            outputs,
            weight,
            bias,
        }
    }

    /// The layer followed by a multiplication by `factor` (folded into weights and bias).
    pub fn scaled(mut self, factor: f32) -> Dense {
        self.weight.iter_mut().for_each(|w| *w *= factor);
        self.bias.iter_mut().for_each(|b| *b *= factor);
        self
    }

    /// Number of inputs per row.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Number of outputs per row.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// `out = act(x · W + b)` for `rows` rows of `x` (`rows x inputs`); `out` is resized to
    /// `rows x outputs`.
    pub fn forward(&self, x: &[f32], rows: usize, act: Activation, out: &mut Vec<f32>) {
        self.forward_columns(x, rows, 0..self.outputs, act, out)
    }

    /// Like [`Dense::forward`] but computes only the output columns `cols` (`out` is
    /// `rows x cols.len()`): a detector that scores the newest step of a window needs only that
    /// step's outputs from its last layer.
    pub fn forward_columns(
        &self,
        x: &[f32],
        rows: usize,
        cols: Range<usize>,
        act: Activation,
        out: &mut Vec<f32>,
    ) {
        assert!(
            cols.end <= self.outputs,
            "columns {cols:?} of {}",
            self.outputs
        );
        assert_eq!(x.len(), rows * self.inputs, "input is not rows x inputs");
        let width = cols.len();
        out.clear();
        for _ in 0..rows {
            out.extend_from_slice(&self.bias[cols.clone()]);
        }
        matmul_serial(
            rows,
            width,
            self.inputs,
            out,
            Strided::rows(0, width),
            x,
            Strided::rows(0, self.inputs),
            &self.weight,
            Strided::every(cols.start, self.outputs),
            true,
        );
        activate(out, act);
    }
}

impl Dense {
    /// `out = grad · Wᵀ`: the gradient with respect to the layer's input from `grad`, the
    /// gradient with respect to its output (`rows x outputs`); `out` is `rows x inputs`.
    pub fn input_gradient(&self, grad: &[f32], rows: usize, out: &mut Vec<f32>) {
        assert_eq!(
            grad.len(),
            rows * self.outputs,
            "gradient is not rows x outputs"
        );
        out.clear();
        out.resize(rows * self.inputs, 0.0);
        matmul_serial(
            rows,
            self.inputs,
            self.outputs,
            out,
            Strided::rows(0, self.inputs),
            grad,
            Strided::rows(0, self.outputs),
            &self.weight,
            Strided::transposed(self.outputs),
            false,
        );
    }

    /// `out = residual + x · W + b` (a residual connection around the layer); `residual` is
    /// `rows x outputs`.
    pub fn forward_residual(&self, x: &[f32], rows: usize, residual: &[f32], out: &mut Vec<f32>) {
        assert_eq!(x.len(), rows * self.inputs, "input is not rows x inputs");
        assert_eq!(
            residual.len(),
            rows * self.outputs,
            "residual is not rows x outputs"
        );
        out.clear();
        out.extend(
            residual
                .chunks_exact(self.outputs)
                .flat_map(|row| row.iter().zip(&self.bias).map(|(r, b)| r + b)),
        );
        matmul_serial(
            rows,
            self.outputs,
            self.inputs,
            out,
            Strided::rows(0, self.outputs),
            x,
            Strided::rows(0, self.inputs),
            &self.weight,
            Strided::rows(0, self.outputs),
            true,
        );
    }
}

/// [`super::gaussian_nll`] for one value whose standard deviation is `softplus(raw_std) + eps`,
/// as the VAEs' likelihood heads produce it (the same arithmetic as the training loss).
pub use super::likelihood::gaussian_nll_softplus_value as gaussian_nll_softplus;

/// The newest step's `width` values of each of `rows` sequences of `steps` steps (row-major
/// `rows × steps × width`): what a detector that scores only the newest step keeps of a
/// recurrent layer's outputs.
pub fn newest_steps(values: &[f32], rows: usize, steps: usize, width: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| &values[((r + 1) * steps - 1) * width..(r + 1) * steps * width])
        .copied()
        .collect()
}

/// Each window's newest values scored by a Gaussian likelihood head: `out[r·m + c]` is the
/// negative log-likelihood of metric c at the newest step of window r (`windows` is
/// `rows × steps × m`), under mean `mean[r·m + c]` and deviation softplus(`raw_std`) + `eps`.
pub fn newest_step_nll(
    windows: &[f32],
    steps: usize,
    m: usize,
    mean: &[f32],
    raw_std: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    let newest = newest_steps(windows, out.len() / m.max(1), steps, m);
    for (i, o) in out.iter_mut().enumerate() {
        *o = gaussian_nll_softplus(newest[i], mean[i], raw_std[i], eps);
    }
}

/// Applies an activation in place.
pub fn activate(values: &mut [f32], act: Activation) {
    match act {
        Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Sigmoid => sigmoid_in_place(values),
        Activation::Tanh => tanh_in_place(values),
        Activation::Linear => {}
    }
}

/// An [`Mlp`]'s layers: ReLU after every hidden layer, a chosen activation after the last.
#[derive(Debug, Clone)]
pub struct DenseStack {
    pub(crate) layers: Vec<Dense>,
}

impl DenseStack {
    /// Copies the weights of a trained MLP.
    pub fn from_mlp(mlp: &Mlp) -> DenseStack {
        DenseStack {
            layers: mlp.layers.iter().map(Dense::from_linear).collect(),
        }
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// The layers, input first, to own.
    pub fn into_layers(self) -> Vec<Dense> {
        self.layers
    }

    /// Number of outputs per row.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, Dense::outputs)
    }

    /// The MLP's output for `rows` rows of `x`, into `out`.
    pub fn forward(&self, x: &[f32], rows: usize, output: Activation, out: &mut Vec<f32>) {
        self.forward_columns(x, rows, 0..self.outputs(), output, out)
    }

    /// The output columns `cols` only (the last layer computes just those).
    pub fn forward_columns(
        &self,
        x: &[f32],
        rows: usize,
        cols: Range<usize>,
        output: Activation,
        out: &mut Vec<f32>,
    ) {
        let Some((last, hidden)) = self.layers.split_last() else {
            out.clear();
            out.extend_from_slice(x);
            return;
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut input = x;
        for layer in hidden {
            layer.forward(input, rows, Activation::Relu, &mut a);
            std::mem::swap(&mut a, &mut b);
            input = &b;
        }
        last.forward_columns(input, rows, cols, output, out);
    }
}

/// Windows per chunk for dense detectors in [`par_rows`]: enough for the gemm to reach full
/// speed, few enough that a chunk's activations stay in a core's L2 cache on SMD-sized windows
/// (128-512 measured within noise of each other for USAD on SMD shapes; 256 was best).
pub const CHUNK_ROWS: usize = 256;

/// The most rows one `par_rows` task may take (no cap: `usize::MAX`).
static MAX_CHUNK_ROWS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Caps the rows of every scoring task at `rows`. Each core holds one task's windows and
/// working buffers at a time, so smaller tasks lower the peak memory of scoring (on many
/// cores, by tens of MB for GON); `vigil detect --memory-budget` lowers the cap until the
/// measured peak fits. Call before scoring.
pub fn cap_chunk_rows(rows: usize) {
    MAX_CHUNK_ROWS.store(rows.max(1), Ordering::Relaxed);
}

/// Computes `width` values for each of `rows` rows, `chunk` rows per task across the cores
/// (at most the [`cap_chunk_rows`] cap): `fill(range, out)` writes the rows `range` into `out`
/// (`range.len() x width`).
pub fn par_rows<F>(rows: usize, width: usize, chunk: usize, fill: F) -> Vec<f32>
where
    F: Fn(Range<usize>, &mut [f32]) + Sync,
{
    let mut out = vec![0.0f32; rows * width];
    if width == 0 {
        return out;
    }
    let chunk = chunk.min(MAX_CHUNK_ROWS.load(Ordering::Relaxed)).max(1);
    out.par_chunks_mut(chunk * width)
        .enumerate()
        .for_each(|(i, part)| {
            let start = i * chunk;
            fill(start..start + part.len() / width, part)
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate as nn;

    #[test]
    fn a_dense_stack_matches_the_burn_mlp() {
        let device = nn::device();
        device.seed(3);
        let mlp = Mlp::new(&[7, 5, 4, 6], &device);
        let rows = 9;
        let x: Vec<f32> = (0..rows * 7)
            .map(|i| ((i * 37) % 11) as f32 / 11.0)
            .collect();
        for act in [Activation::Sigmoid, Activation::Relu, Activation::Linear] {
            let want = nn::to_vec(mlp.forward(nn::tensor2(x.clone(), rows, 7, &device), act));
            let stack = DenseStack::from_mlp(&mlp);
            let mut got = Vec::new();
            stack.forward(&x, rows, act, &mut got);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{act:?}: {g} vs {w}");
            }
            // Columns 2..5 only: the same values as those columns of the full output.
            stack.forward_columns(&x, rows, 2..5, act, &mut got);
            for r in 0..rows {
                for c in 0..3 {
                    assert!((got[r * 3 + c] - want[r * 6 + 2 + c]).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn par_rows_covers_every_row_once_in_order() {
        let rows = 3 * 64 + 5;
        let out = par_rows(rows, 2, 64, |range, out| {
            for (i, r) in range.enumerate() {
                out[2 * i] = r as f32;
                out[2 * i + 1] = -(r as f32);
            }
        });
        for r in 0..rows {
            assert_eq!((out[2 * r], out[2 * r + 1]), (r as f32, -(r as f32)));
        }
    }
}
