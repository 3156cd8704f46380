//! A sigmoid whose exponential the compiler can vectorise.
//!
//! Why: flex computes sigmoid one element at a time through libm's `expf`; profiling USAD's
//! training (perf, SMD shapes) put a quarter of the time there, because every decoder ends in
//! a sigmoid over the whole window. This op evaluates e^x with `fast_math::exp_f32` over a
//! slice, which LLVM turns into SIMD code, and registers its own backward (grad · s · (1 − s)).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::{ActivationOps, FloatTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::prelude::*;

use super::fast_math::exp_f32;

/// 1 / (1 + e^−x) over a slice, in place.
pub(crate) fn sigmoid_in_place(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = 1.0 / (1.0 + exp_f32(-*v));
    }
}

/// The sigmoid as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait SigmoidBackend: Backend {
    fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl SigmoidBackend for Flex {
    fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.layout().shape().clone();
        let mut values = match x.as_slice::<f32>() {
            Some(s) => s.to_vec(),
            // Another dtype or a strided view: flex's own sigmoid handles it.
            None => return <Flex as ActivationOps<Flex>>::sigmoid(x),
        };
        sigmoid_in_place(&mut values);
        Flex::float_from_data(TensorData::new(values, shape), &Default::default())
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

impl<B: SigmoidBackend, C: CheckpointStrategy> SigmoidBackend for Autodiff<B, C> {
    fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let node = x.node();
        let out = B::fast_sigmoid(x.into_primitive());
        match SigmoidStep.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// Element-wise sigmoid of `x`, differentiable (see the module docs for why not burn's).
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as SigmoidBackend>::fast_sigmoid(
        x.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_matches_the_formula_and_its_gradient() {
        let device = crate::nn::device().autodiff();
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
}
