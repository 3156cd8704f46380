//! OmniAnomaly's network and its training objective (negative ELBO of one window).
//!
//! q(z | x): a GRU reads the window, two dense layers follow; the latent of step t is drawn from
//! a Gaussian whose mean and softplus deviation come from that step's features *and the
//! previous step's latent* (the "stochastic variable connection", z₀ = 0), then the planar flow
//! moves every step's latent. p(z): the linear Gaussian state-space prior (`prior.rs`).
//! p(x | z): a second GRU reads the latents, two dense layers, a Gaussian per metric and step.
//! The dense layers after each GRU have no activation, as in the authors' code.

use super::flow::PlanarFlow;
use super::prior::StateSpacePrior;
use super::OmniAnomalyConfig;
use crate::nn::{self, rnn::Recurrent};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softplus;

/// The posterior step: [features_t, z_{t−1}] ↦ (mean, raw deviation) of z_t, as two products so
/// that the features' share is computed for all steps at once, outside the sequential loop.
#[derive(Module, Debug)]
pub struct PosteriorCell {
    /// From the step's features to [mean | raw std] (`dense → 2·latent`).
    pub features: Linear,
    /// From the previous latent to [mean | raw std] (`latent → 2·latent`, no bias: `features`
    /// has it).
    pub previous: Linear,
}

/// The whole network. Field names are the layer groups (`layer_groups` in `mod.rs`).
#[derive(Module, Debug)]
pub struct OmniAnomalyNet {
    /// q's GRU over the window.
    pub q_rnn: Recurrent,
    /// q's two dense layers after the GRU.
    pub q_dense: Vec<Linear>,
    /// The connected posterior step.
    pub posterior: PosteriorCell,
    /// The planar flow on every step's latent.
    pub flow: PlanarFlow,
    /// p's GRU over the latents.
    pub p_rnn: Recurrent,
    /// p's two dense layers after the GRU.
    pub p_dense: Vec<Linear>,
    /// Mean of x per metric.
    pub x_mean: Linear,
    /// Raw standard deviation of x per metric (σ = softplus + ε).
    pub x_std: Linear,
}

/// Dense layers after each GRU (the authors' `hidden_dense`).
pub const DENSE_LAYERS: usize = 2;

fn dense_stack(input: usize, width: usize, device: &Device) -> Vec<Linear> {
    (0..DENSE_LAYERS)
        .map(|i| LinearConfig::new(if i == 0 { input } else { width }, width).init(device))
        .collect()
}

/// Applies linear layers in turn, without activations.
pub fn through(layers: &[Linear], mut x: Tensor<3>) -> Tensor<3> {
    for layer in layers {
        x = layer.forward(x);
    }
    x
}

impl OmniAnomalyNet {
    pub fn new(c: &OmniAnomalyConfig, metrics: usize, device: &Device) -> Self {
        let l = c.latent;
        OmniAnomalyNet {
            q_rnn: Recurrent::new(c.cell, metrics, c.hidden, 1, device),
            q_dense: dense_stack(c.hidden, c.dense, device),
            posterior: PosteriorCell {
                features: LinearConfig::new(c.dense, 2 * l).init(device),
                previous: LinearConfig::new(l, 2 * l).with_bias(false).init(device),
            },
            flow: PlanarFlow::new(c.flow_layers, l, device),
            p_rnn: Recurrent::new(c.cell, l, c.hidden, 1, device),
            p_dense: dense_stack(c.hidden, c.dense, device),
            x_mean: LinearConfig::new(c.dense, metrics).init(device),
            x_std: LinearConfig::new(c.dense, metrics).init(device),
        }
    }

    /// The negative ELBO of each window of `x` (`batch × steps × metrics`), one posterior
    /// sample per window (drawn from the fit's `noise`): −ln p(x | z) − ln p(z) + ln q(z | x),
    /// `batch × 1`.
    pub fn negative_elbo(
        &self,
        x: Tensor<3>,
        prior: &StateSpacePrior,
        std_epsilon: f64,
        noise: &mut crate::nn::Noise,
    ) -> Tensor<2> {
        let [batch, steps, metrics] = x.dims();
        let device = x.device();
        let features = through(&self.q_dense, self.q_rnn.forward(x.clone()));
        let l = self.posterior.previous.weight.val().dims()[0];
        let from_features = self.posterior.features.forward(features);
        let noise = noise.standard_normal([batch, steps, l], &device);
        let mut previous = Tensor::<2>::zeros([batch, l], &device);
        let (mut latents, mut deviations) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        for t in 0..steps {
            let params = from_features
                .clone()
                .narrow(1, t, 1)
                .reshape([batch, 2 * l])
                + self.posterior.previous.forward(previous);
            let mean = params.clone().narrow(1, 0, l);
            let std = softplus(params.narrow(1, l, l), 1.0).add_scalar(std_epsilon);
            let z = mean + std.clone() * noise.clone().narrow(1, t, 1).reshape([batch, l]);
            latents.push(z.clone());
            deviations.push(std);
            previous = z;
        }
        let z0 = Tensor::stack::<3>(latents, 1);
        let std = Tensor::stack::<3>(deviations, 1);
        // ln q of the reparameterised sample before the flow: −½ln2π − ln σ − ½ε², summed.
        let log_q0 = (std.log() + noise.square().mul_scalar(0.5))
            .add_scalar(nn::HALF_LOG_TWO_PI)
            .neg()
            .reshape([batch, steps * l])
            .sum_dim(1);
        let (z, log_det) = self.flow.forward(z0.reshape([batch * steps, l]));
        let log_q = log_q0 - log_det.reshape([batch, steps]).sum_dim(1);
        let z = z.reshape([batch, steps, l]);
        let log_prior = prior.log_density(z.clone());
        let decoded = through(&self.p_dense, self.p_rnn.forward(z));
        let nll = nn::likelihood::gaussian_nll_softplus(
            x,
            self.x_mean.forward(decoded.clone()),
            self.x_std.forward(decoded),
            std_epsilon,
        )
        .reshape([batch, steps * metrics])
        .sum_dim(1);
        nll - log_prior + log_q
    }
}
