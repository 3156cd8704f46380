//! A trained [`Recurrent`] stack's weights for scoring on slices, one batch per core (see
//! [`crate::infer`] for why scoring leaves burn tensors).

use super::kernels::{self, Cell, Dims, Weights};
use super::layer::Recurrent;
use crate::to_vec;

/// One layer's weights in PyTorch's layout.
#[derive(Debug, Clone)]
struct LayerWeights {
    input: usize,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

/// The weights of a [`Recurrent`] stack, copied for [`RecurrentWeights::forward`].
#[derive(Debug, Clone)]
pub struct RecurrentWeights {
    cell: Cell,
    hidden: usize,
    layers: Vec<LayerWeights>,
}

impl RecurrentWeights {
    /// Every hidden state of the last layer, `[batch, steps, hidden]`, for `x`
    /// `[batch, steps, input]`, computed on the calling thread.
    pub fn forward(&self, x: &[f32], batch: usize, steps: usize) -> Vec<f32> {
        let mut h = x.to_vec();
        for layer in &self.layers {
            let dims = Dims {
                batch,
                steps,
                input: layer.input,
                hidden: self.hidden,
            };
            let weights = Weights {
                w_ih: &layer.w_ih,
                w_hh: &layer.w_hh,
                b_ih: &layer.b_ih,
                b_hh: &layer.b_hh,
            };
            h = kernels::forward_on_this_thread(self.cell, dims, &h, weights);
        }
        h
    }

    /// Hidden units of every layer.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
}

impl Recurrent {
    /// The trained weights, for scoring with [`RecurrentWeights::forward`].
    pub fn inference_weights(&self) -> RecurrentWeights {
        RecurrentWeights {
            cell: self.cell(),
            hidden: self.hidden(),
            layers: self
                .layers()
                .iter()
                .map(|layer| {
                    let [w_ih, w_hh] = layer.weights().map(|w| w.val());
                    let [b_ih, b_hh] = layer.biases().map(|b| to_vec(b.val()));
                    LayerWeights {
                        input: w_ih.dims()[1],
                        w_ih: to_vec(w_ih),
                        w_hh: to_vec(w_hh),
                        b_ih,
                        b_hh,
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate as nn;

    #[test]
    fn matches_the_burn_operation_for_both_cells_and_two_layers() {
        let device = nn::device();
        device.seed(2);
        let (batch, steps, input, hidden) = (3, 7, 4, 5);
        let x: Vec<f32> = (0..batch * steps * input)
            .map(|i| ((i * 13) % 17) as f32 / 17.0 - 0.5)
            .collect();
        for cell in [Cell::Gru, Cell::Lstm] {
            let layer = Recurrent::new(cell, input, hidden, 2, &device);
            let want =
                nn::to_vec(layer.forward(nn::tensor3(x.clone(), batch, steps, input, &device)));
            let got = layer.inference_weights().forward(&x, batch, steps);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{cell:?}: {g} vs {w}");
            }
        }
    }
}
