//! The Gaussian negative log-likelihood of the VAEs' decoders as one fused operation.
//!
//! Why: a VAE decoder ends in a mean and a raw standard deviation per value, and the loss is
//! ln σ + ½((x − μ)/σ)² + ½ ln 2π with σ = softplus(raw) + ε. Composed from burn ops that is
//! eight element-wise passes forward and more backward, with softplus and ln through libm one
//! element at a time — a sixth of the dense VAE's training step (perf, SMD shapes). Here one
//! vectorised pass computes the loss and the two derivatives, which the backward pass only
//! multiplies by the incoming gradient.

use super::fast_math::{ln_f32, softplus_and_sigmoid_f32};
use super::flex_values::{tensor, values};
use super::simd::wide_simd;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;

/// ½ ln 2π, the constant of a Gaussian's negative log-density.
pub const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_7;

/// Negative log-density of `x` under N(mean, std²), element-wise (the likelihood of the VAEs).
pub fn gaussian_nll<const D: usize>(x: Tensor<D>, mean: Tensor<D>, std: Tensor<D>) -> Tensor<D> {
    let z = (x - mean) / std.clone();
    std.log() + z.square().mul_scalar(0.5) + HALF_LOG_TWO_PI
}

/// Element-wise −ln N(x; mean, σ²) with σ = softplus(raw_std) + ε.
#[backend_extension(Flex, Autodiff)]
pub trait LikelihoodBackend: Backend {
    fn gaussian_nll_softplus(
        x: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        raw_std: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;
}

/// The loss and, when asked, its derivatives with respect to the mean and the raw deviation.
pub trait LikelihoodKernels: Backend {
    /// `(nll, Some((∂nll/∂mean, ∂nll/∂raw)))` when `with_derivatives`.
    #[allow(clippy::type_complexity)]
    fn nll_forward(
        inputs: [FloatTensor<Self>; 3],
        eps: f32,
        with_derivatives: bool,
    ) -> (FloatTensor<Self>, Option<[FloatTensor<Self>; 2]>);
}

/// One value's loss and derivatives. With σ = softplus(r) + ε and z = (x − μ)/σ:
/// ∂/∂μ = −z/σ, ∂/∂r = (1 − z²)/σ · sigmoid(r).
#[inline(always)]
fn nll_and_derivatives(x: f32, mean: f32, raw: f32, eps: f32) -> (f32, f32, f32) {
    let (softplus, sigmoid) = softplus_and_sigmoid_f32(raw);
    let std = softplus + eps;
    let inv_std = 1.0 / std;
    let z = (x - mean) * inv_std;
    let nll = ln_f32(std) + 0.5 * z * z + HALF_LOG_TWO_PI as f32;
    (nll, -z * inv_std, (1.0 - z * z) * inv_std * sigmoid)
}

/// The loss of one value (scoring uses this, so that scores equal the training loss).
#[inline(always)]
pub fn gaussian_nll_softplus_value(x: f32, mean: f32, raw: f32, eps: f32) -> f32 {
    nll_and_derivatives(x, mean, raw, eps).0
}

#[inline(always)]
fn loss_loop(x: &[f32], mean: &[f32], raw: &[f32], eps: f32, out: &mut [f32]) {
    for (((o, &x), &m), &r) in out.iter_mut().zip(x).zip(mean).zip(raw) {
        *o = gaussian_nll_softplus_value(x, m, r, eps);
    }
}

#[inline(always)]
fn loss_and_derivatives_loop(
    x: &[f32],
    mean: &[f32],
    raw: &[f32],
    eps: f32,
    out: &mut [f32],
    d_mean: &mut [f32],
    d_raw: &mut [f32],
) {
    let outputs = out.iter_mut().zip(d_mean.iter_mut()).zip(d_raw.iter_mut());
    for (((o, dm), dr), ((&x, &m), &r)) in outputs.zip(x.iter().zip(mean).zip(raw)) {
        (*o, *dm, *dr) = nll_and_derivatives(x, m, r, eps);
    }
}

wide_simd!(fn loss = loss_loop(x: &[f32], mean: &[f32], raw: &[f32], eps: f32, out: &mut [f32]));
wide_simd!(fn loss_and_derivatives = loss_and_derivatives_loop(
    x: &[f32],
    mean: &[f32],
    raw: &[f32],
    eps: f32,
    out: &mut [f32],
    d_mean: &mut [f32],
    d_raw: &mut [f32],
));

impl LikelihoodKernels for Flex {
    fn nll_forward(
        inputs: [FloatTensor<Self>; 3],
        eps: f32,
        with_derivatives: bool,
    ) -> (FloatTensor<Self>, Option<[FloatTensor<Self>; 2]>) {
        let shape = inputs[0].shape().to_vec();
        assert!(
            inputs.iter().all(|t| t.shape().to_vec() == shape),
            "the Gaussian likelihood takes x, mean and raw std of one shape"
        );
        let [x, mean, raw] = inputs.each_ref().map(values);
        let n = x.len();
        let mut out = vec![0.0; n];
        if !with_derivatives {
            loss(&x, &mean, &raw, eps, &mut out);
            return (tensor(out, shape), None);
        }
        let (mut d_mean, mut d_raw) = (vec![0.0; n], vec![0.0; n]);
        loss_and_derivatives(&x, &mean, &raw, eps, &mut out, &mut d_mean, &mut d_raw);
        (
            tensor(out, shape.clone()),
            Some([tensor(d_mean, shape.clone()), tensor(d_raw, shape)]),
        )
    }
}

impl LikelihoodBackend for Flex {
    fn gaussian_nll_softplus(
        x: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        raw_std: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        Self::nll_forward([x, mean, raw_std], eps as f32, false).0
    }
}

#[derive(Debug)]
struct LikelihoodStep;

impl<B: Backend> Backward<B, 3> for LikelihoodStep {
    /// ∂nll/∂mean and ∂nll/∂raw (∂nll/∂x is −∂nll/∂mean).
    type State = [FloatTensor<B>; 2];

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [d_mean, d_raw] = ops.state;
        let [x, mean, raw] = ops.parents;
        if let Some(node) = x {
            let g = B::float_neg(B::float_mul(grad.clone(), d_mean.clone()));
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = mean {
            grads.register::<B>(node.id, B::float_mul(grad.clone(), d_mean));
        }
        if let Some(node) = raw {
            grads.register::<B>(node.id, B::float_mul(grad, d_raw));
        }
    }
}

impl<B: LikelihoodKernels, C: CheckpointStrategy> LikelihoodBackend for Autodiff<B, C> {
    fn gaussian_nll_softplus(
        x: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        raw_std: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), mean.node(), raw_std.node()];
        let inputs = [x, mean, raw_std].map(|t| t.into_primitive());
        match LikelihoodStep
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, derivatives) = B::nll_forward(inputs, eps as f32, true);
                prep.finish(derivatives.expect("derivatives were asked for"), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::nll_forward(inputs, eps as f32, false).0),
        }
    }
}

/// −ln N(x; mean, σ²) element-wise, with σ = softplus(raw_std) + `eps` — the likelihood of the
/// VAEs' decoders, differentiable with respect to all three inputs.
pub fn gaussian_nll_softplus<const D: usize>(
    x: Tensor<D>,
    mean: Tensor<D>,
    raw_std: Tensor<D>,
    eps: f64,
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as LikelihoodBackend>::gaussian_nll_softplus(
        x.into_dispatch(),
        mean.into_dispatch(),
        raw_std.into_dispatch(),
        eps,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::softplus;

    fn column(values: &[f32], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
    }

    #[test]
    fn fused_loss_and_gradients_equal_the_composed_ones() {
        let device = crate::device().autodiff();
        let n = 240;
        let x: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        let mean: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.11).cos() * 0.8).collect();
        // Raw deviations from −30 (σ ≈ ε) to 30 (σ ≈ raw).
        let raw: Vec<f32> = (0..n).map(|i| -30.0 + 60.0 * i as f32 / n as f32).collect();
        let eps = 1e-4;
        let run = |fused: bool| {
            let [x, mean, raw] = [&x, &mean, &raw].map(|v| column(v, &device).require_grad());
            let nll = if fused {
                gaussian_nll_softplus(x.clone(), mean.clone(), raw.clone(), eps)
            } else {
                let std = softplus(raw.clone(), 1.0).add_scalar(eps);
                crate::gaussian_nll(x.clone(), mean.clone(), std)
            };
            // A weighted sum, so that every element's gradient is scaled differently.
            let weights: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32 * 0.1).collect();
            let grads = (nll.clone() * column(&weights, &device)).sum().backward();
            let grad = |t: &Tensor<2>| crate::to_vec(t.grad(&grads).unwrap());
            (crate::to_vec(nll), grad(&x), grad(&mean), grad(&raw))
        };
        let (fused, composed) = (run(true), run(false));
        let close = |a: &[f32], b: &[f32], what: &str| {
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                let tolerance = 2e-5 * (1.0 + b.abs());
                assert!((a - b).abs() <= tolerance, "{what}[{i}]: {a} vs {b}");
            }
        };
        close(&fused.0, &composed.0, "nll");
        close(&fused.1, &composed.1, "d/dx");
        close(&fused.2, &composed.2, "d/dmean");
        close(&fused.3, &composed.3, "d/draw");
    }
}
