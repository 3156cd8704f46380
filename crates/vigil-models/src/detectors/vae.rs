//! A dense VAE over flattened windows, after Donut (Xu et al., *Unsupervised Anomaly Detection via
//! Variational Auto-Encoder for Seasonal KPIs in Web Applications*, WWW 2018) — the "VAE" baseline
//! of MTAD-FL, which cites it. Encoder: two dense ReLU layers, then a Gaussian posterior (mean,
//! softplus standard deviation + ε); decoder: two dense ReLU layers, then a Gaussian likelihood
//! per value. Trained on the ELBO with one posterior sample; the score of a point is the negative
//! log-likelihood of its newest step under the reconstruction from the posterior mean, per metric.
//!
//! Donut is univariate (window 120 of one KPI); here the window holds every metric, so the window
//! is shorter (10 steps x M metrics) to keep the input layer small. Left out: Donut's M-ELBO
//! (it needs labels of the training anomalies), missing-data injection and MCMC imputation at
//! scoring time (vigil's cleaning repairs missing values before a detector sees them).

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::Result;
use crate::nn::infer::{gaussian_nll_softplus, par_rows, Dense, DenseStack, CHUNK_ROWS};
use crate::nn::{self, Activation, Mlp};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::prelude::*;
use burn::tensor::activation::softplus;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// Dense VAE configuration. Donut's values are noted where ours differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeConfig {
    /// Window length (Donut: 120 steps of one KPI; here every metric is in the window).
    pub window: usize,
    /// Units of each of the two hidden layers of the encoder and of the decoder (Donut: 100).
    pub hidden: usize,
    /// Latent size (Donut: 3 to 8).
    pub latent: usize,
    /// Training epochs (Donut: 256 on one KPI; fewer here, where a window holds all metrics).
    pub epochs: usize,
    /// Mini-batch size (Donut: 256).
    pub batch_size: usize,
    /// Adam learning rate (Donut: 1e-3).
    pub learning_rate: f64,
    /// The learning rate is multiplied by `lr_decay` every `lr_decay_epochs` epochs (Donut: 0.75, 10).
    pub lr_decay: f64,
    /// See `lr_decay`.
    pub lr_decay_epochs: usize,
    /// L2 regularisation of the weights (Donut: 1e-3).
    pub weight_decay: f64,
    /// Added to every standard deviation (Donut: 1e-4).
    pub std_epsilon: f64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            window: 10,
            hidden: 100,
            latent: 8,
            epochs: 30,
            batch_size: 256,
            learning_rate: 1e-3,
            lr_decay: 0.75,
            lr_decay_epochs: 10,
            weight_decay: 1e-3,
            std_epsilon: 1e-4,
        }
    }
}

detector_config! {
    VaeConfig = "vae", batch batch_size;
    counts: window, hidden, latent, epochs, batch_size, lr_decay_epochs;
    positive: learning_rate, lr_decay, std_epsilon;
    non_negative: weight_decay;
}

/// Dense ReLU layers, then a diagonal Gaussian (mean, softplus standard deviation + ε) — the
/// encoder and the decoder of this VAE and of AnoTuner's CVAE.
#[derive(Module, Debug)]
pub(crate) struct GaussianBlock {
    pub(crate) hidden: Mlp,
    pub(crate) mean: Linear,
    pub(crate) std: Linear,
}

impl GaussianBlock {
    pub(crate) fn new(input: usize, hidden: usize, output: usize, device: &Device) -> Self {
        GaussianBlock {
            hidden: Mlp::new(&[input, hidden, hidden], device),
            mean: LinearConfig::new(hidden, output).init(device),
            std: LinearConfig::new(hidden, output).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>, std_epsilon: f64) -> (Tensor<2>, Tensor<2>) {
        let (mean, raw_std) = self.forward_raw(x);
        (mean, softplus(raw_std, 1.0).add_scalar(std_epsilon))
    }

    /// The mean and the raw standard deviation (before softplus + ε), for the fused likelihood.
    pub(crate) fn forward_raw(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let h = self.hidden.forward(x, Activation::Relu);
        (
            nn::dense(&self.mean, h.clone(), Activation::Linear),
            nn::dense(&self.std, h, Activation::Linear),
        )
    }
}

/// The layer groups of a network whose `encoder` and `decoder` are [`GaussianBlock`]s. Dense
/// models transfer their outer layers (OmniTransfer): the input-side encoder layers and the
/// output-side decoder layers; the layers around the latent are task-specific.
pub(crate) fn encoder_decoder_groups() -> Vec<LayerGroup> {
    vec![
        LayerGroup::new("encoder.hidden", LayerRole::Generic),
        LayerGroup::new("decoder.mean", LayerRole::Generic),
        LayerGroup::new("decoder.std", LayerRole::Generic),
        LayerGroup::new("encoder.mean", LayerRole::TaskSpecific),
        LayerGroup::new("encoder.std", LayerRole::TaskSpecific),
        LayerGroup::new("decoder.hidden", LayerRole::TaskSpecific),
    ]
}

#[derive(Module, Debug)]
struct VaeNet {
    encoder: GaussianBlock,
    decoder: GaussianBlock,
}

/// The dense VAE detector.
#[derive(Debug)]
pub struct Vae {
    config: VaeConfig,
    net: nn::Fitted<VaeNet>,
}

const WEIGHTS: &str = "vae.bpk";

impl Vae {
    /// Builds an unfitted detector.
    pub fn new(config: VaeConfig) -> Result<Vae> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, build_net);
        Ok(Vae { config, net })
    }
}

/// A freshly initialised network for `n_metrics` metrics.
fn build_net(c: &VaeConfig, n_metrics: usize, device: &Device) -> VaeNet {
    let d = c.window * n_metrics;
    VaeNet {
        encoder: GaussianBlock::new(d, c.hidden, c.latent, device),
        decoder: GaussianBlock::new(c.latent, c.hidden, d, device),
    }
}

impl Detector for Vae {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        encoder_decoder_groups()
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let (device, net) = self.net.start_fit(m, options);
        let mut optimiser = nn::adam()
            .with_weight_decay(Some(WeightDecayConfig::new(c.weight_decay as f32)))
            .init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let mut windows = nn::TrainingWindows::all(input, w);
        let mut noise = nn::Noise::for_fit(options.seed);
        let (net, last_loss) = nn::Epochs::new("vae", &windows, c.batch_size, epochs, options)
            .run(net, |net, idx, epoch| {
                let lr = nn::step_decay(c.learning_rate, c.lr_decay, c.lr_decay_epochs, epoch);
                let x = windows.tensor2(idx, &device);
                let (mean_z, std_z) = net.encoder.forward(x.clone(), c.std_epsilon);
                let noise = noise.standard_normal(mean_z.dims(), &device);
                let z = mean_z.clone() + std_z.clone() * noise;
                let (mean_x, raw_std_x) = net.decoder.forward_raw(z);
                let nll =
                    nn::likelihood::gaussian_nll_softplus(x, mean_x, raw_std_x, c.std_epsilon)
                        .sum_dim(1)
                        .mean();
                // KL(N(μ, σ²) ‖ N(0, 1)), summed over latents, averaged over the batch.
                let kl = (mean_z.square() + std_z.clone().square() - 1.0)
                    .mul_scalar(0.5)
                    .sub(std_z.log())
                    .sum_dim(1)
                    .mean();
                nn::descend(&mut optimiser, lr, net, nll + kl)
            })?;
        self.net.keep_trained(&net, m, options);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let d = w * m;
        let newest = (w - 1) * m..d;
        let eps = self.config.std_epsilon as f32;
        let (encoder_hidden, decoder_hidden) = (
            DenseStack::from_mlp(&net.encoder.hidden),
            DenseStack::from_mlp(&net.decoder.hidden),
        );
        let encoder_mean = Dense::from_linear(&net.encoder.mean);
        let [decoder_mean, decoder_std] =
            [&net.decoder.mean, &net.decoder.std].map(Dense::from_linear);
        let contributions = par_rows(input.len(), m, CHUNK_ROWS, |rows, out| {
            let n = rows.len();
            let (mut x, mut h, mut z, mut mean, mut std) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            windows_ending_at(input.values, m, w, rows, &mut x);
            // z at its posterior mean, so that scores are deterministic.
            encoder_hidden.forward(&x, n, Activation::Relu, &mut h);
            encoder_mean.forward(&h, n, Activation::Linear, &mut z);
            decoder_hidden.forward(&z, n, Activation::Relu, &mut h);
            // Only the newest step is scored: the likelihood heads compute just its columns.
            decoder_mean.forward_columns(&h, n, newest.clone(), Activation::Linear, &mut mean);
            decoder_std.forward_columns(&h, n, newest.clone(), Activation::Linear, &mut std);
            for r in 0..n {
                let values = &x[r * d + newest.start..(r + 1) * d];
                for (c, v) in values.iter().enumerate() {
                    let i = r * m + c;
                    out[i] = gaussian_nll_softplus(*v, mean[i], std[i], eps);
                }
            }
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    nn::fitted_checkpoints!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_scores_match_burns_forward_pass() {
        let m = 3;
        let values: Vec<f32> = (0..400 * m)
            .map(|i| ((i as f32) * 0.17).sin() * 0.5 + 0.5)
            .collect();
        let input = MtsInput::new(&values, m);
        let mut det = Vae::new(VaeConfig {
            epochs: 2,
            hidden: 16,
            ..VaeConfig::default()
        })
        .unwrap();
        det.fit(&input, &FitOptions::default()).unwrap();
        let (w, eps) = (det.config.window, det.config.std_epsilon);
        let net = det.net.get(m).unwrap();
        let mut x = Vec::new();
        windows_ending_at(input.values, m, w, 0..input.len(), &mut x);
        let x = nn::tensor2(x, input.len(), w * m, &nn::device());
        let (mean_z, _) = net.encoder.forward(x.clone(), eps);
        let (mean_x, std_x) = net.decoder.forward(mean_z, eps);
        let newest = |t: Tensor<2>| t.narrow(1, (w - 1) * m, m);
        let want = nn::to_vec(nn::gaussian_nll(newest(x), newest(mean_x), newest(std_x)));
        let got = det.score(&input).unwrap().per_metric;
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }
}
