//! OmniAnomaly (Su et al., *Robust Anomaly Detection for Multivariate Time Series through
//! Stochastic Recurrent Neural Network*, KDD 2019): a GRU + VAE whose latents are connected in
//! time twice over — each step's posterior is conditioned on the previous step's latent, and the
//! prior is a linear Gaussian state-space model — with a planar normalising flow on the
//! posterior. The score of a point is the negative reconstruction log-probability of its values
//! at the newest step of its window, per metric.
//!
//! Files: `net.rs` the network and ELBO, `flow.rs` the planar flow, `prior.rs` the state-space
//! prior. `rnn-vae` is this model without the connections and the flow.

mod flow;
mod net;
mod prior;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::Result;
use crate::nn::holdout::{validation_split, ValidationSplit};
use crate::nn::infer::{newest_step_nll, newest_steps, par_rows, Dense};
use crate::nn::{self, rnn::Cell, Activation};
use burn::prelude::*;
use net::OmniAnomalyNet;
use prior::StateSpacePrior;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// OmniAnomaly configuration; the authors' values (their `main.py`) are noted where ours differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OmniAnomalyConfig {
    /// Recurrent cell: `gru` (OmniAnomaly) or `lstm`.
    pub cell: Cell,
    /// Window length (OmniAnomaly: 100).
    pub window: usize,
    /// Recurrent hidden units (OmniAnomaly: 500; 64 here so that an SMD machine trains in
    /// minutes on two CPU cores — set 500 for the paper's size).
    pub hidden: usize,
    /// Units of the two dense layers after each GRU (OmniAnomaly: 500; 64 here, as `hidden`).
    pub dense: usize,
    /// Latent size per step (OmniAnomaly: 3).
    pub latent: usize,
    /// Planar flow layers on the posterior (OmniAnomaly: 20; 0 turns the flow off).
    pub flow_layers: usize,
    /// Training epochs (OmniAnomaly: 10).
    pub epochs: usize,
    /// Mini-batch size (OmniAnomaly: 50).
    pub batch_size: usize,
    /// Adam learning rate (OmniAnomaly: 1e-3).
    pub learning_rate: f64,
    /// Added to every standard deviation (OmniAnomaly: 1e-4).
    pub std_epsilon: f64,
    /// Gradient L2-norm clip per parameter (OmniAnomaly: 10).
    pub gradient_clip: f64,
    /// Use every `train_stride`-th training window (OmniAnomaly: 1, every window).
    pub train_stride: usize,
    /// Share of the training series, at its end, held out to choose the model: the network
    /// with the lowest validation loss seen is the one kept (OmniAnomaly: 0.3; 0 trains on
    /// everything and keeps the last network).
    pub validation: f64,
    /// Training steps between validations (OmniAnomaly: 100).
    pub validate_every: usize,
}

impl Default for OmniAnomalyConfig {
    fn default() -> Self {
        OmniAnomalyConfig {
            cell: Cell::Gru,
            window: 100,
            hidden: 64,
            dense: 64,
            latent: 3,
            flow_layers: 20,
            epochs: 10,
            batch_size: 50,
            learning_rate: 1e-3,
            std_epsilon: 1e-4,
            gradient_clip: 10.0,
            train_stride: 1,
            validation: 0.3,
            validate_every: 100,
        }
    }
}

detector_config! {
    OmniAnomalyConfig = "omni-anomaly", batch batch_size;
    counts: window, hidden, dense, latent, epochs, batch_size, train_stride, validate_every;
    at_most_counts: flow_layers;
    // The share of the training series held out.
    shares_below_one: validation;
    positive: learning_rate, std_epsilon, gradient_clip;
}

const KIND: &str = OmniAnomalyConfig::KIND;
const WEIGHTS: &str = "omni_anomaly.bpk";

/// The OmniAnomaly detector.
#[derive(Debug)]
pub struct OmniAnomaly {
    config: OmniAnomalyConfig,
    net: nn::Fitted<OmniAnomalyNet>,
}

impl OmniAnomaly {
    /// Builds an unfitted detector.
    pub fn new(config: OmniAnomalyConfig) -> Result<OmniAnomaly> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            OmniAnomalyNet::new(c, m, device)
        });
        Ok(OmniAnomaly { config, net })
    }
}

/// The mean negative ELBO of the held-out windows under `net` (one posterior sample each, as
/// the authors' validation).
fn validation_loss(
    net: &OmniAnomalyNet,
    input: &MtsInput,
    split: &ValidationSplit,
    prior: &StateSpacePrior,
    c: &OmniAnomalyConfig,
    noise: &mut nn::Noise,
) -> f64 {
    let (m, w) = (input.n_metrics, c.window);
    let device = nn::device_of(net);
    let (mut sum, mut count) = (0.0, 0usize);
    let mut batch = Vec::new();
    for chosen in split.starts.chunks(c.batch_size) {
        input.gather_windows(w, chosen, &mut batch);
        let x = nn::tensor3(batch.clone(), chosen.len(), w, m, &device);
        sum += nn::scalar(net.negative_elbo(x, prior, c.std_epsilon, noise).sum());
        count += chosen.len();
    }
    sum / count.max(1) as f64
}

/// Windows per scoring task (as `rnn-vae`: two recurrent layers over 100 steps per window).
const SCORE_CHUNK_WINDOWS: usize = 64;

impl Detector for OmniAnomaly {
    crate::config::config_methods!(window);

    /// The two GRUs are the generic feature extractors; everything between and after them is
    /// specific to the entity it was trained on.
    fn layer_groups(&self) -> Vec<LayerGroup> {
        vec![
            LayerGroup::new("q_rnn", LayerRole::Generic),
            LayerGroup::new("p_rnn", LayerRole::Generic),
            LayerGroup::new("q_dense", LayerRole::TaskSpecific),
            LayerGroup::new("posterior", LayerRole::TaskSpecific),
            LayerGroup::new("flow", LayerRole::TaskSpecific),
            LayerGroup::new("p_dense", LayerRole::TaskSpecific),
            LayerGroup::new("x_mean", LayerRole::TaskSpecific),
            LayerGroup::new("x_std", LayerRole::TaskSpecific),
        ]
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let (device, net) = self.net.start_fit(m, options);
        let prior = StateSpacePrior::new(w);
        let split = validation_split(input.len(), w, c.validation);
        let train_end = split.as_ref().map_or(input.len(), |s| s.train_end);
        let mut windows = nn::TrainingWindows::every(input, w, train_end, c.train_stride);
        let mut optimiser = nn::adam()
            .with_grad_clipping(Some(
                burn::optim::grad_clipping::GradientClippingConfig::Norm(c.gradient_clip as f32),
            ))
            .init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let mut best: Option<(f64, OmniAnomalyNet)> = None;
        let mut steps = 0usize;
        let mut noise = nn::Noise::for_fit(options.seed);
        let (net, last_loss) = nn::Epochs::new(KIND, &windows, c.batch_size, epochs, options).run(
            net,
            |net, idx, _| {
                let x = windows.tensor3(idx, &device);
                // The authors' loss: the negative ELBO of a window summed over its steps and
                // metrics, averaged over the batch.
                let loss = net
                    .negative_elbo(x, &prior, c.std_epsilon, &mut noise)
                    .mean();
                let (net, reported) = nn::descend(&mut optimiser, c.learning_rate, net, loss);
                steps += 1;
                if let Some(split) = &split {
                    if steps.is_multiple_of(c.validate_every) {
                        let candidate = net.valid();
                        let loss =
                            validation_loss(&candidate, input, split, &prior, &c, &mut noise);
                        if best.as_ref().is_none_or(|(b, _)| loss < *b) {
                            best = Some((loss, candidate));
                        }
                    }
                }
                (net, reported)
            },
        )?;
        // The last network competes too: training may end between two validations.
        let last = net.valid();
        let chosen = match (&split, best) {
            (Some(split), Some((best_loss, best_net))) => {
                if validation_loss(&last, input, split, &prior, &c, &mut noise) <= best_loss {
                    last
                } else {
                    best_net
                }
            }
            _ => last,
        };
        self.net.set(chosen.to_device(&options.device), m);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    /// Deterministic: every step's latent is its posterior mean given the previous step's
    /// (itself a mean), moved by the flow. The authors average 1,024 posterior samples before
    /// the decoder's GRU (their `rnn` wrapper reduces the sample axis), which approximates the
    /// same point at 1,024 times the cost.
    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w, l) = (input.n_metrics, self.config.window, self.config.latent);
        let net = self.net.get(m)?;
        let eps = self.config.std_epsilon as f32;
        let (q_rnn, p_rnn) = (net.q_rnn.inference_weights(), net.p_rnn.inference_weights());
        let q_dense: Vec<Dense> = net.q_dense.iter().map(Dense::from_linear).collect();
        let p_dense: Vec<Dense> = net.p_dense.iter().map(Dense::from_linear).collect();
        let from_features = Dense::from_linear(&net.posterior.features);
        // `previous` is [latent, 2·latent] row-major; only its mean columns are needed.
        let previous = nn::to_vec(net.posterior.previous.weight.val());
        let flow = net.flow.inference_weights();
        let [x_mean, x_std] = [&net.x_mean, &net.x_std].map(Dense::from_linear);
        let hidden = p_rnn.hidden();
        let contributions = par_rows(input.len(), m, SCORE_CHUNK_WINDOWS, |rows, out| {
            let n = rows.len();
            let (mut x, mut b) = (Vec::new(), Vec::new());
            windows_ending_at(input.values, m, w, rows, &mut x);
            // q: features of every step, then the posterior means step by step.
            let mut a = q_rnn.forward(&x, n, w);
            for layer in &q_dense {
                layer.forward(&a, n * w, Activation::Linear, &mut b);
                std::mem::swap(&mut a, &mut b);
            }
            from_features.forward(&a, n * w, Activation::Linear, &mut b);
            let mut z = vec![0.0f32; n * w * l];
            for r in 0..n {
                for t in 0..w {
                    let row = r * w + t;
                    for j in 0..l {
                        let mut mean = b[row * 2 * l + j];
                        if t > 0 {
                            for i in 0..l {
                                mean += z[(row - 1) * l + i] * previous[i * 2 * l + j];
                            }
                        }
                        z[row * l + j] = mean;
                    }
                }
            }
            flow.apply(&mut z);
            // p: the decoder needs every step's latent, but only the newest step is scored.
            let decoded = p_rnn.forward(&z, n, w);
            a = newest_steps(&decoded, n, w, hidden);
            for layer in &p_dense {
                layer.forward(&a, n, Activation::Linear, &mut b);
                std::mem::swap(&mut a, &mut b);
            }
            let (mut mean, mut std) = (Vec::new(), Vec::new());
            x_mean.forward(&a, n, Activation::Linear, &mut mean);
            x_std.forward(&a, n, Activation::Linear, &mut std);
            newest_step_nll(&x, w, m, &mean, &std, eps, out);
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    nn::fitted_checkpoints!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::through;

    /// The slice kernels give burn's forward pass on the deterministic (posterior-mean) path.
    #[test]
    fn kernel_scores_match_burns_forward_pass() {
        let m = 3;
        let values: Vec<f32> = (0..90 * m)
            .map(|i| ((i as f32) * 0.31).sin() * 0.5 + 0.5)
            .collect();
        let input = MtsInput::new(&values, m);
        for cell in [Cell::Gru, Cell::Lstm] {
            let config = OmniAnomalyConfig {
                cell,
                window: 12,
                hidden: 8,
                dense: 8,
                flow_layers: 4,
                epochs: 1,
                ..OmniAnomalyConfig::default()
            };
            let mut det = OmniAnomaly::new(config.clone()).unwrap();
            det.fit(&input, &FitOptions::default()).unwrap();
            let (w, l, eps) = (config.window, config.latent, config.std_epsilon);
            let net = det.net.get(m).unwrap();
            let n = input.len();
            let mut x = Vec::new();
            windows_ending_at(input.values, m, w, 0..n, &mut x);
            let x = nn::tensor3(x, n, w, m, &nn::device());
            let from_features = net
                .posterior
                .features
                .forward(through(&net.q_dense, net.q_rnn.forward(x.clone())));
            let mut previous = Tensor::<2>::zeros([n, l], &nn::device());
            let mut means = Vec::new();
            for t in 0..w {
                let params = from_features.clone().narrow(1, t, 1).reshape([n, 2 * l])
                    + net.posterior.previous.forward(previous);
                previous = params.narrow(1, 0, l);
                means.push(previous.clone());
            }
            let (z, _) = net
                .flow
                .forward(Tensor::stack::<3>(means, 1).reshape([n * w, l]));
            let decoded = through(&net.p_dense, net.p_rnn.forward(z.reshape([n, w, l])));
            let newest = |t: Tensor<3>| t.narrow(1, w - 1, 1);
            let decoded = newest(decoded);
            let want = nn::to_vec(nn::likelihood::gaussian_nll_softplus(
                newest(x),
                net.x_mean.forward(decoded.clone()),
                net.x_std.forward(decoded),
                eps,
            ));
            let got = det.score(&input).unwrap().per_metric;
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{cell:?}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn bad_configs_are_refused_with_the_key_named() {
        for (key, value) in [
            ("latent", 0.0),
            ("learning_rate", -1.0),
            ("std_epsilon", 0.0),
        ] {
            let mut json = serde_json::to_value(OmniAnomalyConfig::default()).unwrap();
            json[key] = if key == "latent" {
                serde_json::json!(0)
            } else {
                serde_json::json!(value)
            };
            let config: OmniAnomalyConfig = serde_json::from_value(json).unwrap();
            let err = OmniAnomaly::new(config).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
