//! Softmax over the last dimension as one fused operation.
//!
//! Why: burn composes softmax from a max, a subtraction, e^x (libm, one element at a time), a
//! sum and a division — five passes forward and more backward. On the Anomaly Transformer's
//! series association (batch 256 × 8 heads × 100 × 100 per layer) those passes and libm's e^x
//! were a large share of a training step. Here a row is made in two vectorised passes with
//! vigil's e^x, and the backward pass is one: for the output S and an incoming gradient G,
//! ∂L/∂x_j = S_j (G_j − Σ_k G_k S_k).

use super::fast_math::exp_f32;
use super::flex_values::{tensor, values};
use super::lanes;
use super::simd::wide_simd;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use rayon::prelude::*;

/// Softmax over the last dimension.
#[backend_extension(Flex, Autodiff)]
pub trait SoftmaxBackend: Backend {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The forward rows and the gradient given the output.
pub trait SoftmaxKernels: Backend {
    fn softmax_forward(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn softmax_backward(output: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Values per parallel task, in whole rows.
const VALUES_PER_TASK: usize = 1 << 15;

#[inline(always)]
fn forward_rows_loop(n: usize, x: &[f32], out: &mut [f32]) {
    for (x, row) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let max = lanes::max(x);
        for (o, &v) in row.iter_mut().zip(x) {
            *o = exp_f32(v - max);
        }
        // The largest term is e^0 = 1, so the sum is at least 1.
        let inverse = 1.0 / lanes::sum(row);
        row.iter_mut().for_each(|o| *o *= inverse);
    }
}

#[inline(always)]
fn backward_rows_loop(n: usize, s: &[f32], g: &[f32], out: &mut [f32]) {
    for ((s, g), o) in s
        .chunks_exact(n)
        .zip(g.chunks_exact(n))
        .zip(out.chunks_exact_mut(n))
    {
        let dot = lanes::dot(s, g);
        for ((o, &s), &g) in o.iter_mut().zip(s).zip(g) {
            *o = s * (g - dot);
        }
    }
}

wide_simd!(fn forward_rows = forward_rows_loop(n: usize, x: &[f32], out: &mut [f32]));
wide_simd!(fn backward_rows = backward_rows_loop(n: usize, s: &[f32], g: &[f32], out: &mut [f32]));

/// Row length and values per task (a whole number of rows, at least one).
fn row_split(t: &FloatTensor<Flex>) -> (usize, usize) {
    let n = *t
        .shape()
        .last()
        .expect("softmax needs at least one dimension");
    (n, (VALUES_PER_TASK / n.max(1)).max(1) * n.max(1))
}

impl SoftmaxKernels for Flex {
    fn softmax_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (n, per_task) = row_split(&x);
        let shape = x.shape().to_vec();
        let v = values(&x);
        let mut out = vec![0.0; v.len()];
        if n > 0 {
            out.par_chunks_mut(per_task)
                .zip(v.par_chunks(per_task))
                .for_each(|(o, x)| forward_rows(n, x, o));
        }
        tensor(out, shape)
    }

    fn softmax_backward(output: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let (n, per_task) = row_split(&output);
        let shape = output.shape().to_vec();
        let (s, g) = (values(&output), values(&grad));
        assert_eq!(s.len(), g.len(), "one gradient per softmax output");
        let mut out = vec![0.0; s.len()];
        if n > 0 {
            out.par_chunks_mut(per_task)
                .zip(s.par_chunks(per_task).zip(g.par_chunks(per_task)))
                .for_each(|(o, (s, g))| backward_rows(n, s, g, o));
        }
        tensor(out, shape)
    }
}

impl SoftmaxBackend for Flex {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::softmax_forward(x)
    }
}

#[derive(Debug)]
struct SoftmaxStep;

impl<B: SoftmaxKernels> Backward<B, 1> for SoftmaxStep {
    /// The output, which the gradient is made from.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [input] = ops.parents;
        if let Some(node) = input {
            grads.register::<B>(node.id, B::softmax_backward(ops.state, grad));
        }
    }
}

impl<B: SoftmaxKernels, C: CheckpointStrategy> SoftmaxBackend for Autodiff<B, C> {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [x.node()];
        let x = x.into_primitive();
        match SoftmaxStep.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::softmax_forward(x);
                prep.finish(out.clone(), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::softmax_forward(x)),
        }
    }
}

/// Softmax of `x` over its last dimension.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as SoftmaxBackend>::softmax_last(
        x.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values and gradients equal burn's composed softmax, on rows of several lengths (with
    /// and without a SIMD tail), large and small logits, and more values than one task holds.
    #[test]
    fn fused_softmax_and_its_gradient_equal_burns() {
        let device = crate::device().autodiff();
        for (rows, n) in [(3usize, 1usize), (5, 7), (4, 8), (700, 100)] {
            let x: Vec<f32> = (0..rows * n)
                .map(|k| ((k * 7919) % 211) as f32 / 10.0 - 10.0)
                .collect();
            let w: Vec<f32> = (0..rows * n)
                .map(|k| ((k * 104_729) % 97) as f32 / 48.0 - 1.0)
                .collect();
            let w = Tensor::<2>::from_data(TensorData::new(w, [rows, n]), &device);
            let run = |fused: bool| {
                let x = Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, n]), &device)
                    .require_grad();
                let y = if fused {
                    softmax_last(x.clone())
                } else {
                    burn::tensor::activation::softmax(x.clone(), 1)
                };
                let grads = (y.clone() * w.clone()).sum().backward();
                (crate::to_vec(y), crate::to_vec(x.grad(&grads).unwrap()))
            };
            let (fused, reference) = (run(true), run(false));
            for (k, (a, r)) in fused.0.iter().zip(&reference.0).enumerate() {
                assert!(
                    (a - r).abs() <= 1e-6 + 1e-5 * r.abs(),
                    "{rows}x{n} y[{k}]: {a} vs {r}"
                );
            }
            for (k, (a, r)) in fused.1.iter().zip(&reference.1).enumerate() {
                assert!(
                    (a - r).abs() <= 1e-6 + 1e-4 * r.abs(),
                    "{rows}x{n} dx[{k}]: {a} vs {r}"
                );
            }
        }
    }
}
