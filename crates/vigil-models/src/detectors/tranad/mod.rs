//! TranAD — deep transformer networks for anomaly detection in MTS (Tuli et al., VLDB 2022).
//!
//! A window W (length K, F metrics) is encoded by a transformer encoder over [W ‖ c], where the
//! focus score c is zero in phase 1 and the squared phase-1 error in phase 2; two one-layer
//! transformer decoders reconstruct the window's newest step from the encoder's memory:
//!   x1 = fcn(D1(W_K, E([W ‖ 0])))          x2 = fcn(D2(W_K, E([W ‖ (x1 − W)²])))
//! Loss at epoch n: mean(1/n · (x1 − W_K)² + (1 − 1/n) · (x2 − W_K)²), AdamW with step decay.
//! Score: (x2 − W_K)² per metric, on the newest step of each window.
//!
//! Faithful to the authors' code where it departs from textbook transformers, because their
//! published figures come from it: no layer normalisation, d_model = 2F with F heads of size 2,
//! a feed-forward of width 16 whose activation is `LeakyReLU(True)` — a negative slope of 1,
//! i.e. the identity (kept as `feedforward_negative_slope`), and a positional encoding that adds
//! sin and cos at every position and dimension. One change: the authors' window for step t ends
//! at t − 1 (an off-by-one against the labels); ours ends at t.

mod kernels;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::Result;
use crate::nn::infer::par_rows;
use crate::nn::{self, Attention, Dropout};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::AdamWConfig;
use burn::prelude::*;
use kernels::{TranadKernels, CHUNK_WINDOWS};
use serde::{Deserialize, Serialize};
use vigil_core::window::check_window;

/// TranAD configuration (defaults: the authors' code for SMD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranadConfig {
    /// Window length K.
    pub window: usize,
    /// Training epochs (the authors train 5).
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// AdamW learning rate (authors: 1e-4 on SMD, 1e-3 on SMAP, 2e-3 on MSL).
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// The learning rate is multiplied by `lr_decay` every `lr_decay_epochs` epochs.
    pub lr_decay_epochs: usize,
    /// See `lr_decay_epochs`.
    pub lr_decay: f64,
    /// Hidden width of the transformer feed-forward blocks.
    pub feedforward: usize,
    /// Dropout in attention, feed-forward and positional encoding.
    pub dropout: f64,
    /// Negative slope of the feed-forward LeakyReLU; 1 (the authors' effective value) is linear.
    pub feedforward_negative_slope: f64,
}

impl Default for TranadConfig {
    fn default() -> Self {
        TranadConfig {
            window: 10,
            epochs: 5,
            batch_size: 128,
            learning_rate: 1e-4,
            weight_decay: 1e-5,
            lr_decay_epochs: 5,
            lr_decay: 0.9,
            feedforward: 16,
            dropout: 0.1,
            feedforward_negative_slope: 1.0,
        }
    }
}

detector_config! {
    TranadConfig = "tranad", batch batch_size;
    counts: window, epochs, batch_size, feedforward, lr_decay_epochs;
    positive: learning_rate, lr_decay;
    shares_below_one: dropout;
    non_negative: weight_decay, feedforward_negative_slope;
}

#[derive(Module, Debug)]
struct FeedForward {
    inner: Linear,
    outer: Linear,
    dropout: Dropout,
    negative_slope: f64,
}

impl FeedForward {
    fn new(d_model: usize, hidden: usize, config: &TranadConfig, device: &Device) -> FeedForward {
        FeedForward {
            inner: LinearConfig::new(d_model, hidden).init(device),
            outer: LinearConfig::new(hidden, d_model).init(device),
            dropout: Dropout::new(config.dropout),
            negative_slope: config.feedforward_negative_slope,
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mut h = self.inner.forward(x);
        if self.negative_slope != 1.0 {
            h = burn::tensor::activation::leaky_relu(h, self.negative_slope);
        }
        self.outer.forward(self.dropout.forward(h))
    }
}

/// Self-attention and feed-forward, each with a residual connection (no layer norm).
#[derive(Module, Debug)]
struct EncoderLayer {
    self_attention: Attention,
    feedforward: FeedForward,
    dropout: Dropout,
}

impl EncoderLayer {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone()
            + self
                .dropout
                .forward(self.self_attention.forward(x.clone(), x));
        x.clone() + self.dropout.forward(self.feedforward.forward(x))
    }
}

/// Self-attention, cross-attention over the encoder memory and feed-forward, residual each.
#[derive(Module, Debug)]
struct DecoderLayer {
    self_attention: Attention,
    cross_attention: Attention,
    feedforward: FeedForward,
    dropout: Dropout,
}

impl DecoderLayer {
    fn forward(&self, target: Tensor<3>, memory: Tensor<3>) -> Tensor<3> {
        let t = target.clone()
            + self
                .dropout
                .forward(self.self_attention.forward(target.clone(), target));
        let t = t.clone()
            + self
                .dropout
                .forward(self.cross_attention.forward(t.clone(), memory));
        t.clone() + self.dropout.forward(self.feedforward.forward(t))
    }
}

#[derive(Module, Debug)]
struct TranadNet {
    encoder: EncoderLayer,
    decoder1: DecoderLayer,
    decoder2: DecoderLayer,
    output: Linear,
    positions: Tensor<3>,
    input_dropout: Dropout,
    n_metrics: usize,
}

/// The authors' positional encoding: sin(p·f_i) + cos(p·f_i) with f_i = 10000^(−i/d), shape [1, K, d].
fn positional_encoding(window: usize, d_model: usize, device: &Device) -> Tensor<3> {
    let values = (0..window)
        .flat_map(|p| {
            (0..d_model).map(move |i| {
                let angle = p as f64 * (-(i as f64) * 10000f64.ln() / d_model as f64).exp();
                (angle.sin() + angle.cos()) as f32
            })
        })
        .collect::<Vec<_>>();
    Tensor::from_data(TensorData::new(values, [1, window, d_model]), device)
}

impl TranadNet {
    fn new(n_metrics: usize, config: &TranadConfig, device: &Device) -> TranadNet {
        let d_model = 2 * n_metrics;
        let heads = n_metrics;
        let mha = || Attention::new(d_model, heads, config.dropout, device);
        let ff = || FeedForward::new(d_model, config.feedforward, config, device);
        let dropout = || Dropout::new(config.dropout);
        let decoder = || DecoderLayer {
            self_attention: mha(),
            cross_attention: mha(),
            feedforward: ff(),
            dropout: dropout(),
        };
        TranadNet {
            encoder: EncoderLayer {
                self_attention: mha(),
                feedforward: ff(),
                dropout: dropout(),
            },
            decoder1: decoder(),
            decoder2: decoder(),
            output: LinearConfig::new(d_model, n_metrics).init(device),
            positions: positional_encoding(config.window, d_model, device),
            input_dropout: dropout(),
            n_metrics,
        }
    }

    /// Encoder memory of [W ‖ focus], scaled by √F and position-encoded as in the authors' code.
    fn memory(&self, window: Tensor<3>, focus: Tensor<3>) -> Tensor<3> {
        let x = Tensor::cat(vec![window, focus], 2).mul_scalar((self.n_metrics as f64).sqrt());
        self.encoder
            .forward(self.input_dropout.forward(x + self.positions.clone()))
    }

    fn decode(&self, decoder: &DecoderLayer, target: Tensor<3>, memory: Tensor<3>) -> Tensor<3> {
        nn::sigmoid(self.output.forward(decoder.forward(target, memory)))
    }

    /// (x1, x2), each [B, 1, F], for windows [B, K, F].
    fn forward(&self, window: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [_, k, _] = window.dims();
        let newest = window.clone().narrow(1, k - 1, 1);
        let target = Tensor::cat(vec![newest.clone(), newest], 2);
        let zeros = window.zeros_like();
        let x1 = self.decode(
            &self.decoder1,
            target.clone(),
            self.memory(window.clone(), zeros),
        );
        let focus = (x1.clone() - window.clone()).square();
        let x2 = self.decode(&self.decoder2, target, self.memory(window, focus));
        (x1, x2)
    }
}

/// The TranAD detector.
#[derive(Debug)]
pub struct Tranad {
    config: TranadConfig,
    net: nn::Fitted<TranadNet>,
}

const WEIGHTS: &str = "tranad.bpk";

impl Tranad {
    /// Builds an unfitted TranAD detector.
    pub fn new(config: TranadConfig) -> Result<Tranad> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            TranadNet::new(m, c, device)
        });
        Ok(Tranad { config, net })
    }
}

impl Detector for Tranad {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        vec![
            LayerGroup::new("encoder", LayerRole::Generic),
            LayerGroup::new("decoder1", LayerRole::TaskSpecific),
            LayerGroup::new("decoder2", LayerRole::TaskSpecific),
            LayerGroup::new("output", LayerRole::TaskSpecific),
        ]
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let (m, w) = (input.n_metrics, self.config.window);
        check_window(w, input.len(), "training series")?;
        nn::seed_dropout(options.seed);
        let (device, net) = self.net.start_fit(m, options);
        let mut optimizer = AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(self.config.weight_decay as f32)
            .init();
        let epochs = options.epochs.unwrap_or(self.config.epochs);
        let c = &self.config;
        let mut windows = nn::TrainingWindows::all(input, w);
        let (net, last_loss) = nn::Epochs::new("TranAD", &windows, c.batch_size, epochs, options)
            .run(net, |net, idx, epoch| {
            let lr = nn::step_decay(c.learning_rate, c.lr_decay, c.lr_decay_epochs, epoch);
            let phase1 = 1.0 / epoch as f64;
            let x = windows.tensor3(idx, &device);
            let newest = x.clone().narrow(1, w - 1, 1);
            let (x1, x2) = net.forward(x);
            let loss = ((x1 - newest.clone()).square().mul_scalar(phase1)
                + (x2 - newest).square().mul_scalar(1.0 - phase1))
            .mean();
            nn::descend(&mut optimizer, lr, net, loss)
        })?;
        self.net.keep_trained(&net, m, options);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let m = input.n_metrics;
        let kernels = TranadKernels::new(self.net.get(m)?);
        let contributions = par_rows(input.len(), m, CHUNK_WINDOWS, |rows, out| {
            kernels.score_rows(input.values, rows, out)
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    nn::fitted_checkpoints!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::window::windows_ending_at;

    #[test]
    fn kernel_scores_match_burns_forward_pass() {
        let m = 4;
        // More windows than one scoring chunk, so that several chunks (and threads) take part.
        let values: Vec<f32> = (0..150 * m)
            .map(|i| ((i as f32) * 0.23).sin() * 0.5 + 0.5)
            .collect();
        let input = MtsInput::new(&values, m);
        for negative_slope in [1.0, 0.01] {
            let mut det = Tranad::new(TranadConfig {
                epochs: 1,
                feedforward_negative_slope: negative_slope,
                ..TranadConfig::default()
            })
            .unwrap();
            det.fit(&input, &FitOptions::default()).unwrap();
            let w = det.config.window;
            let mut x = Vec::new();
            windows_ending_at(input.values, m, w, 0..input.len(), &mut x);
            let x = nn::tensor3(x, input.len(), w, m, &nn::device());
            let newest = x.clone().narrow(1, w - 1, 1);
            let (_, x2) = det.net.get(m).unwrap().forward(x);
            let want = nn::to_vec((x2 - newest).square());
            let got = det.score(&input).unwrap().per_metric;
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }
}
