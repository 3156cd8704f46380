//! InterFusion's temporal path: five strided 1-D convolutions compress a window along time
//! (100 steps → 13 for the default window), five transposed convolutions expand it back. Every
//! layer keeps one channel per metric, has kernel 5 and a ReLU, with strides 2, 1, 2, 1, 2 —
//! the authors' `h_for_qz` / `h_for_px`. The compressed sequence parameterises the temporal
//! embedding z2; the expanded one conditions both the posterior and the prior of z1.
//!
//! Tensors are burn's convolution layout, `batch × metrics × steps`.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, ConvTranspose1d, ConvTranspose1dConfig};
use burn::nn::PaddingConfig1d;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Strides of the encoder's layers, in order; the decoder mirrors them.
const STRIDES: [usize; 5] = [2, 1, 2, 1, 2];
const KERNEL: usize = 5;
/// Two steps of zeros on each side: a stride-s layer maps L steps to ⌈L/s⌉ (TF's "same").
const PADDING: usize = KERNEL / 2;

/// The length of every layer's input, then the compressed length: `[window, …, compressed]`.
pub fn lengths(window: usize) -> [usize; 6] {
    let mut out = [window; 6];
    for (i, s) in STRIDES.iter().enumerate() {
        out[i + 1] = out[i].div_ceil(*s);
    }
    out
}

/// The compressed length of a window: z2 has this many steps per metric.
pub fn compressed_length(window: usize) -> usize {
    lengths(window)[STRIDES.len()]
}

/// q's convolutions: `batch × metrics × window` → `batch × metrics × compressed`.
#[derive(Module, Debug)]
pub struct TemporalEncoder {
    layers: Vec<Conv1d>,
}

/// p's transposed convolutions: `batch × metrics × compressed` → `batch × metrics × window`.
#[derive(Module, Debug)]
pub struct TemporalDecoder {
    layers: Vec<ConvTranspose1d>,
}

impl TemporalEncoder {
    pub fn new(metrics: usize, device: &Device) -> TemporalEncoder {
        TemporalEncoder {
            layers: STRIDES
                .iter()
                .map(|&s| {
                    Conv1dConfig::new(metrics, metrics, KERNEL)
                        .with_stride(s)
                        .with_padding(PaddingConfig1d::Explicit(PADDING, PADDING))
                        .init(device)
                })
                .collect(),
        }
    }

    pub fn forward(&self, mut x: Tensor<3>) -> Tensor<3> {
        for layer in &self.layers {
            x = relu(layer.forward(x));
        }
        x
    }
}

impl TemporalDecoder {
    /// A decoder that restores exactly `window` steps: a stride-2 layer gives 2L − 1 steps, plus
    /// one of output padding where the encoder's layer had rounded up from an even length.
    pub fn new(metrics: usize, window: usize, device: &Device) -> TemporalDecoder {
        let lengths = lengths(window);
        TemporalDecoder {
            layers: (0..STRIDES.len())
                .rev()
                .map(|i| {
                    let (wanted, from) = (lengths[i], lengths[i + 1]);
                    let produced = (from - 1) * STRIDES[i] + 1;
                    ConvTranspose1dConfig::new([metrics, metrics], KERNEL)
                        .with_stride(STRIDES[i])
                        .with_padding(PADDING)
                        .with_padding_out(wanted - produced)
                        .init(device)
                })
                .collect(),
        }
    }

    pub fn forward(&self, mut z: Tensor<3>) -> Tensor<3> {
        for layer in &self.layers {
            z = relu(layer.forward(z));
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn;

    #[test]
    fn the_decoder_restores_every_window_length_the_encoder_compresses() {
        assert_eq!(lengths(100), [100, 50, 50, 25, 25, 13]);
        let device = nn::device();
        for window in [1, 2, 7, 20, 64, 100, 101] {
            let encoder = TemporalEncoder::new(3, &device);
            let decoder = TemporalDecoder::new(3, window, &device);
            let x = Tensor::<3>::ones([2, 3, window], &device);
            let h = encoder.forward(x);
            assert_eq!(
                h.dims(),
                [2, 3, compressed_length(window)],
                "window {window}"
            );
            assert_eq!(decoder.forward(h).dims(), [2, 3, window], "window {window}");
        }
    }
}
