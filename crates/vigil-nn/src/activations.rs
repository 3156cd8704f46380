//! Sigmoid and tanh whose exponentials the compiler can vectorise.
//!
//! Why: flex computes both one element at a time through libm (`expf`, `tanhf`/`expm1f`);
//! profiling put a quarter of USAD's training there (every decoder ends in a sigmoid over the
//! whole window) and two fifths of DAGMM's (tanh after every layer). These ops evaluate the
//! function with `fast_math` over a slice, which LLVM turns into SIMD code, and register their
//! own backward (grad · s · (1 − s), grad · (1 − t²)).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::{ActivationOps, FloatTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::prelude::*;

use super::fast_math::{exp_f32, tanh_f32};
use super::simd::wide_simd;

#[inline(always)]
fn sigmoid_loop(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = 1.0 / (1.0 + exp_f32(-*v));
    }
}

#[inline(always)]
fn tanh_loop(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = tanh_f32(*v);
    }
}

wide_simd!(
    /// 1 / (1 + e^−x) over a slice, in place.
    pub fn sigmoid_in_place = sigmoid_loop(values: &mut [f32])
);
wide_simd!(
    /// tanh over a slice, in place.
    pub fn tanh_in_place = tanh_loop(values: &mut [f32])
);

/// The activations as single backend operations.
#[backend_extension(Flex, Autodiff)]
pub trait FastActivationBackend: Backend {
    fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Applies `f` to a copy of a contiguous f32 tensor's values; `None` for another dtype or a
/// strided view (the caller falls back to flex's own op).
fn map_values(x: &FloatTensor<Flex>, f: fn(&mut [f32])) -> Option<FloatTensor<Flex>> {
    let mut values = x.as_slice::<f32>()?.to_vec();
    f(&mut values);
    let shape = x.layout().shape().clone();
    Some(Flex::float_from_data(
        TensorData::new(values, shape),
        &Default::default(),
    ))
}

impl FastActivationBackend for Flex {
    fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        map_values(&x, sigmoid_in_place)
            .unwrap_or_else(|| <Flex as ActivationOps<Flex>>::sigmoid(x))
    }

    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        map_values(&x, tanh_in_place).unwrap_or_else(|| Flex::float_tanh(x))
    }
}

#[derive(Debug)]
struct SigmoidStep;

impl<B: Backend> Backward<B, 1> for SigmoidStep {
    /// The output s.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(parent)] = ops.parents {
            grads.register::<B>(parent.id, B::sigmoid_backward(ops.state, grad));
        }
    }
}

#[derive(Debug)]
struct TanhStep;

impl<B: Backend> Backward<B, 1> for TanhStep {
    /// The output t.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(parent)] = ops.parents {
            let t = ops.state;
            // grad · (1 − t²) = grad − grad · t · t.
            let slope = B::float_mul(B::float_mul(grad.clone(), t.clone()), t);
            grads.register::<B>(parent.id, B::float_sub(grad, slope));
        }
    }
}

impl<B: FastActivationBackend, C: CheckpointStrategy> FastActivationBackend for Autodiff<B, C> {
    fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let node = x.node();
        let out = B::fast_sigmoid(x.into_primitive());
        match SigmoidStep.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let node = x.node();
        let out = B::fast_tanh(x.into_primitive());
        match TanhStep.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// Element-wise sigmoid of `x`, differentiable (see the module docs for why not burn's).
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FastActivationBackend>::fast_sigmoid(
        x.into_dispatch(),
    ))
}

/// Element-wise tanh of `x`, differentiable (see the module docs for why not burn's).
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FastActivationBackend>::fast_tanh(
        x.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_matches_the_formula_and_its_gradient() {
        let device = crate::device().autodiff();
        let values: Vec<f32> = (-40..=40).map(|v| v as f32 * 0.37).collect();
        let x = Tensor::<1>::from_data(TensorData::new(values.clone(), [values.len()]), &device)
            .require_grad();
        let s = sigmoid(x.clone());
        let grads = (s.clone() * s.clone()).sum().backward();
        let out = s.into_data().try_to_vec::<f32>().unwrap();
        let dx = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for ((v, o), g) in values.iter().zip(&out).zip(&dx) {
            let want = 1.0 / (1.0 + (-v).exp());
            assert!((o - want).abs() < 1e-6, "sigmoid({v}) = {o}, want {want}");
            let want_grad = 2.0 * want * want * (1.0 - want);
            assert!(
                (g - want_grad).abs() < 1e-6,
                "d/dx at {v}: {g}, want {want_grad}"
            );
        }
    }

    #[test]
    fn tanh_matches_the_formula_and_its_gradient() {
        let device = crate::device().autodiff();
        let values: Vec<f32> = (-60..=60)
            .map(|v| v as f32 * 0.11)
            .chain([1e-5, -3e-3])
            .collect();
        let x = Tensor::<1>::from_data(TensorData::new(values.clone(), [values.len()]), &device)
            .require_grad();
        let t = tanh(x.clone());
        let grads = (t.clone() * t.clone()).sum().backward();
        let out = t.into_data().try_to_vec::<f32>().unwrap();
        let dx = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for ((v, o), g) in values.iter().zip(&out).zip(&dx) {
            let want = (*v as f64).tanh();
            let error = (*o as f64 - want).abs();
            assert!(
                error <= 4e-7 * want.abs() + 1e-9,
                "tanh({v}) = {o}, want {want}"
            );
            let want_grad = 2.0 * want * (1.0 - want * want);
            assert!(
                (*g as f64 - want_grad).abs() < 1e-6,
                "d/dx at {v}: {g}, want {want_grad}"
            );
        }
    }
}
