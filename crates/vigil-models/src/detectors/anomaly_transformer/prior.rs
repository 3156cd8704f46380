//! The prior association of anomaly-attention as one fused operation.
//!
//! For step i of a window of L steps and its learned width σ_i, the prior row is a Gaussian over
//! the distances to every step, normalised: P_ij = e^{−(i−j)²/2σ_i²} / Σ_k e^{−(i−k)²/2σ_i²}.
//!
//! Why fused: composed from burn ops it is a broadcast division, a negation and a softmax over
//! batch × heads × L × L values per layer (82 MB at the authors' batch of 256), each pass
//! forward and again backward, and libm's e^x takes its slow path on every underflow (most of
//! the row when σ is small); perf put the prior's exponentials alone at a fifth of a training
//! step. Here a row is made in one vectorised pass with vigil's e^x, and the backward pass
//! recomputes the row from σ instead of keeping it, so nothing of L × L size outlives the
//! forward pass.
//!
//! Backward: with a_j = −d_j/2σ² (d_j = (i−j)²), ∂a_j/∂σ = d_j/σ³, so for an incoming gradient
//! G, ∂L/∂σ = Σ_j G_j P_j (d_j − Σ_k P_k d_k) / σ³ — gathered in the same single pass as sums
//! of the unnormalised terms.

use crate::nn::fast_math::exp_f32;
use crate::nn::flex_values::{tensor, values};
use crate::nn::lanes;
use crate::nn::simd::wide_simd;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use rayon::prelude::*;

/// The Gaussian prior rows for a `batch × heads × steps × 1` tensor of widths.
#[backend_extension(Flex, Autodiff)]
pub trait PriorBackend: Backend {
    fn gaussian_prior(sigma: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The forward rows and the gradient with respect to the widths.
pub trait PriorKernels: Backend {
    fn prior_forward(sigma: FloatTensor<Self>) -> FloatTensor<Self>;
    fn prior_backward(sigma: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Rows per parallel task (each `steps` long).
const ROWS_PER_TASK: usize = 256;

/// |i − j|² for every pair of steps, row i at `i * steps`: the inner loops read a row of it
/// rather than convert indices to floats, which keeps them vectorised.
fn squared_distances(steps: usize) -> Vec<f32> {
    (0..steps * steps)
        .map(|k| ((k / steps) as f32 - (k % steps) as f32).powi(2))
        .collect()
}

/// Exponents below this give exact zeros: e^-60 ≈ 1e-26 is far below what a row (whose sum is
/// at least 1) or ln(P + 1e-4) in the discrepancy can register, and the tails of narrow rows
/// would otherwise run into subnormal numbers (e^-87 and the products and sums made from it),
/// which some CPUs handle in microcode at a hundred cycles each. On a 2-core Intel Xeon this
/// kernel was half the Anomaly Transformer's training profile.
const UNDERFLOW: f32 = -60.0;

/// One unnormalised prior term e^a.
#[inline(always)]
fn term(a: f32) -> f32 {
    if a < UNDERFLOW {
        0.0
    } else {
        exp_f32(a)
    }
}

/// Row k of `sigma` is step `(first + k) % steps` of its window; `first` is the index of the
/// slice's first row in the whole tensor.
#[inline(always)]
fn forward_rows_loop(
    steps: usize,
    distances: &[f32],
    first: usize,
    sigma: &[f32],
    out: &mut [f32],
) {
    for (k, (&s, row)) in sigma.iter().zip(out.chunks_exact_mut(steps)).enumerate() {
        let i = (first + k) % steps;
        let c = -0.5 / (s * s);
        for (p, &d) in row.iter_mut().zip(&distances[i * steps..(i + 1) * steps]) {
            *p = term(c * d);
        }
        // Step i's own term is e^0 = 1, so the sum is at least 1.
        let inverse = 1.0 / lanes::sum(row);
        row.iter_mut().for_each(|p| *p *= inverse);
    }
}

/// `scratch` holds one row's unnormalised terms.
#[inline(always)]
fn backward_rows_loop(
    steps: usize,
    distances: &[f32],
    first: usize,
    sigma: &[f32],
    grad: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) {
    for (k, ((&s, g), o)) in sigma
        .iter()
        .zip(grad.chunks_exact(steps))
        .zip(out.iter_mut())
        .enumerate()
    {
        let i = (first + k) % steps;
        let c = -0.5 / (s * s);
        let d = &distances[i * steps..(i + 1) * steps];
        for (e, &d) in scratch.iter_mut().zip(d) {
            *e = term(c * d);
        }
        // Z = Σe, Σe·d, Σe·G and Σe·G·d, eight partial sums each (as in nn::lanes).
        let mut acc = [[0.0f32; 8]; 4];
        let lanes = scratch
            .chunks_exact(8)
            .zip(d.chunks_exact(8))
            .zip(g.chunks_exact(8));
        for ((e, d), g) in lanes {
            for lane in 0..8 {
                let (e, d, g) = (e[lane], d[lane], g[lane]);
                acc[0][lane] += e;
                acc[1][lane] += e * d;
                acc[2][lane] += e * g;
                acc[3][lane] += e * g * d;
            }
        }
        let mut sums = acc.map(|a| a.iter().sum::<f32>());
        let tail = steps - steps % 8;
        for ((&e, &d), &g) in scratch[tail..].iter().zip(&d[tail..]).zip(&g[tail..]) {
            sums[0] += e;
            sums[1] += e * d;
            sums[2] += e * g;
            sums[3] += e * g * d;
        }
        let [z, ed, eg, egd] = sums;
        *o = (egd / z - (ed / z) * (eg / z)) / (s * s * s);
    }
}

wide_simd!(fn forward_rows = forward_rows_loop(
    steps: usize,
    distances: &[f32],
    first: usize,
    sigma: &[f32],
    out: &mut [f32],
));
wide_simd!(fn backward_rows = backward_rows_loop(
    steps: usize,
    distances: &[f32],
    first: usize,
    sigma: &[f32],
    grad: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
));

/// `[batch, heads, steps, 1]` → the number of steps.
fn steps_of(sigma: &FloatTensor<Flex>) -> usize {
    let shape = sigma.shape().to_vec();
    assert!(
        shape.len() == 4 && shape[3] == 1,
        "the prior's widths are batch × heads × steps × 1, got {shape:?}"
    );
    shape[2]
}

impl PriorKernels for Flex {
    fn prior_forward(sigma: FloatTensor<Self>) -> FloatTensor<Self> {
        let steps = steps_of(&sigma);
        let mut shape = sigma.shape().to_vec();
        let s = values(&sigma);
        let distances = squared_distances(steps);
        let mut out = vec![0.0; s.len() * steps];
        out.par_chunks_mut(ROWS_PER_TASK * steps)
            .zip(s.par_chunks(ROWS_PER_TASK))
            .enumerate()
            .for_each(|(t, (o, s))| forward_rows(steps, &distances, t * ROWS_PER_TASK, s, o));
        shape[3] = steps;
        tensor(out, shape)
    }

    fn prior_backward(sigma: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let steps = steps_of(&sigma);
        let shape = sigma.shape().to_vec();
        let (s, g) = (values(&sigma), values(&grad));
        assert_eq!(g.len(), s.len() * steps, "one gradient per prior entry");
        let distances = squared_distances(steps);
        let mut out = vec![0.0; s.len()];
        out.par_chunks_mut(ROWS_PER_TASK)
            .zip(
                s.par_chunks(ROWS_PER_TASK)
                    .zip(g.par_chunks(ROWS_PER_TASK * steps)),
            )
            .enumerate()
            .for_each(|(t, (o, (s, g)))| {
                let mut scratch = vec![0.0; steps];
                backward_rows(steps, &distances, t * ROWS_PER_TASK, s, g, o, &mut scratch)
            });
        tensor(out, shape)
    }
}

impl PriorBackend for Flex {
    fn gaussian_prior(sigma: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::prior_forward(sigma)
    }
}

#[derive(Debug)]
struct PriorStep;

impl<B: PriorKernels> Backward<B, 1> for PriorStep {
    /// The widths; the backward pass recomputes the rows from them.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [sigma_node] = ops.parents;
        if let Some(node) = sigma_node {
            grads.register::<B>(node.id, B::prior_backward(ops.state, grad));
        }
    }
}

impl<B: PriorKernels, C: CheckpointStrategy> PriorBackend for Autodiff<B, C> {
    fn gaussian_prior(sigma: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [sigma.node()];
        let sigma = sigma.into_primitive();
        match PriorStep.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::prior_forward(sigma.clone());
                prep.finish(sigma, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::prior_forward(sigma)),
        }
    }
}

/// The prior association for widths `sigma` (`batch × heads × steps × 1`): `batch × heads ×
/// steps × steps`, each row a normalised Gaussian over the distance to the row's step.
pub fn gaussian_prior(sigma: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as PriorBackend>::gaussian_prior(
        sigma.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::softmax;

    /// The composed form the fused op replaces: softmax of −|i − j|² / 2σ_i².
    fn composed(sigma: Tensor<4>, steps: usize, device: &Device) -> Tensor<4> {
        let d: Vec<f32> = (0..steps * steps)
            .map(|k| ((k / steps) as f32 - (k % steps) as f32).powi(2))
            .collect();
        let d = crate::nn::tensor2(d, steps, steps, device).reshape([1, 1, steps, steps]);
        softmax(d.neg() / sigma.square().mul_scalar(2.0), 3)
    }

    /// Values and the gradient with respect to σ equal the composed ops', for widths from the
    /// smallest the layer makes (~1e-5, where most of a row underflows) to its largest (2), on
    /// more rows than one parallel task holds.
    #[test]
    fn fused_prior_and_its_gradient_equal_the_composed_ones() {
        let device = crate::nn::device().autodiff();
        let (b, h, steps) = (3, 2, 50);
        let n = b * h * steps;
        let sigma: Vec<f32> = (0..n)
            .map(|k| match k % 5 {
                0 => 1.1e-5,
                1 => 0.3,
                2 => 0.9,
                3 => 1.5,
                _ => 2.0,
            })
            .collect();
        // An uneven incoming gradient, so that no cancellation hides an error.
        let weights: Vec<f32> = (0..n * steps)
            .map(|k| ((k * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let weights = Tensor::<1>::from_data(TensorData::new(weights, [n * steps]), &device)
            .reshape([b, h, steps, steps]);
        let run = |fused: bool| {
            let s = Tensor::<1>::from_data(TensorData::new(sigma.clone(), [n]), &device)
                .reshape([b, h, steps, 1])
                .require_grad();
            let p = if fused {
                gaussian_prior(s.clone())
            } else {
                composed(s.clone(), steps, &device)
            };
            let grads = (p.clone() * weights.clone()).sum().backward();
            (
                crate::nn::to_vec(p),
                crate::nn::to_vec(s.grad(&grads).unwrap()),
            )
        };
        let (fused, reference) = (run(true), run(false));
        for (k, (a, r)) in fused.0.iter().zip(&reference.0).enumerate() {
            assert!((a - r).abs() <= 1e-6 + 1e-5 * r.abs(), "P[{k}]: {a} vs {r}");
        }
        for (k, (a, r)) in fused.1.iter().zip(&reference.1).enumerate() {
            assert!(
                (a - r).abs() <= 1e-4 * (1.0 + r.abs()),
                "dσ[{k}]: {a} vs {r}"
            );
        }
    }
}
