//! InterFusion (Li et al., *Multivariate Time Series Anomaly Detection and Interpretation using
//! Hierarchical Inter-Metric and Temporal Embedding*, KDD 2021): a hierarchical VAE with a
//! temporal embedding z2 (the window compressed along time) and an inter-metric embedding z1
//! (each step compressed across metrics, conditioned on z2). Trained in two stages — z2's
//! convolutional VAE alone, then the whole model — and scored with MCMC imputation: the newest
//! step of each window is treated as missing and re-drawn from the model a few times, so that an
//! anomalous point cannot pull its own reconstruction towards itself; the score is the negative
//! log-likelihood of the observed newest step under the model given the imputed window, per
//! metric.
//!
//! Files: `net.rs` the network and losses, `temporal.rs` the convolutional z2 path,
//! `real_nvp.rs` the posterior flow, `mcmc.rs` the scoring chain.

mod coupling;
mod mcmc;
mod net;
mod real_nvp;
mod temporal;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::Result;
use crate::nn::holdout::{validation_split, ValidationSplit};
use crate::nn::{self, rnn::Cell};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::prelude::*;
use net::InterFusionNet;
use serde::{Deserialize, Serialize};
use vigil_core::window::check_window;

/// InterFusion configuration; the authors' values (their `ModelConfig` / `TrainConfig` /
/// `PredictConfig`) are noted where ours differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterFusionConfig {
    /// Window length (InterFusion: 100). z2 has ⌈window / 8⌉ steps per metric (13 for 100).
    pub window: usize,
    /// Recurrent cell of q's backward RNN: `gru` (InterFusion) or `lstm`.
    pub cell: Cell,
    /// Recurrent hidden units (InterFusion: 500; 64 here so that an SMD machine trains in
    /// minutes on two CPU cores — set 500 for the paper's size).
    pub hidden: usize,
    /// Units of the dense layers in q and p (InterFusion: 500; 64 here, as `hidden`).
    pub dense: usize,
    /// Size of z1 per step (InterFusion: 3).
    pub latent: usize,
    /// RealNVP levels on z1's posterior (InterFusion: 20; 0 turns the flow off).
    pub flow_levels: usize,
    /// Epochs of pre-training z2's convolutional VAE (InterFusion: 20; skipped when a fit
    /// continues from a trained network).
    pub pretrain_epochs: usize,
    /// Epochs of training the whole model (InterFusion: 20).
    pub epochs: usize,
    /// Mini-batch size (InterFusion: 100).
    pub batch_size: usize,
    /// Adam's initial learning rate (InterFusion: 1e-3).
    pub learning_rate: f64,
    /// The learning rate halves every this many epochs, in each stage (InterFusion: 10).
    pub anneal_every: usize,
    /// Gradient L2-norm clip per parameter (InterFusion: 10).
    pub gradient_clip: f64,
    /// L2 weight penalty (InterFusion: 1e-4 on the dense and convolution kernels; applied to
    /// every parameter here, through Adam's weight decay).
    pub l2: f64,
    /// Share of the training series, at its end, held out: each stage keeps the network with
    /// the lowest held-out loss after any epoch (InterFusion: 0.3; 0 keeps the last network).
    pub validation: f64,
    /// Use every `train_stride`-th training window (InterFusion: 1, every window).
    pub train_stride: usize,
    /// MCMC imputation steps of each window's newest point before scoring (InterFusion: 10;
    /// 0 scores the observed window as it is).
    pub mcmc_iterations: usize,
}

impl Default for InterFusionConfig {
    fn default() -> Self {
        InterFusionConfig {
            window: 100,
            cell: Cell::Gru,
            hidden: 64,
            dense: 64,
            latent: 3,
            flow_levels: 20,
            pretrain_epochs: 20,
            epochs: 20,
            batch_size: 100,
            learning_rate: 1e-3,
            anneal_every: 10,
            gradient_clip: 10.0,
            l2: 1e-4,
            validation: 0.3,
            train_stride: 1,
            mcmc_iterations: 10,
        }
    }
}

detector_config! {
    InterFusionConfig = "interfusion", batch batch_size;
    counts: window, hidden, dense, epochs, batch_size, anneal_every, train_stride;
    // The share of the training series held out.
    shares_below_one: validation;
    positive: learning_rate, gradient_clip;
    non_negative: l2;
    |c, checks| {
        // A coupling layer splits z1 in two.
        checks.at_most_counts(&[("flow_levels", c.flow_levels), ("latent", c.latent)]);
        if c.flow_levels > 0 {
            checks.require(
                "latent",
                c.latent >= 2,
                c.latent,
                "at least 2 with a flow (set flow_levels to 0 for latent 1)",
            );
        } else {
            checks.at_least("latent", c.latent, 1);
        }
    }
}

const KIND: &str = InterFusionConfig::KIND;
const WEIGHTS: &str = "interfusion.bpk";

/// The InterFusion detector.
#[derive(Debug)]
pub struct InterFusion {
    config: InterFusionConfig,
    net: nn::Fitted<InterFusionNet>,
}

impl InterFusion {
    /// Builds an unfitted detector.
    pub fn new(config: InterFusionConfig) -> Result<InterFusion> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            InterFusionNet::new(c, m, device)
        });
        Ok(InterFusion { config, net })
    }
}

/// A stage's training objective: the loss of each window of a batch, `batch × 1`, under
/// posterior samples drawn from the fit's noise.
type Objective = fn(&InterFusionNet, Tensor<3>, &InterFusionConfig, &mut nn::Noise) -> Tensor<2>;

fn pretraining(
    net: &InterFusionNet,
    x: Tensor<3>,
    _: &InterFusionConfig,
    noise: &mut nn::Noise,
) -> Tensor<2> {
    net.pretrain_negative_elbo(x, noise)
}

fn whole_model(
    net: &InterFusionNet,
    x: Tensor<3>,
    c: &InterFusionConfig,
    noise: &mut nn::Noise,
) -> Tensor<2> {
    net.negative_elbo(x, c.latent, noise)
}

/// What a stage trains on: the series, its training window starts and the held-out part.
struct StageData<'a> {
    input: &'a MtsInput<'a>,
    starts: &'a [usize],
    split: Option<&'a ValidationSplit>,
}

/// The mean loss of the held-out windows under `net` (one posterior draw each).
fn held_out_loss(
    net: &InterFusionNet,
    objective: Objective,
    data: &StageData,
    split: &ValidationSplit,
    c: &InterFusionConfig,
    noise: &mut nn::Noise,
) -> f64 {
    let (m, w) = (data.input.n_metrics, c.window);
    let device = nn::device_of(net);
    let (mut sum, mut batch) = (0.0, Vec::new());
    for chosen in split.starts.chunks(c.batch_size) {
        data.input.gather_windows(w, chosen, &mut batch);
        let x = nn::tensor3(batch.clone(), chosen.len(), w, m, &device);
        sum += nn::scalar(objective(net, x, c, noise).sum());
    }
    sum / split.starts.len().max(1) as f64
}

/// One training stage: `epochs` epochs of Adam on `objective` (clipped, with weight decay),
/// the learning rate halved every `anneal_every` epochs, and — with a held-out part — the
/// network with the lowest held-out loss after any epoch returned. `report` passes each
/// epoch's loss to the caller's callback (the whole-model stage); every stage fails on a
/// loss that is no longer finite.
#[allow(clippy::too_many_arguments)]
fn train_stage(
    net: InterFusionNet,
    objective: Objective,
    data: &StageData,
    epochs: usize,
    report: bool,
    c: &InterFusionConfig,
    options: &FitOptions,
    device: &Device,
    noise: &mut nn::Noise,
) -> Result<(InterFusionNet, f64)> {
    // The batch step and the held-out check after each epoch both draw from it.
    let noise = std::sync::Mutex::new(noise);
    let draw = || noise.lock().unwrap_or_else(|e| e.into_inner());
    let mut optimiser = nn::adam()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(c.gradient_clip as f32)))
        .with_weight_decay((c.l2 > 0.0).then(|| WeightDecayConfig::new(c.l2 as f32)))
        .init();
    let silent = FitOptions {
        on_epoch: None,
        ..options.clone()
    };
    let callback = if report { options } else { &silent };
    let mut windows = nn::TrainingWindows::starting_at(data.input, c.window, data.starts.to_vec());
    let mut best = None::<(f64, InterFusionNet)>;
    let (net, last_loss) = nn::Epochs::new(KIND, &windows, c.batch_size, epochs, callback)
        .run_checked(
            net,
            |net, idx, epoch| {
                let lr = nn::step_decay(c.learning_rate, 0.5, c.anneal_every, epoch);
                let x = windows.tensor3(idx, device);
                let loss = objective(&net, x, c, &mut draw()).mean();
                nn::descend(&mut optimiser, lr, net, loss)
            },
            |net, _| {
                if let Some(split) = data.split {
                    let candidate = net.valid();
                    let loss = held_out_loss(&candidate, objective, data, split, c, &mut draw());
                    if best.as_ref().is_none_or(|(b, _)| loss < *b) {
                        best = Some((loss, candidate));
                    }
                }
            },
        )?;
    // Training goes on from the chosen network: back onto the autodiff device.
    let chosen = match best {
        Some((_, net)) => net.fork(device).train(),
        None => net,
    };
    Ok((chosen, last_loss))
}

impl Detector for InterFusion {
    crate::config::config_methods!(window);

    /// The convolutions and the recurrent layer are the generic feature extractors; the
    /// Gaussian heads, the flow and the dense layers are specific to the entity.
    fn layer_groups(&self) -> Vec<LayerGroup> {
        let generic = ["q_conv", "deconv", "a_rnn"];
        let specific = [
            "q_z2",
            "pretrain_x",
            "a_dense",
            "q_z1",
            "flow",
            "p_z1",
            "p_from_z1",
            "p_dense",
            "x_params",
        ];
        generic
            .iter()
            .map(|g| LayerGroup::new(g, LayerRole::Generic))
            .chain(
                specific
                    .iter()
                    .map(|g| LayerGroup::new(g, LayerRole::TaskSpecific)),
            )
            .collect()
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        // A fit that continues from a trained network keeps its z2 path as it is.
        let pretrain = !(options.warm_start && self.net.get(m).is_ok());
        let (device, net) = self.net.start_fit(m, options);
        let split = validation_split(input.len(), w, c.validation);
        let train_end = split.as_ref().map_or(input.len(), |s| s.train_end);
        // Less the windows holding a step labelled anomalous (`TrainingWindows` leaves them out
        // too), so that the summary counts what was trained on.
        let starts: Vec<usize> = (0..=train_end - w)
            .step_by(c.train_stride)
            .filter(|&s| !input.window_labelled_anomalous(s, w))
            .collect();
        let data = StageData {
            input,
            starts: &starts,
            split: split.as_ref(),
        };
        let mut noise = nn::Noise::for_fit(options.seed);
        let net = if pretrain && c.pretrain_epochs > 0 {
            let epochs = c.pretrain_epochs;
            train_stage(
                net,
                pretraining,
                &data,
                epochs,
                false,
                &c,
                options,
                &device,
                &mut noise,
            )?
            .0
        } else {
            net
        };
        let epochs = options.epochs.unwrap_or(c.epochs);
        let (net, last_loss) = train_stage(
            net,
            whole_model,
            &data,
            epochs,
            true,
            &c,
            options,
            &device,
            &mut noise,
        )?;
        self.net.keep_trained(&net, m, options);
        Ok(FitSummary::trained(epochs, last_loss, starts.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let net = self.net.get(input.n_metrics)?;
        let contributions = mcmc::newest_step_nll(net, input, &self.config);
        Ok(Scores::from_contributions(contributions, input.n_metrics))
    }

    nn::fitted_checkpoints!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_are_refused_with_the_key_named() {
        for (key, value) in [
            ("latent", serde_json::json!(0)),
            ("learning_rate", serde_json::json!(-1.0)),
            ("l2", serde_json::json!(-0.1)),
            ("validation", serde_json::json!(1.0)),
        ] {
            let mut json = serde_json::to_value(InterFusionConfig::default()).unwrap();
            json[key] = value;
            let config: InterFusionConfig = serde_json::from_value(json).unwrap();
            let err = InterFusion::new(config).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let one = InterFusionConfig {
            latent: 1,
            ..InterFusionConfig::default()
        };
        assert!(InterFusion::new(one.clone()).is_err());
        assert!(InterFusion::new(InterFusionConfig {
            flow_levels: 0,
            ..one
        })
        .is_ok());
    }
}
