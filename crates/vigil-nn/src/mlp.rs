//! A stack of dense layers, and the activations that follow a layer.

use crate::dense;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// Activation applied after a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// (e^x - e^-x) / (e^x + e^-x).
    Tanh,
    /// Identity.
    Linear,
}

/// A stack of dense layers with ReLU between them and a chosen output activation.
#[derive(Module, Debug)]
pub struct Mlp {
    pub(crate) layers: Vec<Linear>,
}

impl Mlp {
    /// Layers `sizes[0] -> sizes[1] -> ... -> sizes[n]`.
    pub fn new(sizes: &[usize], device: &Device) -> Mlp {
        Mlp {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
        }
    }

    /// Like [`Mlp::new`] but without bias terms (Deep SVDD needs them gone: with biases the
    /// network can map everything onto its centre and the loss collapses to zero).
    pub fn without_bias(sizes: &[usize], device: &Device) -> Mlp {
        Mlp {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).with_bias(false).init(device))
                .collect(),
        }
    }

    /// Forward pass: ReLU after every hidden layer, `output` after the last.
    pub fn forward(&self, mut x: Tensor<2>, output: Activation) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = dense(layer, x, if i == last { output } else { Activation::Relu });
        }
        x
    }
}
