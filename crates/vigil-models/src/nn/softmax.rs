//! Softmax over the last dimension as one operation, with its own backward.
//!
//! burn's softmax is four tensor ops (max, subtract, exp, normalise), each a pass with libm's
//! `expf` for the exponential; attention calls it on every head of every layer. Here one pass
//! per row uses the branch-free exponential of [`super::sigmoid`], and the backward is the
//! closed form dx = s ⊙ (g − Σ g ⊙ s) per row.

use super::sigmoid::exp_f32;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::prelude::*;

/// Softmax of every row (last dimension) of a row-major buffer, in place.
fn softmax_rows(values: &mut [f32], width: usize) {
    for row in values.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = exp_f32(*v - max);
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// dx = s ⊙ (g − Σ g ⊙ s) for every row.
fn softmax_rows_backward(s: &[f32], g: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; s.len()];
    for ((s, g), o) in s
        .chunks_exact(width)
        .zip(g.chunks_exact(width))
        .zip(out.chunks_exact_mut(width))
    {
        let dot: f32 = s.iter().zip(g).map(|(a, b)| a * b).sum();
        for ((o, s), g) in o.iter_mut().zip(s).zip(g) {
            *o = s * (g - dot);
        }
    }
    out
}

fn contiguous_values(t: &FloatTensor<Flex>) -> Vec<f32> {
    match t.as_slice::<f32>() {
        Some(s) => s.to_vec(),
        None => t
            .to_contiguous()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("a float tensor converts to f32"),
    }
}

/// Softmax over the last dimension as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait SoftmaxBackend: Backend {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The backward kernel, on a backend whose tensors we can read.
pub trait SoftmaxKernels: Backend {
    /// dx from the forward output `s` and the output gradient.
    fn softmax_last_backward(s: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl SoftmaxBackend for Flex {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.layout().shape().clone();
        let width = shape[shape.num_dims() - 1];
        let mut values = contiguous_values(&x);
        softmax_rows(&mut values, width.max(1));
        Flex::float_from_data(TensorData::new(values, shape), &Default::default())
    }
}

impl SoftmaxKernels for Flex {
    fn softmax_last_backward(s: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = s.layout().shape().clone();
        let width = shape[shape.num_dims() - 1];
        let out = softmax_rows_backward(
            &contiguous_values(&s),
            &contiguous_values(&grad),
            width.max(1),
        );
        Flex::float_from_data(TensorData::new(out, shape), &Default::default())
    }
}

#[derive(Debug)]
struct SoftmaxStep;

impl<B: SoftmaxKernels> Backward<B, 1> for SoftmaxStep {
    /// The output s.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(parent)] = ops.parents {
            grads.register::<B>(parent.id, B::softmax_last_backward(ops.state, grad));
        }
    }
}

impl<B: SoftmaxBackend + SoftmaxKernels, C: CheckpointStrategy> SoftmaxBackend for Autodiff<B, C> {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let node = x.node();
        let out = B::softmax_last(x.into_primitive());
        match SoftmaxStep.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// Softmax over the last dimension of `x`, differentiable.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as SoftmaxBackend>::softmax_last(
        x.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_burns_softmax_forward_and_backward() {
        let device = crate::nn::device().autodiff();
        device.seed(5);
        let x = Tensor::<3>::random(
            [2, 3, 7],
            burn::tensor::Distribution::Normal(0.0, 3.0),
            &device,
        );
        let probe = Tensor::<3>::random(
            [2, 3, 7],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ours_x = x.clone().detach().require_grad();
        let theirs_x = x.detach().require_grad();
        let ours = softmax_last(ours_x.clone());
        let theirs = burn::tensor::activation::softmax(theirs_x.clone(), 2);
        let g_ours = (ours.clone() * probe.clone()).sum().backward();
        let g_theirs = (theirs.clone() * probe).sum().backward();
        let v = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in v(ours).iter().zip(v(theirs)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let (ga, gb) = (
            ours_x.grad(&g_ours).unwrap(),
            theirs_x.grad(&g_theirs).unwrap(),
        );
        let v = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in v(ga).iter().zip(v(gb)) {
            assert!((a - b).abs() < 1e-5, "gradient {a} vs {b}");
        }
    }
}
