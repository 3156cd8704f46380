//! The GraphLSTM cell: an LSTM whose gate pre-activations are a graph convolution over every
//! component's `[x_t, h_{t-1}]` (the reference code's `GCNConv(in + hidden, 4 * hidden)`).
//!
//! A GCN layer is linear, so Â [x, h] W + b = Â (x W_x) + Â (h W_h) + b: the input part of
//! every step is one product over the whole sequence, and each step adds the recurrent part.
//! Gates follow PyTorch's order (i, f, g, o); the state starts at zero unless given.
//!
//! Composed from burn's tensor operations (autodiff gives the backward pass); the fused
//! recurrent kernels of `nn::rnn` mix no components, so they cannot carry this cell as they are.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::Distribution;

/// One layer's weights.
#[derive(Module, Debug)]
pub struct GraphLstm {
    /// Input weights `[input, 4 * hidden]`.
    w_x: Param<Tensor<2>>,
    /// Recurrent weights `[hidden, 4 * hidden]`.
    w_h: Param<Tensor<2>>,
    /// Bias `[4 * hidden]`, added after the convolution (as GCNConv does).
    bias: Param<Tensor<1>>,
}

/// A cell's state per component: `(h, c)`, each `[batch, components, hidden]`.
pub type State = (Tensor<3>, Tensor<3>);

/// `adjacency [N, N]` times each of `rows` matrices `[N, F]`: every component gathers its
/// neighbours' features.
pub fn gather(adjacency: &Tensor<2>, y: Tensor<3>) -> Tensor<3> {
    let [rows, n, _] = y.dims();
    adjacency
        .clone()
        .unsqueeze::<3>()
        .expand([rows, n, n])
        .matmul(y)
}

impl GraphLstm {
    /// A layer reading `input` features per component into `hidden` units, initialised as
    /// GCNConv is (Glorot-uniform weights, zero bias).
    pub fn new(input: usize, hidden: usize, device: &Device) -> GraphLstm {
        let gates = 4 * hidden;
        let bound = (6.0 / (input + hidden + gates) as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        GraphLstm {
            w_x: Param::from_tensor(Tensor::random([input, gates], uniform, device)),
            w_h: Param::from_tensor(Tensor::random([hidden, gates], uniform, device)),
            bias: Param::from_tensor(Tensor::zeros([gates], device)),
        }
    }

    /// A layer from given weights, e.g. to compare with another implementation.
    #[cfg(test)]
    pub fn from_weights(w_x: Tensor<2>, w_h: Tensor<2>, bias: Tensor<1>) -> GraphLstm {
        GraphLstm {
            w_x: Param::from_tensor(w_x),
            w_h: Param::from_tensor(w_h),
            bias: Param::from_tensor(bias),
        }
    }

    /// The weights `(w_x, w_h, bias)`, e.g. to read their gradients.
    #[cfg(test)]
    pub fn params(&self) -> (&Param<Tensor<2>>, &Param<Tensor<2>>, &Param<Tensor<1>>) {
        (&self.w_x, &self.w_h, &self.bias)
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        self.w_h.val().dims()[0]
    }

    /// The convolved input part of the gates, Â (x W_x), for `x [rows, N, input]`.
    pub fn input_part(&self, adjacency: &Tensor<2>, x: Tensor<3>) -> Tensor<3> {
        let [rows, n, input] = x.dims();
        let projected = x
            .reshape([rows * n, input])
            .matmul(self.w_x.val())
            .reshape([rows, n, 4 * self.hidden()]);
        gather(adjacency, projected)
    }

    /// One step from the input part of its gates (`[batch, N, 4 * hidden]`) and the previous
    /// state (`None`: zero).
    pub fn step(
        &self,
        adjacency: &Tensor<2>,
        input_part: Tensor<3>,
        state: Option<State>,
    ) -> State {
        let [batch, n, gates] = input_part.dims();
        let hidden = gates / 4;
        let bias = self.bias.val().reshape([1, 1, gates]);
        let (pre, c_previous) = match state {
            None => (input_part + bias, None),
            Some((h, c)) => {
                let recurrent = h
                    .reshape([batch * n, hidden])
                    .matmul(self.w_h.val())
                    .reshape([batch, n, gates]);
                (input_part + gather(adjacency, recurrent) + bias, Some(c))
            }
        };
        let mut parts = pre.chunk(4, 2).into_iter();
        let mut next = || parts.next().expect("four gates");
        let (i, f, g, o) = (
            sigmoid(next()),
            sigmoid(next()),
            tanh(next()),
            sigmoid(next()),
        );
        let c = match c_previous {
            None => i * g,
            Some(c) => f * c + i * g,
        };
        (o * tanh(c.clone()), c)
    }

    /// Every step of `x [batch, steps, N, input]` from a zero state: the hidden states
    /// `[batch, steps, N, hidden]` and the last state.
    pub fn sequence(&self, adjacency: &Tensor<2>, x: Tensor<4>) -> (Tensor<4>, State) {
        let [batch, steps, n, input] = x.dims();
        let hidden = self.hidden();
        let parts = self
            .input_part(adjacency, x.reshape([batch * steps, n, input]))
            .reshape([batch, steps, n, 4 * hidden]);
        let mut state: Option<State> = None;
        let mut outputs = Vec::with_capacity(steps);
        for t in 0..steps {
            let part = parts
                .clone()
                .narrow(1, t, 1)
                .reshape([batch, n, 4 * hidden]);
            let next = self.step(adjacency, part, state);
            outputs.push(next.0.clone());
            state = Some(next);
        }
        (
            Tensor::stack(outputs, 1),
            state.expect("a sequence has a step"),
        )
    }
}
