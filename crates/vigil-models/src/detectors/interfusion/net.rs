//! InterFusion's network and its two training objectives.
//!
//! Two latents per window (`batch × steps × metrics`):
//! - z2, the *temporal* embedding: the window compressed along time (`temporal.rs`), one value
//!   per metric and compressed step, N(0, I) prior.
//! - z1, the *inter-metric* embedding: a few values per step (`latent`), compressing across
//!   metrics. q(z1 | x, z2): the window expanded back from z2 is read by a GRU running
//!   backwards in time and two dense ReLU layers; step t's Gaussian comes from those features
//!   and z1 of step t − 1; a RealNVP flow (`real_nvp.rs`) then moves every step's z1.
//!   p(z1 | z2): step t's Gaussian comes from the expanded z2 at t and z1 of step t − 1.
//! - p(x | z1, z2): z1 through a linear layer to one value per metric, beside the expanded z2,
//!   two dense ReLU layers, a Gaussian per metric and step.
//!
//! Log standard deviations are clipped to [−5, 2] as in the authors' code. Pre-training fits
//! z2 alone (a convolutional VAE with its own 1 × 1 output head) before the whole model.

use super::real_nvp::RealNvp;
use super::temporal::{TemporalDecoder, TemporalEncoder};
use super::InterFusionConfig;
use crate::nn::{self, rnn::Recurrent, Activation};
use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// The authors' bounds on every log standard deviation.
const LOG_STD_MIN: f64 = -5.0;
const LOG_STD_MAX: f64 = 2.0;

/// −ln N(x; mean, e^{2·log_std}) element-wise, with the log deviation clipped first.
fn gaussian_nll<const D: usize>(x: Tensor<D>, mean: Tensor<D>, log_std: Tensor<D>) -> Tensor<D> {
    let log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX);
    let z = (x - mean) * log_std.clone().neg().exp();
    log_std + z.square().mul_scalar(0.5) + nn::HALF_LOG_TWO_PI
}

/// Sum over everything but the batch axis: `batch × … ` → `batch × 1`.
fn per_window<const D: usize>(t: Tensor<D>) -> Tensor<2> {
    let batch = t.dims()[0];
    t.reshape([batch as i32, -1]).sum_dim(1)
}

/// The [mean | log std] halves of the last axis.
fn halves<const D: usize>(params: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
    let n = params.dims()[D - 1] / 2;
    (
        params.clone().narrow(D - 1, 0, n),
        params.narrow(D - 1, n, n),
    )
}

/// One step of a connected Gaussian: [input_t, z1_{t−1}] ↦ [mean | log std] of z1_t, as two
/// products so that the input's share is computed for all steps at once.
#[derive(Module, Debug)]
pub struct ConnectedGaussian {
    /// From the step's input (`→ 2·latent`).
    pub input: Linear,
    /// From the previous step's z1 (`latent → 2·latent`, no bias: `input` has it).
    pub previous: Linear,
}

impl ConnectedGaussian {
    fn new(input: usize, latent: usize, device: &Device) -> ConnectedGaussian {
        ConnectedGaussian {
            input: LinearConfig::new(input, 2 * latent).init(device),
            previous: LinearConfig::new(latent, 2 * latent)
                .with_bias(false)
                .init(device),
        }
    }
}

/// The whole network. Field names are the layer groups (`layer_groups` in `mod.rs`).
#[derive(Module, Debug)]
pub struct InterFusionNet {
    /// q's convolutions compressing the window.
    pub q_conv: TemporalEncoder,
    /// 1 × 1 convolution to z2's [mean | log std].
    pub q_z2: Conv1d,
    /// The transposed convolutions expanding z2 back to a window (shared by q and p).
    pub deconv: TemporalDecoder,
    /// Pre-training's 1 × 1 output head: x's [mean | log std] from the expanded z2 alone.
    pub pretrain_x: Conv1d,
    /// q's backward GRU over the expanded z2.
    pub a_rnn: Recurrent,
    /// q's two dense ReLU layers after the GRU.
    pub a_dense: Vec<Linear>,
    /// q(z1_t | features_t, z1_{t−1}).
    pub q_z1: ConnectedGaussian,
    /// The RealNVP flow on every step's z1.
    pub flow: RealNvp,
    /// p(z1_t | expanded z2 at t, z1_{t−1}).
    pub p_z1: ConnectedGaussian,
    /// z1 to one value per metric, before joining the expanded z2.
    pub p_from_z1: Linear,
    /// p's two dense ReLU layers.
    pub p_dense: Vec<Linear>,
    /// x's [mean | log std] per metric.
    pub x_params: Linear,
}

/// Latents drawn from q, and the expanded z2 both q and p read.
struct Posterior {
    /// The window expanded back from z2, `batch × steps × metrics`.
    expanded: Tensor<3>,
    /// z1 after the flow, `batch × steps × latent`.
    z1: Tensor<3>,
    /// ln q(z2 | x) − ln p(z2), `batch × 1`.
    z2_log_ratio: Tensor<2>,
    /// ln q(z1 | x, z2) of the drawn z1 (the flow's log-determinants included), `batch × 1`.
    log_q_z1: Tensor<2>,
}

/// Dense layers after the GRU and in p (the authors' `feature_dense1/2`).
const DENSE_LAYERS: usize = 2;

fn dense_stack(input: usize, width: usize, device: &Device) -> Vec<Linear> {
    (0..DENSE_LAYERS)
        .map(|i| LinearConfig::new(if i == 0 { input } else { width }, width).init(device))
        .collect()
}

/// `layer(x)` through the fused dense op (`nn::dense`).
fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    nn::dense(layer, x, Activation::Linear)
}

fn through_relu(layers: &[Linear], mut x: Tensor<3>) -> Tensor<3> {
    for layer in layers {
        x = nn::dense(layer, x, Activation::Relu);
    }
    x
}

impl InterFusionNet {
    pub fn new(c: &InterFusionConfig, metrics: usize, device: &Device) -> Self {
        let (m, l) = (metrics, c.latent);
        let one_by_one = || Conv1dConfig::new(m, 2 * m, 1).init(device);
        InterFusionNet {
            q_conv: TemporalEncoder::new(m, device),
            q_z2: one_by_one(),
            deconv: TemporalDecoder::new(m, c.window, device),
            pretrain_x: one_by_one(),
            a_rnn: Recurrent::new(c.cell, m, c.hidden, 1, device),
            a_dense: dense_stack(c.hidden, c.dense, device),
            q_z1: ConnectedGaussian::new(c.dense, l, device),
            flow: RealNvp::new(c.flow_levels, l, device),
            p_z1: ConnectedGaussian::new(m, l, device),
            p_from_z1: LinearConfig::new(l, m).init(device),
            p_dense: dense_stack(2 * m, c.dense, device),
            x_params: LinearConfig::new(c.dense, 2 * m).init(device),
        }
    }

    /// z2 drawn from q(z2 | x) with `noise` (`batch × metrics × compressed`; zeros give the
    /// mean), and ln q(z2 | x) − ln p(z2) (`batch × 1`).
    fn draw_z2(&self, x: Tensor<3>, noise: Tensor<3>) -> (Tensor<3>, Tensor<2>) {
        let (mean, log_std) =
            halves_channels(self.q_z2.forward(self.q_conv.forward(x.swap_dims(1, 2))));
        let log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX);
        let z2 = mean + log_std.clone().exp() * noise.clone();
        // ln q − ln p = Σ (−log σ − ½ε²) − Σ (−½z²): the constants cancel.
        let log_ratio = per_window(
            z2.clone().square().mul_scalar(0.5) - log_std - noise.square().mul_scalar(0.5),
        );
        (z2, log_ratio)
    }

    /// The negative ELBO of pre-training's model (z2 only) for each window, `batch × 1`.
    pub fn pretrain_negative_elbo(&self, x: Tensor<3>, noise: &mut crate::nn::Noise) -> Tensor<2> {
        let [batch, steps, metrics] = x.dims();
        let compressed = super::temporal::compressed_length(steps);
        let noise = noise.standard_normal([batch, metrics, compressed], &x.device());
        let (z2, log_ratio) = self.draw_z2(x.clone(), noise);
        let (mean, log_std) = halves_channels(self.pretrain_x.forward(self.deconv.forward(z2)));
        per_window(gaussian_nll(x.swap_dims(1, 2), mean, log_std)) + log_ratio
    }

    /// z2 and z1 drawn from q with the given standard-normal noises for z2
    /// (`batch × metrics × compressed`) and z1 (`batch × steps × latent`); zero noise follows
    /// the posterior means.
    fn posterior(&self, x: Tensor<3>, z2_noise: Tensor<3>, z1_noise: Tensor<3>) -> Posterior {
        let [batch, steps, _] = x.dims();
        let l = z1_noise.dims()[2];
        let (z2, z2_log_ratio) = self.draw_z2(x, z2_noise);
        let expanded = self.deconv.forward(z2).swap_dims(1, 2); // batch × steps × metrics
                                                                // q(z1): the GRU runs from the window's end to its start.
        let backwards = self.a_rnn.forward(expanded.clone().flip([1])).flip([1]);
        let from_features = linear(&self.q_z1.input, through_relu(&self.a_dense, backwards));
        let mut previous = Tensor::<2>::zeros([batch, l], &from_features.device());
        let (mut latents, mut log_q0) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        for t in 0..steps {
            let params = from_features
                .clone()
                .narrow(1, t, 1)
                .reshape([batch, 2 * l])
                + linear(&self.q_z1.previous, previous);
            let (mean, log_std) = halves(params);
            let log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX);
            let noise = z1_noise.clone().narrow(1, t, 1).reshape([batch, l]);
            let z = mean + log_std.clone().exp() * noise.clone();
            // ln q of the reparameterised draw, without the constant (p's cancels it).
            log_q0.push((log_std + noise.square().mul_scalar(0.5)).neg().sum_dim(1));
            latents.push(z.clone());
            previous = z;
        }
        let log_q0 = Tensor::cat(log_q0, 1).sum_dim(1);
        let (z1, log_det) = self
            .flow
            .forward(Tensor::stack::<3>(latents, 1).reshape([batch * steps, l]));
        Posterior {
            expanded,
            z1: z1.reshape([batch, steps, l]),
            z2_log_ratio,
            log_q_z1: log_q0 - log_det.reshape([batch, steps]).sum_dim(1),
        }
    }

    /// x's [mean, log std] at the given steps of z1 and the expanded z2.
    fn decode(&self, z1: Tensor<3>, expanded: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let joined = Tensor::cat(vec![linear(&self.p_from_z1, z1), expanded], 2);
        halves(linear(&self.x_params, through_relu(&self.p_dense, joined)))
    }

    /// ln q(z1, z2 | x) − ln p(z1, z2) of a posterior draw, `batch × 1`: p(z1 | z2) gives each
    /// step's Gaussian from the expanded z2 and the previous step's drawn z1 (z1_0 = 0).
    fn log_ratio(&self, q: &Posterior) -> Tensor<2> {
        let [batch, steps, l] = q.z1.dims();
        let device = q.z1.device();
        let shifted = if steps > 1 {
            let earlier = q.z1.clone().narrow(1, 0, steps - 1);
            Tensor::cat(vec![Tensor::zeros([batch, 1, l], &device), earlier], 1)
        } else {
            Tensor::zeros([batch, 1, l], &device)
        };
        let (mean, log_std) = halves(
            linear(&self.p_z1.input, q.expanded.clone()) + linear(&self.p_z1.previous, shifted),
        );
        // −ln p without the constant, as ln q.
        let z1_nll = gaussian_nll(q.z1.clone(), mean, log_std).sub_scalar(nn::HALF_LOG_TWO_PI);
        q.z2_log_ratio.clone() + q.log_q_z1.clone() + per_window(z1_nll)
    }

    /// x's [mean, log std] at each window's newest step (`batch × metrics` each), given the
    /// window, with the latents drawn with the given noises (`posterior`): what scoring needs.
    pub fn newest_step(
        &self,
        x: Tensor<3>,
        z2_noise: Tensor<3>,
        z1_noise: Tensor<3>,
    ) -> (Tensor<2>, Tensor<2>) {
        let [batch, steps, metrics] = x.dims();
        let q = self.posterior(x, z2_noise, z1_noise);
        let newest = |t: Tensor<3>| t.narrow(1, steps - 1, 1);
        let (mean, log_std) = self.decode(newest(q.z1), newest(q.expanded));
        (
            mean.reshape([batch, metrics]),
            log_std.reshape([batch, metrics]),
        )
    }

    /// The negative ELBO of each window under one posterior draw, `batch × 1`: the authors'
    /// loss −ln p(x | z1, z2) − ln p(z1 | z2) − ln p(z2) + ln q(z1 | x, z2) + ln q(z2 | x).
    pub fn negative_elbo(
        &self,
        x: Tensor<3>,
        latent: usize,
        noise: &mut crate::nn::Noise,
    ) -> Tensor<2> {
        let [batch, steps, metrics] = x.dims();
        let device = x.device();
        let compressed = super::temporal::compressed_length(steps);
        let z2_noise = noise.standard_normal([batch, metrics, compressed], &device);
        let z1_noise = noise.standard_normal([batch, steps, latent], &device);
        let q = self.posterior(x.clone(), z2_noise, z1_noise);
        let log_ratio = self.log_ratio(&q);
        let (mean, log_std) = self.decode(q.z1, q.expanded);
        per_window(gaussian_nll(x, mean, log_std)) + log_ratio
    }
}

/// The [mean | log std] halves of a 1 × 1 convolution's channels (`batch × 2m × steps`).
fn halves_channels(params: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let m = params.dims()[1] / 2;
    (params.clone().narrow(1, 0, m), params.narrow(1, m, m))
}

/// −ln N(x; mean, e^{2·log_std}) per element with the authors' clipping; scoring uses it too.
pub fn negative_log_likelihood(x: Tensor<2>, mean: Tensor<2>, log_std: Tensor<2>) -> Tensor<2> {
    gaussian_nll(x, mean, log_std)
}
