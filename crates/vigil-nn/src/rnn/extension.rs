//! The fused recurrent layer as one burn operation with its own backward pass.
//!
//! burn's `#[backend_extension]` routes a call on the runtime-dispatched `Tensor` to the concrete
//! backend: flex for plain tensors, `Autodiff<flex>` for tensors that track gradients. The
//! autodiff implementation runs the flex kernels forward, keeps their cache in the graph, and
//! on `backward()` hands burn the gradients that [`kernels::backward`] computes.
//! Other backends (CUDA, wgpu) are not listed: the fused layer is a CPU kernel.

use super::kernels::{self, CacheView, Cell, Dims, Weights};
use crate::flex_values::{tensor, values};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Flex};
use std::borrow::Cow;

/// One recurrent layer over a whole batch-major sequence `[batch, steps, input]`, returning
/// every hidden state `[batch, steps, hidden]`.
#[backend_extension(Flex, Autodiff)]
pub trait RecurrentBackend: Backend {
    fn recurrent_sequence(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        cell: Cell,
    ) -> FloatTensor<Self>;
}

/// The concrete kernels behind [`RecurrentBackend`], on a backend whose tensors we can read.
pub trait RecurrentKernels: Backend {
    /// Forward pass that also returns the cache (gates, extra) as tensors.
    fn recurrent_forward(
        inputs: [FloatTensor<Self>; 5],
        cell: Cell,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients for `[x, w_ih, w_hh, b_ih, b_hh]`.
    fn recurrent_backward(
        inputs: [FloatTensor<Self>; 5],
        saved: [FloatTensor<Self>; 3],
        grad_h: FloatTensor<Self>,
        cell: Cell,
    ) -> [FloatTensor<Self>; 5];
}

/// The values of `[w_ih, w_hh, b_ih, b_hh]`, held while a kernel borrows them.
struct WeightValues<'a>([Cow<'a, [f32]>; 4]);

impl<'a> WeightValues<'a> {
    fn of(tensors: &'a [FloatTensor<Flex>; 4]) -> Self {
        WeightValues(tensors.each_ref().map(values))
    }

    fn view(&self) -> Weights<'_> {
        let [w_ih, w_hh, b_ih, b_hh] = &self.0;
        Weights {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }
}

fn dims_of(x: &FloatTensor<Flex>, w_hh: &FloatTensor<Flex>) -> Dims {
    let xs = x.layout().shape();
    let ws = w_hh.layout().shape();
    assert_eq!(
        xs.num_dims(),
        3,
        "a recurrent layer takes [batch, steps, input]"
    );
    Dims {
        batch: xs[0],
        steps: xs[1],
        input: xs[2],
        hidden: ws[1],
    }
}

impl RecurrentKernels for Flex {
    fn recurrent_forward(
        inputs: [FloatTensor<Self>; 5],
        cell: Cell,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [x, weights @ ..] = &inputs;
        let d = dims_of(x, &weights[1]);
        let weights = WeightValues::of(weights);
        let (h, cache) = kernels::forward(cell, d, &values(x), weights.view());
        let rows = d.batch * d.steps;
        let g = cell.gates() * d.hidden;
        (
            tensor(h, vec![d.batch, d.steps, d.hidden]),
            tensor(cache.gates, vec![rows, g]),
            tensor(cache.extra, vec![rows, d.hidden]),
        )
    }

    fn recurrent_backward(
        inputs: [FloatTensor<Self>; 5],
        saved: [FloatTensor<Self>; 3],
        grad_h: FloatTensor<Self>,
        cell: Cell,
    ) -> [FloatTensor<Self>; 5] {
        let [x, weights @ ..] = &inputs;
        let [h, gates, extra] = saved;
        let d = dims_of(x, &weights[1]);
        let weights = WeightValues::of(weights);
        let (gates, extra) = (values(&gates), values(&extra));
        let cache = CacheView {
            gates: &gates,
            extra: &extra,
        };
        let g = kernels::backward(
            cell,
            d,
            &values(x),
            weights.view(),
            &values(&h),
            cache,
            &values(&grad_h),
        );
        let gates_n = cell.gates() * d.hidden;
        [
            tensor(g.x, vec![d.batch, d.steps, d.input]),
            tensor(g.w_ih, vec![gates_n, d.input]),
            tensor(g.w_hh, vec![gates_n, d.hidden]),
            tensor(g.b_ih, vec![gates_n]),
            tensor(g.b_hh, vec![gates_n]),
        ]
    }
}

impl RecurrentBackend for Flex {
    fn recurrent_sequence(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        cell: Cell,
    ) -> FloatTensor<Self> {
        Self::recurrent_forward([x, w_ih, w_hh, b_ih, b_hh], cell).0
    }
}

/// The backward step registered in burn's graph.
#[derive(Debug)]
struct RecurrentStep;

/// Inputs, outputs and cache of the forward pass, kept for the backward step.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    inputs: [FloatTensor<B>; 5],
    outputs: [FloatTensor<B>; 3],
    cell: Cell,
}

impl<B: RecurrentKernels> Backward<B, 5> for RecurrentStep {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_h = grads.consume::<B>(&ops.node);
        let Saved {
            inputs,
            outputs,
            cell,
        } = ops.state;
        let input_grads = B::recurrent_backward(inputs, outputs, grad_h, cell);
        for (parent, grad) in ops.parents.into_iter().zip(input_grads) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: RecurrentKernels, C: CheckpointStrategy> RecurrentBackend for Autodiff<B, C> {
    fn recurrent_sequence(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        cell: Cell,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), w_ih.node(), w_hh.node(), b_ih.node(), b_hh.node()];
        let inputs = [
            x.into_primitive(),
            w_ih.into_primitive(),
            w_hh.into_primitive(),
            b_ih.into_primitive(),
            b_hh.into_primitive(),
        ];
        match RecurrentStep.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (h, gates, extra) = B::recurrent_forward(inputs.clone(), cell);
                let saved = Saved {
                    inputs,
                    outputs: [h.clone(), gates, extra],
                    cell,
                };
                prep.finish(saved, h)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::recurrent_forward(inputs, cell).0),
        }
    }
}
