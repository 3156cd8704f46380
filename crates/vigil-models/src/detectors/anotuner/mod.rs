//! AnoTuner (Sun et al., *AnoTuner: Feedback-Based Fine-Tuning for KPI Anomaly Detection in
//! Wireless Base Stations*): a conditional VAE over windows whose condition is the window's STL
//! decomposition, trained without labels and fine-tuned from operators' feedback.
//!
//! - Training (`fit` from scratch): the ELBO on windows not labelled anomalous (`net.rs`).
//! - Fine-tuning (`fit` with `warm_start` and labels, as `vigil tune` and `vigil serve`'s tune
//!   job call it): the label-aware ELBO (LAELBO, eq. 2) on every window, those holding a step
//!   labelled anomalous pushed out; before it, false-negative augmentation (`augment.rs`)
//!   multiplies the windows labelled anomalous.
//! - Scoring: the reconstruction probability of the window's newest step — its Gaussian
//!   negative log-likelihood per metric under the decoding of the posterior mean (one point of
//!   the expectation, so that scores are deterministic) — the per-metric contributions.
//! - TSAL (`tsal.rs`): which history to fine-tune beside the feedback, and which windows to
//!   ask operators about next; it reads windows' codes through [`Detector::encode`].
//!
//! The paper gives no layer sizes, window, period or optimiser; the defaults below follow
//! Donut's (the dense VAE family the CVAE extends), with a short window so that one holds all
//! metrics. Deviations are stated where they are made (the LAELBO margin in `net.rs`).

mod augment;
mod condition;
mod net;
mod training_set;
pub mod tsal;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::nn::infer::{gaussian_nll_softplus, par_rows, Dense, DenseStack, CHUNK_ROWS};
use crate::nn::{self, Activation};
use burn::optim::decay::WeightDecayConfig;
pub use condition::Decomposer;
use net::{label_aware_loss, CvaeNet, Shape};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use training_set::{TrainingSet, CACHED_CONDITIONS_BYTES};
use vigil_core::window::{check_window, windows_ending_at};

/// AnoTuner's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnotunerConfig {
    /// Window length (steps); it holds at least two seasonal periods.
    pub window: usize,
    /// Steps of one seasonal cycle in the STL decomposition of each window (at least 2).
    pub period: usize,
    /// STL's robustness iterations (0: plain STL, the default; `condition.rs` measures why).
    pub stl_robust_loops: usize,
    /// Units of each of the two hidden layers of the encoder and of the decoder.
    pub hidden: usize,
    /// Latent size.
    pub latent: usize,
    /// Training epochs (a fine-tune's default too, unless it names its own).
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// The learning rate is multiplied by `lr_decay` every `lr_decay_epochs` epochs.
    pub lr_decay: f64,
    /// See `lr_decay`.
    pub lr_decay_epochs: usize,
    /// L2 regularisation of the weights.
    pub weight_decay: f64,
    /// Added to every standard deviation.
    pub std_epsilon: f64,
    /// LAELBO: the values labelled anomalous in a window are pushed out until their negative
    /// log-likelihood (with the KL term) reaches this many nats per value, then left alone
    /// (`net.rs` says why).
    pub anomaly_margin: f64,
    /// False-negative augmentation: windows are generated from those labelled anomalous until
    /// they number `fn_ratio` times the windows labelled normal in the fine-tune (the paper
    /// balances missed anomalies against false alarms at about 1; `augment.rs`)...
    pub fn_ratio: f64,
    /// ... but at most this many from each labelled window (0 turns augmentation off).
    pub fn_most_per_window: usize,
}

impl Default for AnotunerConfig {
    fn default() -> Self {
        AnotunerConfig {
            window: 20,
            period: 5,
            stl_robust_loops: 0,
            hidden: 100,
            latent: 8,
            epochs: 30,
            batch_size: 256,
            learning_rate: 1e-3,
            lr_decay: 0.75,
            lr_decay_epochs: 10,
            weight_decay: 1e-3,
            std_epsilon: 1e-4,
            anomaly_margin: 3.0,
            fn_ratio: 1.0,
            fn_most_per_window: 32,
        }
    }
}

detector_config! {
    AnotunerConfig = "anotuner", batch batch_size;
    counts: window, hidden, latent, epochs, batch_size, lr_decay_epochs;
    positive: learning_rate, lr_decay, std_epsilon, anomaly_margin;
    non_negative: weight_decay, fn_ratio;
    |c, checks| {
        checks
            .at_least("period", c.period, 2)
            .require(
                "window",
                c.window >= 2 * c.period,
                c.window,
                format!("at least 2 × period = {} (STL needs two cycles)", 2 * c.period),
            )
            .at_most_counts(&[
                ("window", c.window),
                ("stl_robust_loops", c.stl_robust_loops),
                ("fn_most_per_window", c.fn_most_per_window),
            ]);
    }
}

/// The AnoTuner detector.
#[derive(Debug)]
pub struct Anotuner {
    config: AnotunerConfig,
    net: nn::Fitted<CvaeNet>,
}

const WEIGHTS: &str = "anotuner.bpk";

impl Anotuner {
    /// Builds an unfitted detector.
    pub fn new(config: AnotunerConfig) -> Result<Anotuner> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            CvaeNet::new(shape(c, m), device)
        });
        Ok(Anotuner { config, net })
    }

    fn decomposer(&self) -> Decomposer {
        Decomposer {
            period: self.config.period,
            robust_loops: self.config.stl_robust_loops,
        }
    }
}

fn shape(c: &AnotunerConfig, m: usize) -> Shape {
    let d = c.window * m;
    Shape {
        d,
        conditions: Decomposer::width(c.window, m),
        hidden: c.hidden,
        latent: c.latent,
    }
}

impl Detector for Anotuner {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        // The dense VAE's: the same encoder and decoder blocks, the condition at their inputs.
        crate::detectors::vae::encoder_decoder_groups()
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let stl = self.decomposer();
        // Feedback (labels on a warm start) fine-tunes with LAELBO; anything else trains
        // unsupervised (the paper: "the label-aware ELBO is only used in feedback-based
        // fine-tuning").
        let fitted = self.net.get(m).ok().filter(|_| options.warm_start);
        let mut windows = match (fitted, input.labels) {
            (Some(fitted), Some(_)) => {
                let mut windows = TrainingSet::labelled(input, w);
                let (anomalous, normal) = windows.starts_by_label();
                let per_source = augment::per_source(
                    anomalous.len(),
                    normal.len(),
                    c.fn_ratio,
                    c.fn_most_per_window,
                );
                windows.add_generated(augment::false_negatives(
                    fitted,
                    &stl,
                    input,
                    w,
                    &anomalous,
                    per_source,
                    c.std_epsilon,
                    // The codes' own stream ("FNAUGMENT" in ASCII), apart from the posterior
                    // samples of training, which `Noise::for_fit(options.seed)` draws.
                    options.seed ^ 0x464E_4155_4755_4D45,
                )?);
                windows
            }
            _ => TrainingSet::unsupervised(input, w),
        };
        windows.decompose_ahead(&stl, CACHED_CONDITIONS_BYTES)?;
        let windows = &windows;
        let (device, net) = self.net.start_fit(m, options);
        let mut optimiser = nn::adam()
            .with_weight_decay(Some(WeightDecayConfig::new(c.weight_decay as f32)))
            .init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let mut noise = nn::Noise::for_fit(options.seed);
        let mut failure = None;
        let run = nn::Epochs::over(
            "anotuner",
            windows.len(),
            windows.weights(),
            c.batch_size,
            epochs,
            options,
        )
        .run(net, |net, idx, epoch| {
            let batch = match windows.batch(idx, &stl) {
                Ok(batch) => batch,
                Err(e) => {
                    failure.get_or_insert(e);
                    return (net, f64::NAN);
                }
            };
            let (n, d) = (idx.len(), w * m);
            let x = nn::tensor2(batch.values, n, d, &device);
            let cond = nn::tensor2(batch.conditions, n, 2 * d, &device);
            let value_labels = nn::tensor2(batch.value_anomalous, n, d, &device);
            let window_labels = nn::tensor2(batch.window_anomalous, n, 1, &device);
            let eps = noise.standard_normal([n, c.latent], &device);
            let lr = nn::step_decay(c.learning_rate, c.lr_decay, c.lr_decay_epochs, epoch);
            let (nll, kl) = net.elbo_terms(x, cond, eps, c.std_epsilon);
            let loss = label_aware_loss(nll, kl, value_labels, window_labels, c.anomaly_margin);
            nn::descend(&mut optimiser, lr, net, loss)
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let (net, last_loss) = run?;
        self.net.keep_trained(&net, m, options);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let stl = self.decomposer();
        let (d, cw) = (w * m, Decomposer::width(w, m));
        let latent = self.config.latent;
        let newest = (w - 1) * m..d;
        let eps = self.config.std_epsilon as f32;
        let (encoder_hidden, decoder_hidden) = (
            DenseStack::from_mlp(&net.encoder.hidden),
            DenseStack::from_mlp(&net.decoder.hidden),
        );
        let encoder_mean = Dense::from_linear(&net.encoder.mean);
        let [decoder_mean, decoder_std] =
            [&net.decoder.mean, &net.decoder.std].map(Dense::from_linear);
        let failure = Mutex::new(None);
        let contributions = par_rows(input.len(), m, CHUNK_ROWS, |rows, out| {
            let n = rows.len();
            let (mut x, mut cond, mut joined, mut h, mut z, mut mean, mut std) = (
                Vec::new(),
                Vec::with_capacity(n * cw),
                Vec::with_capacity(n * (d + cw)),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
            windows_ending_at(input.values, m, w, rows, &mut x);
            for window in x.chunks_exact(d) {
                if let Err(e) = stl.condition_into(window, m, &mut cond) {
                    failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                    return;
                }
            }
            // The encoder reads [x, c], the decoder [z, c], as the network was trained.
            for (window, c) in x.chunks_exact(d).zip(cond.chunks_exact(cw)) {
                joined.extend_from_slice(window);
                joined.extend_from_slice(c);
            }
            encoder_hidden.forward(&joined, n, Activation::Relu, &mut h);
            encoder_mean.forward(&h, n, Activation::Linear, &mut z);
            joined.clear();
            for (code, c) in z.chunks_exact(latent).zip(cond.chunks_exact(cw)) {
                joined.extend_from_slice(code);
                joined.extend_from_slice(c);
            }
            decoder_hidden.forward(&joined, n, Activation::Relu, &mut h);
            decoder_mean.forward_columns(&h, n, newest.clone(), Activation::Linear, &mut mean);
            decoder_std.forward_columns(&h, n, newest.clone(), Activation::Linear, &mut std);
            for r in 0..n {
                let values = &x[r * d + newest.start..(r + 1) * d];
                for (k, v) in values.iter().enumerate() {
                    let i = r * m + k;
                    out[i] = gaussian_nll_softplus(*v, mean[i], std[i], eps);
                }
            }
        });
        if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(Scores::from_contributions(contributions, m))
    }

    fn encode(&self, input: &MtsInput, starts: &[usize]) -> Result<(Vec<f32>, usize)> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let last_start = input.len().checked_sub(w);
        if let Some(&s) = starts
            .iter()
            .find(|&&s| last_start.is_none_or(|last| s > last))
        {
            return Err(ModelError::Shape(format!(
                "a window of {w} steps starting at step {s} ends after the series ({} steps)",
                input.len()
            )));
        }
        let latent = self.config.latent;
        let device = nn::device_of(net);
        let mut codes = Vec::with_capacity(starts.len() * latent);
        // In chunks, so that a long history never holds all its windows' conditions at once.
        for chunk in starts.chunks(CHUNK_ROWS * 4) {
            let mut values = Vec::with_capacity(chunk.len() * w * m);
            input.gather_windows(w, chunk, &mut values);
            let conditions = self.decomposer().conditions(&values, chunk.len(), m)?;
            let x = nn::tensor2(values, chunk.len(), w * m, &device);
            let c = nn::tensor2(conditions, chunk.len(), 2 * w * m, &device);
            let (mean, _) = net.encode(x, c, self.config.std_epsilon);
            codes.extend(nn::to_vec(mean));
        }
        Ok((codes, latent))
    }

    nn::fitted_checkpoints!();
}

#[cfg(test)]
mod tests;
