//! TopoMAD's network: a stochastic seq2seq whose recurrent cells are graph-convolutional.
//!
//! - Encoder: two GraphLSTM layers over the window; the top layer's last hidden state, per
//!   component, goes through linear heads to the posterior's mean and standard deviation.
//! - Decoder: two GraphLSTM layers starting from the encoder's last states, reconstructing the
//!   window backwards. The newest step's mean and standard deviation come from linear heads on
//!   z; every earlier step t is decoded from step t + 1 — the true values under teacher
//!   forcing, the decoder's own mean otherwise — through heads on the top decoder state.
//!
//! Every head is one linear map shared by all components (applied per component), so one
//! network serves any graph of components reporting the same metrics.

use super::cell::{Graph, GraphLstm, State};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softplus;

/// Sizes of a network.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Metrics per component.
    pub metrics: usize,
    /// Hidden units per component in every GraphLSTM layer.
    pub hidden: usize,
    /// Latent size per component.
    pub latent: usize,
    /// GraphLSTM layers in the encoder and in the decoder.
    pub layers: usize,
    /// GAT cells (attention over the neighbours) instead of GCN cells.
    pub attention: bool,
}

#[derive(Module, Debug)]
pub struct TopomadNet {
    encoder: Vec<GraphLstm>,
    decoder: Vec<GraphLstm>,
    posterior_mean: Linear,
    posterior_std: Linear,
    latent_mean: Linear,
    latent_std: Linear,
    output_mean: Linear,
    output_std: Linear,
}

/// What one pass gives: the reconstruction's mean and raw standard deviation (before
/// softplus + ε) per step, component and metric, `[batch, steps, N, metrics]`, and the
/// posterior's mean and standard deviation `[batch, N, latent]`.
pub struct Decoded {
    pub mean: Tensor<4>,
    pub raw_std: Tensor<4>,
    pub z_mean: Tensor<3>,
    pub z_std: Tensor<3>,
}

/// How the decoder is fed and z is drawn.
pub struct Feeding<'a> {
    /// Standard normal noise for z (`[batch, N, latent]`); `None` decodes the posterior mean.
    pub noise: Option<Tensor<3>>,
    /// For each decoded step from the second newest back (`steps - 1` of them), whether the
    /// decoder reads the true next values (teacher forcing) instead of its own mean; empty:
    /// never.
    pub teacher: &'a [bool],
    /// Added to every standard deviation.
    pub std_epsilon: f64,
}

impl TopomadNet {
    pub fn new(s: Shape, device: &Device) -> TopomadNet {
        let layers = |first: usize| -> Vec<GraphLstm> {
            (0..s.layers.max(1))
                .map(|k| {
                    let input = if k == 0 { first } else { s.hidden };
                    GraphLstm::new(input, s.hidden, s.attention, device)
                })
                .collect()
        };
        let linear = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
        TopomadNet {
            encoder: layers(s.metrics),
            decoder: layers(s.metrics),
            posterior_mean: linear(s.hidden, s.latent),
            posterior_std: linear(s.hidden, s.latent),
            latent_mean: linear(s.latent, s.metrics),
            latent_std: linear(s.latent, s.metrics),
            output_mean: linear(s.hidden, s.metrics),
            output_std: linear(s.hidden, s.metrics),
        }
    }

    /// Encodes and decodes windows `x [batch, steps, N, metrics]` over `graph`.
    pub fn forward(&self, graph: &Graph, x: Tensor<4>, feeding: Feeding) -> Decoded {
        let [batch, steps, n, metrics] = x.dims();
        // Encoder, layer by layer over the whole window.
        let mut states: Vec<State> = Vec::with_capacity(self.encoder.len());
        let mut sequence = x.clone();
        for layer in &self.encoder {
            let (outputs, last) = layer.sequence(graph, sequence);
            states.push(last);
            sequence = outputs;
        }
        let top = states.last().expect("an encoder layer").0.clone();
        let z_mean = self.posterior_mean.forward(top.clone());
        let z_std = softplus(self.posterior_std.forward(top), 1.0).add_scalar(feeding.std_epsilon);
        let z = match feeding.noise {
            Some(noise) => z_mean.clone() + z_std.clone() * noise,
            None => z_mean.clone(),
        };
        // Decoder, step by step backwards from the newest step.
        let step_of = |t: usize| x.clone().narrow(1, t, 1).reshape([batch, n, metrics]);
        let mut means = vec![self.latent_mean.forward(z.clone())];
        let mut raws = vec![self.latent_std.forward(z)];
        for (k, t) in (0..steps - 1).rev().enumerate() {
            let fed = if feeding.teacher.get(k).copied().unwrap_or(false) {
                step_of(t + 1)
            } else {
                means.last().expect("the newest step is decoded").clone()
            };
            let mut input = fed;
            for (layer, state) in self.decoder.iter().zip(states.iter_mut()) {
                let part = layer.input_part(graph, input);
                let next = layer.step(graph, part, Some(state.clone()));
                input = next.0.clone();
                *state = next;
            }
            means.push(self.output_mean.forward(input.clone()));
            raws.push(self.output_std.forward(input));
        }
        // Decoded newest first: put them back in time order.
        means.reverse();
        raws.reverse();
        Decoded {
            mean: Tensor::stack(means, 1),
            raw_std: Tensor::stack(raws, 1),
            z_mean,
            z_std,
        }
    }
}
