//! The fused dense layer as one burn operation with its own backward pass (the pattern of
//! `nn::rnn::extension`): flex runs [`kernels::forward`]; `Autodiff<flex>` also keeps the input,
//! the weight and the output in the graph and hands burn [`kernels::backward`]'s gradients.
//! Other backends (CUDA, wgpu) are not listed: the fused layer is a CPU kernel.

use super::kernels::{self, Dims, Wanted};
use crate::flex_values::{tensor, values};
use crate::Activation;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Flex};

/// `act(x · weight + bias)` over the last axis of `x` (any rank); `weight` is
/// `[inputs, outputs]`.
#[backend_extension(Flex, Autodiff)]
pub trait DenseBackend: Backend {
    fn dense_layer(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// [`dense_layer`](DenseBackend::dense_layer) without a bias.
    fn dense_layer_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self>;
}

/// The concrete kernels behind [`DenseBackend`], on a backend whose tensors we can read.
pub trait DenseKernels: Backend {
    fn dense_forward(
        x: &FloatTensor<Self>,
        weight: &FloatTensor<Self>,
        bias: Option<&FloatTensor<Self>>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// Gradients of x, weight and bias, each only where `wanted`.
    fn dense_backward(
        saved: &Saved<Self>,
        grad_y: FloatTensor<Self>,
        wanted: Wanted,
    ) -> [Option<FloatTensor<Self>>; 3];
}

/// The layer's dimensions and the output's shape, from `x` and `weight`.
fn dims_of(x: &FloatTensor<Flex>, weight: &FloatTensor<Flex>) -> (Dims, Vec<usize>) {
    let shape = x.layout().shape();
    let w = weight.layout().shape();
    let rank = shape.num_dims();
    assert!(rank >= 1, "a dense layer needs at least one axis");
    let inputs = shape[rank - 1];
    assert_eq!(
        w[0], inputs,
        "dense: {inputs} inputs per row but the weight has {} rows",
        w[0]
    );
    let leading: Vec<usize> = (0..rank - 1).map(|i| shape[i]).collect();
    let rows = leading.iter().product();
    let mut out_shape = leading;
    out_shape.push(w[1]);
    (
        Dims {
            rows,
            inputs,
            outputs: w[1],
        },
        out_shape,
    )
}

impl DenseKernels for Flex {
    fn dense_forward(
        x: &FloatTensor<Self>,
        weight: &FloatTensor<Self>,
        bias: Option<&FloatTensor<Self>>,
        act: Activation,
    ) -> FloatTensor<Self> {
        let (d, out_shape) = dims_of(x, weight);
        let bias = bias.map(values);
        let y = kernels::forward(d, &values(x), &values(weight), bias.as_deref(), act);
        tensor(y, out_shape)
    }

    fn dense_backward(
        saved: &Saved<Self>,
        grad_y: FloatTensor<Self>,
        wanted: Wanted,
    ) -> [Option<FloatTensor<Self>>; 3] {
        let (d, _) = dims_of(&saved.x, &saved.weight);
        let g = kernels::backward(
            d,
            &values(&saved.x),
            &values(&saved.weight),
            &values(&saved.y),
            &values(&grad_y),
            saved.act,
            wanted,
        );
        let x_shape = saved.x.layout().shape().to_vec();
        [
            g.x.map(|v| tensor(v, x_shape)),
            g.weight.map(|v| tensor(v, vec![d.inputs, d.outputs])),
            g.bias.map(|v| tensor(v, vec![d.outputs])),
        ]
    }
}

impl DenseBackend for Flex {
    fn dense_layer(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        Self::dense_forward(&x, &weight, Some(&bias), act)
    }

    fn dense_layer_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        Self::dense_forward(&x, &weight, None, act)
    }
}

/// What the backward step needs from the forward pass.
#[derive(Debug, Clone)]
pub struct Saved<B: Backend> {
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    y: FloatTensor<B>,
    act: Activation,
}

/// The backward step registered in burn's graph; `N` is 3 with a bias, 2 without.
#[derive(Debug)]
struct DenseStep;

impl<B: DenseKernels, const N: usize> Backward<B, N> for DenseStep {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_y = grads.consume::<B>(&ops.node);
        let wanted = Wanted {
            x: ops.parents[0].is_some(),
            weight: ops.parents[1].is_some(),
            bias: N == 3 && ops.parents[2].is_some(),
        };
        let input_grads = B::dense_backward(&ops.state, grad_y, wanted);
        for (parent, grad) in ops.parents.into_iter().zip(input_grads) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Runs the forward kernel and, when any input is tracked, records [`DenseStep`] with the
/// tensors its backward needs.
fn tracked_dense<B: DenseKernels, C: CheckpointStrategy, const N: usize>(
    nodes: [NodeGuard; N],
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
    act: Activation,
) -> FloatTensor<Autodiff<B, C>> {
    let y = B::dense_forward(&x, &weight, bias.as_ref(), act);
    match DenseStep.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                x,
                weight,
                y: y.clone(),
                act,
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

impl<B: DenseKernels, C: CheckpointStrategy> DenseBackend for Autodiff<B, C> {
    fn dense_layer(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        tracked_dense::<B, C, 3>(
            nodes,
            x.into_primitive(),
            weight.into_primitive(),
            Some(bias.into_primitive()),
            act,
        )
    }

    fn dense_layer_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node()];
        tracked_dense::<B, C, 2>(
            nodes,
            x.into_primitive(),
            weight.into_primitive(),
            None,
            act,
        )
    }
}
