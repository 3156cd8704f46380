//! RealNVP's affine coupling layer (`real_nvp.rs`) as one fused operation.
//!
//! Why: InterFusion applies 20 coupling layers to every step's z1 — 10,000 rows of 3 values per
//! batch — and each layer is a 100-unit ReLU layer on one feature followed by a 4-output layer.
//! Composed from burn ops that is ~20 passes over `rows × 100` activations per layer, forward and
//! backward: 55% of a training epoch, and the epoch slower than PyTorch's. Here each row is
//! computed start to end in registers and cache — forward, and backward with the hidden layer
//! recomputed — and the weight gradients are summed per parallel chunk.
//!
//! The layer, per row z = [z_a | z_b] (z_a the first `first` values): h = relu(z_a·W_h + b_h),
//! [shift | pre] = h·W_o + b_o, s = sigmoid(pre + 2); output [z_a | (z_b + shift)·s | Σ ln s] —
//! the transformed row with its log-determinant appended as one more column.

use crate::nn::fast_math::{exp_f32, softplus_and_sigmoid_f32};
use crate::nn::flex_values::{tensor, values};
use crate::nn::lanes::dot;
use crate::nn::simd::wide_simd;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use rayon::prelude::*;

/// Added to the pre-scale before the sigmoid (the authors' `coupling_sigmoid_scale_bias`).
pub const SCALE_BIAS: f32 = 2.0;

/// The fused coupling layer (module docs).
#[backend_extension(Flex, Autodiff)]
pub trait CouplingBackend: Backend {
    fn affine_coupling(
        z: FloatTensor<Self>,
        hidden_weight: FloatTensor<Self>,
        hidden_bias: FloatTensor<Self>,
        out_weight: FloatTensor<Self>,
        out_bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The kernels behind [`CouplingBackend`].
pub trait CouplingKernels: Backend {
    /// `[z | log-det]`, `rows × (latent + 1)`.
    fn coupling_forward(inputs: [FloatTensor<Self>; 5]) -> FloatTensor<Self>;
    /// Gradients of the five inputs given the output's gradient.
    fn coupling_backward(
        inputs: [FloatTensor<Self>; 5],
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 5];
}

/// The layer's sizes, read off its weights.
#[derive(Debug, Clone, Copy)]
struct Dims {
    latent: usize,
    first: usize,
    hidden: usize,
}

impl Dims {
    fn rest(&self) -> usize {
        self.latent - self.first
    }
}

/// The weights as slices: W_h `first × hidden` (burn's layout), b_h, W_oᵀ `2·rest × hidden`
/// (transposed, so that every inner loop runs along the hidden units), b_o.
struct Weights<'a> {
    hw: &'a [f32],
    hb: &'a [f32],
    ow_t: &'a [f32],
    ob: &'a [f32],
}

/// y += a·x.
#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

/// One row's hidden pre-activations, their ReLU, and [shift | pre-scale + bias].
#[inline(always)]
fn row_forward(d: Dims, w: &Weights, z: &[f32], h_pre: &mut [f32], h: &mut [f32], p: &mut [f32]) {
    h_pre.copy_from_slice(w.hb);
    for (i, &zi) in z[..d.first].iter().enumerate() {
        axpy(zi, &w.hw[i * d.hidden..(i + 1) * d.hidden], h_pre);
    }
    h.iter_mut()
        .zip(h_pre.iter())
        .for_each(|(h, &v)| *h = v.max(0.0));
    for (k, p) in p.iter_mut().enumerate() {
        *p = w.ob[k] + dot(h, &w.ow_t[k * d.hidden..(k + 1) * d.hidden]);
    }
    p[d.rest()..].iter_mut().for_each(|v| *v += SCALE_BIAS);
}

/// ln s and s for s = sigmoid(pre): ln s = −softplus(−pre), exact for very negative pre.
#[inline(always)]
fn log_scale(pre: f32) -> (f32, f32) {
    let log_s = -softplus_and_sigmoid_f32(-pre).0;
    (log_s, exp_f32(log_s))
}

#[inline(always)]
fn forward_rows_loop(d: Dims, w: &Weights, z: &[f32], out: &mut [f32]) {
    let (mut h_pre, mut h) = (vec![0.0; d.hidden], vec![0.0; d.hidden]);
    let mut p = vec![0.0; 2 * d.rest()];
    for (z, out) in z
        .chunks_exact(d.latent)
        .zip(out.chunks_exact_mut(d.latent + 1))
    {
        row_forward(d, w, z, &mut h_pre, &mut h, &mut p);
        out[..d.first].copy_from_slice(&z[..d.first]);
        let mut log_det = 0.0;
        for k in 0..d.rest() {
            let (log_s, s) = log_scale(p[d.rest() + k]);
            out[d.first + k] = (z[d.first + k] + p[k]) * s;
            log_det += log_s;
        }
        out[d.latent] = log_det;
    }
}

/// Weight gradients summed over some rows (W_o's transposed, as in [`Weights`]).
struct WeightGrads {
    hw: Vec<f32>,
    hb: Vec<f32>,
    ow_t: Vec<f32>,
    ob: Vec<f32>,
}

impl WeightGrads {
    fn zeros(d: Dims) -> WeightGrads {
        WeightGrads {
            hw: vec![0.0; d.first * d.hidden],
            hb: vec![0.0; d.hidden],
            ow_t: vec![0.0; 2 * d.rest() * d.hidden],
            ob: vec![0.0; 2 * d.rest()],
        }
    }

    fn add(mut self, other: WeightGrads) -> WeightGrads {
        for (a, b) in [
            (&mut self.hw, &other.hw),
            (&mut self.hb, &other.hb),
            (&mut self.ow_t, &other.ow_t),
            (&mut self.ob, &other.ob),
        ] {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        }
        self
    }
}

/// The input gradient of some rows (written into `gz`); their weight gradients added to `sums`.
#[inline(always)]
fn backward_rows_loop(
    d: Dims,
    w: &Weights,
    z: &[f32],
    g: &[f32],
    gz: &mut [f32],
    sums: &mut WeightGrads,
) {
    let (r, outs, hidden) = (d.rest(), 2 * d.rest(), d.hidden);
    let (mut h_pre, mut h, mut gh) = (vec![0.0; hidden], vec![0.0; hidden], vec![0.0; hidden]);
    let (mut p, mut gp) = (vec![0.0; outs], vec![0.0; outs]);
    let rows = z.chunks_exact(d.latent).zip(g.chunks_exact(d.latent + 1));
    for ((z, g), gz) in rows.zip(gz.chunks_exact_mut(d.latent)) {
        row_forward(d, w, z, &mut h_pre, &mut h, &mut p);
        let g_log_det = g[d.latent];
        for k in 0..r {
            let (_, s) = log_scale(p[r + k]);
            let g_out = g[d.first + k];
            gz[d.first + k] = g_out * s;
            gp[k] = g_out * s;
            // d s / d pre = s(1 − s); d ln s / d pre = 1 − s.
            gp[r + k] = (g_out * (z[d.first + k] + p[k]) * s + g_log_det) * (1.0 - s);
        }
        gh.fill(0.0);
        for (k, &gk) in gp.iter().enumerate() {
            sums.ob[k] += gk;
            axpy(gk, &h, &mut sums.ow_t[k * hidden..(k + 1) * hidden]);
            axpy(gk, &w.ow_t[k * hidden..(k + 1) * hidden], &mut gh);
        }
        // Through the ReLU.
        gh.iter_mut()
            .zip(&h_pre)
            .for_each(|(g, &v)| *g = if v > 0.0 { *g } else { 0.0 });
        sums.hb.iter_mut().zip(&gh).for_each(|(a, b)| *a += b);
        for i in 0..d.first {
            axpy(z[i], &gh, &mut sums.hw[i * hidden..(i + 1) * hidden]);
            gz[i] = g[i] + dot(&w.hw[i * hidden..(i + 1) * hidden], &gh);
        }
    }
}

wide_simd!(fn forward_rows = forward_rows_loop(d: Dims, w: &Weights, z: &[f32], out: &mut [f32]));
wide_simd!(fn backward_rows = backward_rows_loop(
    d: Dims,
    w: &Weights,
    z: &[f32],
    g: &[f32],
    gz: &mut [f32],
    sums: &mut WeightGrads,
));

/// Rows per parallel task.
const CHUNK_ROWS: usize = 512;

fn dims_of(z: &FloatTensor<Flex>, hidden_weight: &FloatTensor<Flex>) -> Dims {
    let (zs, hs) = (z.shape().to_vec(), hidden_weight.shape().to_vec());
    Dims {
        latent: zs[1],
        first: hs[0],
        hidden: hs[1],
    }
}

/// `rows × cols` row-major → `cols × rows`.
fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

impl CouplingKernels for Flex {
    fn coupling_forward(inputs: [FloatTensor<Self>; 5]) -> FloatTensor<Self> {
        let [z, hw, hb, ow, ob] = &inputs;
        let d = dims_of(z, hw);
        let (zv, hw, hb, ob) = (values(z), values(hw), values(hb), values(ob));
        let ow_t = transposed(&values(ow), d.hidden, 2 * d.rest());
        let w = Weights {
            hw: &hw,
            hb: &hb,
            ow_t: &ow_t,
            ob: &ob,
        };
        let rows = zv.len() / d.latent;
        let mut out = vec![0.0; rows * (d.latent + 1)];
        out.par_chunks_mut(CHUNK_ROWS * (d.latent + 1))
            .zip(zv.par_chunks(CHUNK_ROWS * d.latent))
            .for_each(|(out, z)| forward_rows(d, &w, z, out));
        tensor(out, vec![rows, d.latent + 1])
    }

    fn coupling_backward(
        inputs: [FloatTensor<Self>; 5],
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 5] {
        let [z, hw, hb, ow, ob] = &inputs;
        let d = dims_of(z, hw);
        let shapes = inputs.each_ref().map(|t| t.shape().to_vec());
        let (zv, g) = (values(z), values(&grad));
        let (hw, hb, ob) = (values(hw), values(hb), values(ob));
        let ow_t = transposed(&values(ow), d.hidden, 2 * d.rest());
        let w = Weights {
            hw: &hw,
            hb: &hb,
            ow_t: &ow_t,
            ob: &ob,
        };
        let mut gz = vec![0.0; zv.len()];
        let sums = gz
            .par_chunks_mut(CHUNK_ROWS * d.latent)
            .zip(
                zv.par_chunks(CHUNK_ROWS * d.latent)
                    .zip(g.par_chunks(CHUNK_ROWS * (d.latent + 1))),
            )
            .map(|(gz, (z, g))| {
                let mut sums = WeightGrads::zeros(d);
                backward_rows(d, &w, z, g, gz, &mut sums);
                sums
            })
            // Added in chunk order, not with rayon's `reduce`: its pairing follows the pool size,
            // and floating-point sums in another order move the scores with `--threads`.
            .collect::<Vec<_>>()
            .into_iter()
            .fold(WeightGrads::zeros(d), WeightGrads::add);
        let [sz, shw, shb, sow, sob] = shapes;
        [
            tensor(gz, sz),
            tensor(sums.hw, shw),
            tensor(sums.hb, shb),
            tensor(transposed(&sums.ow_t, 2 * d.rest(), d.hidden), sow),
            tensor(sums.ob, sob),
        ]
    }
}

impl CouplingBackend for Flex {
    fn affine_coupling(
        z: FloatTensor<Self>,
        hidden_weight: FloatTensor<Self>,
        hidden_bias: FloatTensor<Self>,
        out_weight: FloatTensor<Self>,
        out_bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::coupling_forward([z, hidden_weight, hidden_bias, out_weight, out_bias])
    }
}

#[derive(Debug)]
struct CouplingStep;

impl<B: CouplingKernels> Backward<B, 5> for CouplingStep {
    /// The five inputs; the backward pass recomputes the hidden layer from them.
    type State = [FloatTensor<B>; 5];

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let input_grads = B::coupling_backward(ops.state, grad);
        for (parent, g) in ops.parents.into_iter().zip(input_grads) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: CouplingKernels, C: CheckpointStrategy> CouplingBackend for Autodiff<B, C> {
    fn affine_coupling(
        z: FloatTensor<Self>,
        hidden_weight: FloatTensor<Self>,
        hidden_bias: FloatTensor<Self>,
        out_weight: FloatTensor<Self>,
        out_bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let all = [z, hidden_weight, hidden_bias, out_weight, out_bias];
        let nodes = all.each_ref().map(|t| t.node());
        let inputs = all.map(|t| t.into_primitive());
        match CouplingStep.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::coupling_forward(inputs.clone());
                prep.finish(inputs, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::coupling_forward(inputs)),
        }
    }
}

/// The coupling layer on `z` (`rows × latent`): `[transformed z | ln|det|]`, `rows × (latent
/// + 1)`. Weights as burn's `Linear` stores them (`input × output`).
pub fn affine_coupling(
    z: Tensor<2>,
    hidden_weight: Tensor<2>,
    hidden_bias: Tensor<1>,
    out_weight: Tensor<2>,
    out_bias: Tensor<1>,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as CouplingBackend>::affine_coupling(
        z.into_dispatch(),
        hidden_weight.into_dispatch(),
        hidden_bias.into_dispatch(),
        out_weight.into_dispatch(),
        out_bias.into_dispatch(),
    ))
}
