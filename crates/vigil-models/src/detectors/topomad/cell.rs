//! The GraphLSTM cell: an LSTM whose gate pre-activations are a graph convolution over every
//! component's `[x_t, h_{t-1}]` (the reference code's `GCNConv(in + hidden, 4 * hidden)`, or
//! its GAT option).
//!
//! - GCN: Â [x, h] W + b = Â (x W_x) + Â (h W_h) + b is linear, so the input part of every step
//!   is one product over the whole sequence, and each step adds the recurrent part.
//! - GAT (Veličković et al. 2018, one head, as PyG's `GATConv`): the projected features
//!   p = x W_x + h W_h of every component; component i attends to its neighbours j (and itself)
//!   with α_ij = softmax_j LeakyReLU_0.2(a_dst · p_i + a_src · p_j); the gates are Σ_j α_ij p_j + b.
//!   The attention depends on the step's features, so only the projection of the inputs is done
//!   for the whole sequence at once.
//!
//! Gates follow PyTorch's order (i, f, g, o); the state starts at zero unless given. Composed from
//! burn's tensor operations (autodiff gives the backward pass); the fused recurrent kernels of
//! `nn::rnn` mix no components, so they cannot carry this cell as they are.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, sigmoid, softmax, tanh};
use burn::tensor::Distribution;

/// The graph's tensors, as the cells mix components over it: a GCN cell gathers with the
/// adjacency, a GAT cell (one with attention vectors) attends within the mask.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The normalised adjacency Â `[N, N]` (`graph.rs`).
    pub adjacency: Tensor<2>,
    /// An additive attention mask `[N, N]`: 0 where component i may attend to j (its
    /// neighbours and itself), [`NOT_LINKED`] elsewhere.
    pub mask: Tensor<2>,
}

/// Added to the attention logits of pairs that are not linked: their weight underflows to 0.
pub const NOT_LINKED: f32 = -1e9;

/// One layer's weights.
#[derive(Module, Debug)]
pub struct GraphLstm {
    /// Input weights `[input, 4 * hidden]`.
    w_x: Param<Tensor<2>>,
    /// Recurrent weights `[hidden, 4 * hidden]`.
    w_h: Param<Tensor<2>>,
    /// Bias `[4 * hidden]`, added after the convolution (as GCNConv and GATConv do).
    bias: Param<Tensor<1>>,
    /// GAT only: the attention vectors of the source and the target `[4 * hidden]`.
    attention: Option<Attention>,
}

/// GAT's attention vectors.
#[derive(Module, Debug)]
pub struct Attention {
    source: Param<Tensor<1>>,
    target: Param<Tensor<1>>,
}

/// A cell's state per component: `(h, c)`, each `[batch, components, hidden]`.
pub type State = (Tensor<3>, Tensor<3>);

/// `adjacency [N, N]` times each of `rows` matrices `[N, F]`: every component gathers its
/// neighbours' features.
fn gather(adjacency: &Tensor<2>, y: Tensor<3>) -> Tensor<3> {
    let [rows, n, _] = y.dims();
    adjacency
        .clone()
        .unsqueeze::<3>()
        .expand([rows, n, n])
        .matmul(y)
}

impl Attention {
    /// Σ_j α_ij p_j for `p [rows, N, F]`, α from the logits LeakyReLU(a_dst·p_i + a_src·p_j)
    /// plus `mask`, normalised over j.
    fn attend(&self, mask: &Tensor<2>, p: Tensor<3>) -> Tensor<3> {
        let [rows, n, f] = p.dims();
        let score = |a: &Param<Tensor<1>>| (p.clone() * a.val().reshape([1, 1, f])).sum_dim(2);
        let target = score(&self.target).expand([rows, n, n]);
        let source = score(&self.source).swap_dims(1, 2).expand([rows, n, n]);
        let logits =
            leaky_relu(target + source, 0.2) + mask.clone().unsqueeze::<3>().expand([rows, n, n]);
        softmax(logits, 2).matmul(p)
    }
}

impl GraphLstm {
    /// A layer reading `input` features per component into `hidden` units, initialised as
    /// GCNConv and GATConv are (Glorot-uniform weights and attention, zero bias); with
    /// `attention`, the GAT cell.
    pub fn new(input: usize, hidden: usize, attention: bool, device: &Device) -> GraphLstm {
        let gates = 4 * hidden;
        let bound = (6.0 / (input + hidden + gates) as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        let attention_bound = (6.0 / (gates + 1) as f64).sqrt();
        let vector = || {
            Param::from_tensor(Tensor::random(
                [gates],
                Distribution::Uniform(-attention_bound, attention_bound),
                device,
            ))
        };
        GraphLstm {
            w_x: Param::from_tensor(Tensor::random([input, gates], uniform, device)),
            w_h: Param::from_tensor(Tensor::random([hidden, gates], uniform, device)),
            bias: Param::from_tensor(Tensor::zeros([gates], device)),
            attention: attention.then(|| Attention {
                source: vector(),
                target: vector(),
            }),
        }
    }

    /// A GCN layer from given weights, e.g. to compare with another implementation.
    #[cfg(test)]
    pub fn from_weights(w_x: Tensor<2>, w_h: Tensor<2>, bias: Tensor<1>) -> GraphLstm {
        GraphLstm {
            w_x: Param::from_tensor(w_x),
            w_h: Param::from_tensor(w_h),
            bias: Param::from_tensor(bias),
            attention: None,
        }
    }

    /// The same layer with GAT attention vectors `(source, target)`.
    #[cfg(test)]
    pub fn with_attention(self, source: Tensor<1>, target: Tensor<1>) -> GraphLstm {
        GraphLstm {
            attention: Some(Attention {
                source: Param::from_tensor(source),
                target: Param::from_tensor(target),
            }),
            ..self
        }
    }

    /// The weights `(w_x, w_h, bias)` and the attention vectors `(source, target)` if any, e.g.
    /// to read their gradients.
    #[cfg(test)]
    pub fn params(&self) -> Vec<&Param<Tensor<1>>> {
        let mut vectors = vec![&self.bias];
        if let Some(a) = &self.attention {
            vectors.extend([&a.source, &a.target]);
        }
        vectors
    }

    /// The weight matrices `(w_x, w_h)`.
    #[cfg(test)]
    pub fn matrices(&self) -> (&Param<Tensor<2>>, &Param<Tensor<2>>) {
        (&self.w_x, &self.w_h)
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        self.w_h.val().dims()[0]
    }

    /// The input part of the gates for `x [rows, N, input]`: Â (x W_x) for the GCN cell, the
    /// projection x W_x alone for the GAT cell (it attends once the step's features are known).
    pub fn input_part(&self, graph: &Graph, x: Tensor<3>) -> Tensor<3> {
        let [rows, n, input] = x.dims();
        let projected = x
            .reshape([rows * n, input])
            .matmul(self.w_x.val())
            .reshape([rows, n, 4 * self.hidden()]);
        match self.attention {
            None => gather(&graph.adjacency, projected),
            Some(_) => projected,
        }
    }

    /// One step from the input part of its gates (`[batch, N, 4 * hidden]`) and the previous
    /// state (`None`: zero).
    pub fn step(&self, graph: &Graph, input_part: Tensor<3>, state: Option<State>) -> State {
        let [batch, n, gates] = input_part.dims();
        let hidden = gates / 4;
        let bias = self.bias.val().reshape([1, 1, gates]);
        let (mixed, c_previous) = match state {
            None => (input_part, None),
            Some((h, c)) => {
                let recurrent = h
                    .reshape([batch * n, hidden])
                    .matmul(self.w_h.val())
                    .reshape([batch, n, gates]);
                let mixed = match self.attention {
                    None => input_part + gather(&graph.adjacency, recurrent),
                    Some(_) => input_part + recurrent,
                };
                (mixed, Some(c))
            }
        };
        let pre = match &self.attention {
            Some(attention) => attention.attend(&graph.mask, mixed),
            None => mixed,
        } + bias;
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
    pub fn sequence(&self, graph: &Graph, x: Tensor<4>) -> (Tensor<4>, State) {
        let [batch, steps, n, input] = x.dims();
        let hidden = self.hidden();
        let parts = self
            .input_part(graph, x.reshape([batch * steps, n, input]))
            .reshape([batch, steps, n, 4 * hidden]);
        let mut state: Option<State> = None;
        let mut outputs = Vec::with_capacity(steps);
        for t in 0..steps {
            let part = parts
                .clone()
                .narrow(1, t, 1)
                .reshape([batch, n, 4 * hidden]);
            let next = self.step(graph, part, state);
            outputs.push(next.0.clone());
            state = Some(next);
        }
        (
            Tensor::stack(outputs, 1),
            state.expect("a sequence has a step"),
        )
    }
}
