//! The attention core ([`kernels`]) as one burn operation with its own backward pass, through
//! burn's `#[backend_extension]` for flex and `Autodiff<flex>` (as the fused recurrent layers do;
//! see `rnn/extension.rs`). On flex (scoring, no gradients) the op runs without dropout, like
//! [`crate::Dropout`]; on the autodiff backend it draws the dropout mask on the attention
//! weights from the same seeded generator and keeps it, with the weights, for the backward pass.

use super::kernels::{self, Dims};
use crate::dropout::keep_mask;
use crate::flex_values::{tensor, values};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::TensorMetadata;
use burn::backend::{backend_extension, Autodiff, Backend, Flex};

/// `softmax(q·kᵀ) · v` per head for `q` `[batch, lq, d]` (already scaled), `k` and `v`
/// `[batch, lk, d]`; dropout with probability `dropout` on the attention weights while training.
#[backend_extension(Flex, Autodiff)]
pub trait AttentionBackend: Backend {
    fn attention_core(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
        dropout: f64,
    ) -> FloatTensor<Self>;
}

/// The concrete kernels behind [`AttentionBackend`], on a backend whose tensors we can read.
pub trait AttentionKernels: Backend {
    /// Context and attention weights (before the mask).
    fn attention_forward(
        inputs: [FloatTensor<Self>; 3],
        heads: usize,
        keep: Option<&[f32]>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients for `[q, k, v]`.
    fn attention_backward(
        inputs: [FloatTensor<Self>; 3],
        weights: FloatTensor<Self>,
        heads: usize,
        keep: Option<&[f32]>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3];
}

fn dims_of(q: &FloatTensor<Flex>, k: &FloatTensor<Flex>, heads: usize) -> Dims {
    let (qs, ks) = (q.layout().shape(), k.layout().shape());
    assert!(
        qs.num_dims() == 3 && ks.num_dims() == 3,
        "attention takes [batch, length, d] tensors"
    );
    Dims {
        batch: qs[0],
        lq: qs[1],
        lk: ks[1],
        d: qs[2],
        heads,
    }
}

impl AttentionKernels for Flex {
    fn attention_forward(
        inputs: [FloatTensor<Self>; 3],
        heads: usize,
        keep: Option<&[f32]>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [q, k, v] = &inputs;
        let dims = dims_of(q, k, heads);
        let (context, weights) = kernels::forward(dims, &values(q), &values(k), &values(v), keep);
        (
            tensor(context, vec![dims.batch, dims.lq, dims.d]),
            tensor(weights, vec![dims.weights_len()]),
        )
    }

    fn attention_backward(
        inputs: [FloatTensor<Self>; 3],
        weights: FloatTensor<Self>,
        heads: usize,
        keep: Option<&[f32]>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        let [q, k, v] = &inputs;
        let dims = dims_of(q, k, heads);
        let (dq, dk, dv) = kernels::backward(
            dims,
            &values(q),
            &values(k),
            &values(v),
            keep,
            &values(&weights),
            &values(&grad),
        );
        [
            tensor(dq, vec![dims.batch, dims.lq, dims.d]),
            tensor(dk, vec![dims.batch, dims.lk, dims.d]),
            tensor(dv, vec![dims.batch, dims.lk, dims.d]),
        ]
    }
}

impl AttentionBackend for Flex {
    fn attention_core(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
        _dropout: f64,
    ) -> FloatTensor<Self> {
        Self::attention_forward([q, k, v], heads, None).0
    }
}

/// The backward step registered in burn's graph.
#[derive(Debug)]
struct AttentionStep;

/// What the backward step needs from the forward pass.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    inputs: [FloatTensor<B>; 3],
    weights: FloatTensor<B>,
    keep: Option<Vec<f32>>,
    heads: usize,
}

impl<B: AttentionKernels> Backward<B, 3> for AttentionStep {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let Saved {
            inputs,
            weights,
            keep,
            heads,
        } = ops.state;
        let input_grads = B::attention_backward(inputs, weights, heads, keep.as_deref(), grad);
        for (parent, grad) in ops.parents.into_iter().zip(input_grads) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: AttentionKernels, C: CheckpointStrategy> AttentionBackend for Autodiff<B, C> {
    fn attention_core(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
        dropout: f64,
    ) -> FloatTensor<Self> {
        let nodes = [q.node(), k.node(), v.node()];
        let inputs = [q.into_primitive(), k.into_primitive(), v.into_primitive()];
        // One mask value per attention weight (in the kernels' layout).
        let keep = (dropout > 0.0).then(|| {
            let (qs, ks) = (inputs[0].shape(), inputs[1].shape());
            let dims = Dims {
                batch: qs[0],
                lq: qs[1],
                lk: ks[1],
                d: qs[2],
                heads,
            };
            keep_mask(dims.weights_len(), dropout)
        });
        match AttentionStep.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (context, weights) =
                    B::attention_forward(inputs.clone(), heads, keep.as_deref());
                let saved = Saved {
                    inputs,
                    weights,
                    keep,
                    heads,
                };
                prep.finish(saved, context)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::attention_forward(inputs, heads, keep.as_deref()).0)
            }
        }
    }
}
