//! [`Recurrent`]: a multi-layer LSTM or GRU over whole sequences, built on the fused kernel.

use super::extension::RecurrentBackend;
use super::kernels::Cell;
use burn::backend::Dispatch;
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::Distribution;

/// The weights of one layer, in PyTorch's layout (`weight_ih_l{k}` etc.).
#[derive(Module, Debug)]
pub struct RecurrentLayer {
    w_ih: Param<Tensor<2>>,
    w_hh: Param<Tensor<2>>,
    b_ih: Param<Tensor<1>>,
    b_hh: Param<Tensor<1>>,
}

impl RecurrentLayer {
    /// A layer from given weights (PyTorch layout), e.g. to import or compare with another
    /// implementation.
    pub fn from_weights(
        w_ih: Tensor<2>,
        w_hh: Tensor<2>,
        b_ih: Tensor<1>,
        b_hh: Tensor<1>,
    ) -> Self {
        RecurrentLayer {
            w_ih: Param::from_tensor(w_ih.detach()),
            w_hh: Param::from_tensor(w_hh.detach()),
            b_ih: Param::from_tensor(b_ih.detach()),
            b_hh: Param::from_tensor(b_hh.detach()),
        }
    }

    /// The weights `(w_ih, w_hh)`, e.g. to read their gradients.
    pub fn weights(&self) -> [&Param<Tensor<2>>; 2] {
        [&self.w_ih, &self.w_hh]
    }

    /// The biases `(b_ih, b_hh)`.
    pub fn biases(&self) -> [&Param<Tensor<1>>; 2] {
        [&self.b_ih, &self.b_hh]
    }
}

/// A stack of recurrent layers; layer k+1 reads the hidden states of layer k.
#[derive(Module, Debug)]
pub struct Recurrent {
    layers: Vec<RecurrentLayer>,
    /// 4 for an LSTM, 3 for a GRU (the gate count tells the cells apart in a saved record).
    gates: usize,
}

impl Recurrent {
    /// `layers` layers of `hidden` units reading `input` features, initialised like PyTorch:
    /// every weight and bias uniform in ±1/√hidden (from the device's seeded generator).
    pub fn new(cell: Cell, input: usize, hidden: usize, layers: usize, device: &Device) -> Self {
        let bound = 1.0 / (hidden as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        let g = cell.gates() * hidden;
        let layers = (0..layers.max(1))
            .map(|k| {
                let inp = if k == 0 { input } else { hidden };
                RecurrentLayer {
                    w_ih: Param::from_tensor(Tensor::random([g, inp], uniform, device)),
                    w_hh: Param::from_tensor(Tensor::random([g, hidden], uniform, device)),
                    b_ih: Param::from_tensor(Tensor::random([g], uniform, device)),
                    b_hh: Param::from_tensor(Tensor::random([g], uniform, device)),
                }
            })
            .collect();
        Recurrent {
            layers,
            gates: cell.gates(),
        }
    }

    /// A stack from given layers; the first reads the input, each next one the previous output.
    pub fn from_layers(cell: Cell, layers: Vec<RecurrentLayer>) -> Self {
        assert!(!layers.is_empty(), "a recurrent stack needs a layer");
        Recurrent {
            layers,
            gates: cell.gates(),
        }
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[RecurrentLayer] {
        &self.layers
    }

    /// The cell type.
    pub fn cell(&self) -> Cell {
        if self.gates == 4 {
            Cell::Lstm
        } else {
            Cell::Gru
        }
    }

    /// Hidden units per layer.
    pub fn hidden(&self) -> usize {
        self.layers[0].w_hh.val().dims()[1]
    }

    /// Every hidden state of the last layer, `[batch, steps, hidden]`, for `x` `[batch, steps, input]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let cell = self.cell();
        self.layers.iter().fold(x, |h, layer| {
            let out = <Dispatch as RecurrentBackend>::recurrent_sequence(
                h.into_dispatch(),
                layer.w_ih.val().into_dispatch(),
                layer.w_hh.val().into_dispatch(),
                layer.b_ih.val().into_dispatch(),
                layer.b_hh.val().into_dispatch(),
                cell,
            );
            Tensor::from_dispatch(out)
        })
    }
}
