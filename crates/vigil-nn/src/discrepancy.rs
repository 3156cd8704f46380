//! The Anomaly Transformer's association discrepancy as one fused operation.
//!
//! Why: for attention maps S (series) and P (prior), the paper's minimax objective needs the
//! symmetric KL Σ_j (S − P)(ln(S + ε) − ln(P + ε)) with the gradient reaching S only through
//! one half of the loss (P detached) and P only through the other (S detached). Composed from
//! burn ops that is four KL terms of ~7 element-wise passes each, forward and more backward,
//! over batch × heads × steps² values per layer — most of a training step. Here one vectorised
//! pass computes the values and both partial derivatives, and the backward pass only
//! multiplies them by the incoming gradient.
//!
//! Gradient convention (what the minimax loss needs, not the true derivative): with
//! d = ln(S + ε) − ln(P + ε), the value is (S − P)·d, its "gradient" with respect to S is
//! −(d + (S − P)/(S + ε)) — the series is pushed *away* from the prior — and with respect to P
//! it is −d + (P − S)/(P + ε), pulling the prior towards the series. The training loss adds
//! k · mean(value) to twice the reconstruction error: its gradients are exactly those of the
//! authors' (rec − k·D(S, P̸)) + (rec + k·D(P, S̸)).

use super::fast_math::ln_f32;
use super::flex_values::{tensor, values};
use super::simd::wide_simd;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use rayon::prelude::*;

/// The ε inside both logarithms (the authors' `my_kl_loss`).
pub const EPSILON: f32 = 1e-4;

/// Element-wise (S − P)(ln(S + ε) − ln(P + ε)) with the minimax gradients (module docs).
#[backend_extension(Flex, Autodiff)]
pub trait DiscrepancyBackend: Backend {
    fn association_discrepancy(
        series: FloatTensor<Self>,
        prior: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The values and, when asked, the two minimax derivatives.
pub trait DiscrepancyKernels: Backend {
    #[allow(clippy::type_complexity)]
    fn discrepancy_forward(
        series: FloatTensor<Self>,
        prior: FloatTensor<Self>,
        with_derivatives: bool,
    ) -> (FloatTensor<Self>, Option<[FloatTensor<Self>; 2]>);
}

#[inline(always)]
fn values_loop(s: &[f32], p: &[f32], out: &mut [f32]) {
    for ((o, &s), &p) in out.iter_mut().zip(s).zip(p) {
        *o = (s - p) * (ln_f32(s + EPSILON) - ln_f32(p + EPSILON));
    }
}

#[inline(always)]
fn values_and_derivatives_loop(
    s: &[f32],
    p: &[f32],
    out: &mut [f32],
    d_series: &mut [f32],
    d_prior: &mut [f32],
) {
    let outputs = out
        .iter_mut()
        .zip(d_series.iter_mut())
        .zip(d_prior.iter_mut());
    for (((o, ds), dp), (&s, &p)) in outputs.zip(s.iter().zip(p)) {
        let d = ln_f32(s + EPSILON) - ln_f32(p + EPSILON);
        let gap = s - p;
        *o = gap * d;
        *ds = -(d + gap / (s + EPSILON));
        *dp = -d - gap / (p + EPSILON);
    }
}

wide_simd!(fn discrepancy_values = values_loop(s: &[f32], p: &[f32], out: &mut [f32]));
wide_simd!(fn discrepancy_values_and_derivatives = values_and_derivatives_loop(
    s: &[f32],
    p: &[f32],
    out: &mut [f32],
    d_series: &mut [f32],
    d_prior: &mut [f32],
));

/// Elements per parallel task: large enough that spawning is negligible, small enough that a
/// batch of attention maps (millions of values) spreads over every core.
const CHUNK: usize = 1 << 16;

impl DiscrepancyKernels for Flex {
    fn discrepancy_forward(
        series: FloatTensor<Self>,
        prior: FloatTensor<Self>,
        with_derivatives: bool,
    ) -> (FloatTensor<Self>, Option<[FloatTensor<Self>; 2]>) {
        let shape = series.shape().to_vec();
        assert_eq!(
            shape,
            prior.shape().to_vec(),
            "series and prior associations have one shape"
        );
        let (s, p) = (values(&series), values(&prior));
        let n = s.len();
        let mut out = vec![0.0; n];
        if !with_derivatives {
            out.par_chunks_mut(CHUNK)
                .zip(s.par_chunks(CHUNK).zip(p.par_chunks(CHUNK)))
                .for_each(|(o, (s, p))| discrepancy_values(s, p, o));
            return (tensor(out, shape), None);
        }
        let (mut d_series, mut d_prior) = (vec![0.0; n], vec![0.0; n]);
        out.par_chunks_mut(CHUNK)
            .zip(
                d_series
                    .par_chunks_mut(CHUNK)
                    .zip(d_prior.par_chunks_mut(CHUNK)),
            )
            .zip(s.par_chunks(CHUNK).zip(p.par_chunks(CHUNK)))
            .for_each(|((o, (ds, dp)), (s, p))| {
                discrepancy_values_and_derivatives(s, p, o, ds, dp)
            });
        (
            tensor(out, shape.clone()),
            Some([tensor(d_series, shape.clone()), tensor(d_prior, shape)]),
        )
    }
}

impl DiscrepancyBackend for Flex {
    fn association_discrepancy(
        series: FloatTensor<Self>,
        prior: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::discrepancy_forward(series, prior, false).0
    }
}

#[derive(Debug)]
struct DiscrepancyStep;

impl<B: Backend> Backward<B, 2> for DiscrepancyStep {
    /// The minimax derivatives with respect to the series and the prior.
    type State = [FloatTensor<B>; 2];

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [d_series, d_prior] = ops.state;
        let [series, prior] = ops.parents;
        if let Some(node) = series {
            grads.register::<B>(node.id, B::float_mul(grad.clone(), d_series));
        }
        if let Some(node) = prior {
            grads.register::<B>(node.id, B::float_mul(grad, d_prior));
        }
    }
}

impl<B: DiscrepancyKernels, C: CheckpointStrategy> DiscrepancyBackend for Autodiff<B, C> {
    fn association_discrepancy(
        series: FloatTensor<Self>,
        prior: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let nodes = [series.node(), prior.node()];
        let inputs = [series, prior].map(|t| t.into_primitive());
        let [series, prior] = inputs;
        match DiscrepancyStep
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, derivatives) = B::discrepancy_forward(series, prior, true);
                prep.finish(derivatives.expect("derivatives were asked for"), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::discrepancy_forward(series, prior, false).0),
        }
    }
}

/// (S − P)(ln(S + ε) − ln(P + ε)) element-wise: summed over a row, the symmetric KL divergence
/// between two attention distributions; differentiated the minimax way (module docs).
pub fn association_discrepancy<const D: usize>(series: Tensor<D>, prior: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as DiscrepancyBackend>::association_discrepancy(
        series.into_dispatch(),
        prior.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[f32], device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len() / 4, 4]),
            device,
        )
    }

    /// The fused values and gradients equal the authors' four KL terms composed from burn ops,
    /// with their detaches: −D(S, P̸) − D(P̸, S) for the series, D(P, S̸) + D(S̸, P) for the prior.
    #[test]
    fn fused_values_and_minimax_gradients_equal_the_composed_ones() {
        let device = crate::device().autodiff();
        // Rows of two distributions, some entries near zero where ε matters.
        let s = [
            0.7f32, 0.2, 0.1, 0.0, 0.25, 0.25, 0.25, 0.25, 0.97, 0.01, 0.01, 0.01,
        ];
        let p = [
            0.4f32, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4, 0.00001, 0.5, 0.3, 0.19999,
        ];
        let weights = rows(
            &[1.0, 2.0, 0.5, 1.5, 0.3, 0.7, 1.1, 0.9, 2.5, 1.2, 0.4, 0.8],
            &device,
        );
        let kl = |a: Tensor<2>, b: Tensor<2>| {
            a.clone() * (a.add_scalar(EPSILON as f64).log() - b.add_scalar(EPSILON as f64).log())
        };
        let run = |fused: bool| {
            let (s, p) = (
                rows(&s, &device).require_grad(),
                rows(&p, &device).require_grad(),
            );
            let (value, loss) = if fused {
                let v = association_discrepancy(s.clone(), p.clone());
                (v.clone(), (v * weights.clone()).sum())
            } else {
                let series_term =
                    kl(s.clone(), p.clone().detach()) + kl(p.clone().detach(), s.clone());
                let prior_term =
                    kl(p.clone(), s.clone().detach()) + kl(s.clone().detach(), p.clone());
                let value = kl(s.clone(), p.clone()) + kl(p.clone(), s.clone());
                (value, ((prior_term - series_term) * weights.clone()).sum())
            };
            let grads = loss.backward();
            let grad = |t: &Tensor<2>| crate::to_vec(t.grad(&grads).unwrap());
            (crate::to_vec(value), grad(&s), grad(&p))
        };
        let (fused, composed) = (run(true), run(false));
        let close = |a: &[f32], b: &[f32], what: &str| {
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{what}[{i}]: {a} vs {b}"
                );
            }
        };
        close(&fused.0, &composed.0, "value");
        close(&fused.1, &composed.1, "d/dseries");
        close(&fused.2, &composed.2, "d/dprior");
    }
}
