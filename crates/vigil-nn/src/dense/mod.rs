//! A dense layer and its activation as one differentiable operation: what every MLP in the zoo
//! (the dense VAE, DAGMM, Deep SVDD, USAD, ...) trains through.
//!
//! Why not burn's `Linear` followed by an activation: through tensors, one layer is a product,
//! a broadcast bias add and an activation forward — each allocating its output and each
//! splitting its work over the cores — and a dozen more such passes backward. On the dense
//! VAE's shapes (batch 256, 380 → 100 → 100 → 8) those hand-offs and copies made training
//! slower than PyTorch's on a 2-core AVX-512 Xeon (bench/results/speed-vae.md). The fused
//! operation does one gemm into a buffer that already holds the bias, the activation in place,
//! and backward only the products whose gradients some parent needs.

mod extension;
mod kernels;

use super::Activation;
use burn::backend::Dispatch;
use burn::nn::Linear;
use burn::prelude::*;
use extension::DenseBackend;

/// `act(layer(x))` as one operation with its own backward pass, over the last axis of `x`.
pub fn dense<const D: usize>(layer: &Linear, x: Tensor<D>, act: Activation) -> Tensor<D> {
    let (x, weight) = (x.into_dispatch(), layer.weight.val().into_dispatch());
    let out = match &layer.bias {
        Some(bias) => {
            <Dispatch as DenseBackend>::dense_layer(x, weight, bias.val().into_dispatch(), act)
        }
        None => <Dispatch as DenseBackend>::dense_layer_unbiased(x, weight, act),
    };
    Tensor::from_dispatch(out)
}
