//! The two networks of MTAD-FL's dual feature extractor (SE-EA-EDN, §3.3 of the paper).
//!
//! Both read one sample as a short signal over the metrics: `batch × channels × metrics`, with
//! one channel per time step of the window (the paper's samples are single time steps: one
//! channel). Three convolutional layers (`conv1..3`, each followed by its batch norm `bn1..3`
//! and a ReLU, Eq. 2) extract features; a linear classifier (`classifier`) gives two logits,
//! normal and anomalous.
//!
//! - **Local** (Fig. 2, top): the convolutions, adaptive *max* pooling over the metrics, the
//!   classifier.
//! - **Transfer** (Fig. 2, bottom): the same convolutions with a squeeze-excitation module after
//!   the first two (`squeeze1`, `squeeze2`, Eqs. 6–9), external attention over the third's
//!   output (`attention`,
//!   Eq. 10 in the form of Guo et al.: two linear memories and a double normalisation), adaptive
//!   *mean* pooling, the classifier.
//!
//! The convolutions have the same names and shapes in both networks: they are the hidden layers
//! LGF-PKT measures and moves from a node's Local model into its peers' Transfer models
//! (Eqs. 11–19). The batch norms stay with their node (their statistics describe its data).
//!
//! The paper gives neither the filter counts nor the kernel sizes; the defaults (128, 256, 128
//! filters, kernels 7, 5, 3) are those of the FCN block the architecture extends (MLSTM-FCN,
//! Karim et al. 2019), with "same" padding so that any number of metrics fits.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, softmax};

/// Kernel sizes of the three convolutions.
pub const KERNELS: [usize; 3] = [7, 5, 3];

/// The shape of a network: input channels (the window), filters per convolution, classes.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Input channels: the window's time steps.
    pub channels: usize,
    /// The signal's length: the number of metrics.
    pub metrics: usize,
    /// Filters of conv1, conv2, conv3.
    pub filters: [usize; 3],
}

fn conv(channels_in: usize, channels_out: usize, kernel: usize, device: &Device) -> Conv1d {
    Conv1dConfig::new(channels_in, channels_out, kernel)
        .with_padding(PaddingConfig1d::Same)
        .init(device)
}

/// The convolutions both networks share by name: what travels between nodes.
#[derive(Module, Debug)]
pub struct Convolutions {
    conv1: Conv1d,
    bn1: BatchNorm,
    conv2: Conv1d,
    bn2: BatchNorm,
    conv3: Conv1d,
    bn3: BatchNorm,
}

impl Convolutions {
    fn new(shape: Shape, device: &Device) -> Convolutions {
        let [f1, f2, f3] = shape.filters;
        let [k1, k2, k3] = KERNELS;
        Convolutions {
            conv1: conv(shape.channels, f1, k1, device),
            bn1: BatchNormConfig::new(f1).init(device),
            conv2: conv(f1, f2, k2, device),
            bn2: BatchNormConfig::new(f2).init(device),
            conv3: conv(f2, f3, k3, device),
            bn3: BatchNormConfig::new(f3).init(device),
        }
    }

    /// Eq. 2 for layer 1, 2 or 3: ReLU(BN(W ⊗ x + b)).
    fn layer(&self, i: usize, x: Tensor<3>) -> Tensor<3> {
        match i {
            1 => relu(self.bn1.forward(self.conv1.forward(x))),
            2 => relu(self.bn2.forward(self.conv2.forward(x))),
            _ => relu(self.bn3.forward(self.conv3.forward(x))),
        }
    }
}

/// The names of the hidden layers LGF-PKT moves (the paper's Conv1, Conv2, Conv3).
pub const HIDDEN_LAYERS: [&str; 3] = ["conv1", "conv2", "conv3"];

/// A classifier of samples `batch × channels × metrics` into two logits.
pub trait Classifier: Module + Clone + std::fmt::Debug {
    /// `batch × 2` logits (normal, anomalous).
    fn logits(&self, x: Tensor<3>) -> Tensor<2>;
}

/// The Local model: convolutions, adaptive max pooling, classifier.
#[derive(Module, Debug)]
pub struct LocalNet {
    features: Convolutions,
    classifier: Linear,
}

impl LocalNet {
    pub fn new(shape: Shape, device: &Device) -> LocalNet {
        LocalNet {
            features: Convolutions::new(shape, device),
            classifier: LinearConfig::new(shape.filters[2], 2).init(device),
        }
    }
}

impl Classifier for LocalNet {
    fn logits(&self, x: Tensor<3>) -> Tensor<2> {
        let f = &self.features;
        let h = f.layer(3, f.layer(2, f.layer(1, x)));
        // Adaptive max pooling to one position: the strongest response of each filter.
        let pooled: Tensor<2> = h.max_dim(2).squeeze_dim(2);
        self.classifier.forward(pooled)
    }
}

/// Squeeze-excitation (Hu et al.): each channel scaled by a gate computed from every channel's
/// mean (Eqs. 7–9); no biases, as in the reference design.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    reduce: Linear,
    expand: Linear,
}

impl SqueezeExcitation {
    fn new(channels: usize, reduction: usize, device: &Device) -> SqueezeExcitation {
        let squeezed = (channels / reduction).max(1);
        SqueezeExcitation {
            reduce: LinearConfig::new(channels, squeezed)
                .with_bias(false)
                .init(device),
            expand: LinearConfig::new(squeezed, channels)
                .with_bias(false)
                .init(device),
        }
    }

    fn forward(&self, u: Tensor<3>) -> Tensor<3> {
        let z: Tensor<2> = u.clone().mean_dim(2).squeeze_dim(2);
        let s = sigmoid(self.expand.forward(relu(self.reduce.forward(z))));
        u * s.unsqueeze_dim(2)
    }
}

/// External attention (Guo et al.): the features attend to `memory` learnt slots shared by all
/// samples — a linear map to the slots, softmax over the channels, each row renormalised over the
/// slots, a linear map back.
#[derive(Module, Debug)]
pub struct ExternalAttention {
    keys: Linear,
    values: Linear,
}

impl ExternalAttention {
    fn new(length: usize, memory: usize, device: &Device) -> ExternalAttention {
        // Guo et al. draw the memories from N(0, 0.001²): the attention starts near uniform.
        let small = burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.001,
        };
        ExternalAttention {
            keys: LinearConfig::new(length, memory)
                .with_bias(false)
                .with_initializer(small.clone())
                .init(device),
            values: LinearConfig::new(memory, length)
                .with_bias(false)
                .with_initializer(small)
                .init(device),
        }
    }

    /// `batch × channels × length` in and out.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let attention = softmax(self.keys.forward(x), 1);
        let sums = attention.clone().sum_dim(2).add_scalar(1e-9);
        self.values.forward(attention / sums)
    }
}

/// The Transfer model: convolutions with squeeze-excitation, external attention, adaptive mean
/// pooling, classifier.
#[derive(Module, Debug)]
pub struct TransferNet {
    features: Convolutions,
    squeeze1: SqueezeExcitation,
    squeeze2: SqueezeExcitation,
    attention: ExternalAttention,
    classifier: Linear,
}

impl TransferNet {
    pub fn new(shape: Shape, reduction: usize, memory: usize, device: &Device) -> TransferNet {
        let [f1, f2, f3] = shape.filters;
        TransferNet {
            features: Convolutions::new(shape, device),
            squeeze1: SqueezeExcitation::new(f1, reduction, device),
            squeeze2: SqueezeExcitation::new(f2, reduction, device),
            attention: ExternalAttention::new(shape.metrics, memory, device),
            classifier: LinearConfig::new(f3, 2).init(device),
        }
    }
}

impl Classifier for TransferNet {
    fn logits(&self, x: Tensor<3>) -> Tensor<2> {
        let f = &self.features;
        let h = self.squeeze1.forward(f.layer(1, x));
        let h = self.squeeze2.forward(f.layer(2, h));
        let h = self.attention.forward(f.layer(3, h));
        let pooled: Tensor<2> = h.mean_dim(2).squeeze_dim(2);
        self.classifier.forward(pooled)
    }
}
