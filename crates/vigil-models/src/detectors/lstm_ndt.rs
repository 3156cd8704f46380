//! LSTM-NDT's forecaster (Hundman et al., KDD 2018): a stack of LSTM layers reads the
//! `window - 1` steps before a point and a dense layer predicts the point's values; a metric's
//! score is the absolute error of its prediction (the paper's e(t) = |y(t) − ŷ(t)|, kept per
//! metric). Trained on the mean squared error, as the paper's Keras model is.
//!
//! The paper predicts one telemetry channel from all of them; over a multivariate series every
//! metric is predicted, as the TranAD paper's benchmark of LSTM-NDT does. Its second half, the
//! non-parametric dynamic threshold, is a threshold rather than a detector: it lives with the
//! others as `ndt` (vigil_core::threshold::ndt) and serves any detector — `--threshold ndt`
//! gives the paper's pairing. The recurrent layers are vigil's fused ones (nn::rnn), as in the
//! recurrent VAE.

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::Result;
use crate::nn::infer::{par_rows, Dense};
use crate::nn::{self, rnn::Cell, rnn::Recurrent, Activation};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// LSTM-NDT configuration. The paper's values (its `telemanom` code's config) are noted where
/// ours differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LstmNdtConfig {
    /// Steps per window: the `window - 1` steps read, then the step predicted (paper: 250 read;
    /// 100 here so that a machine of SMD trains in minutes on two CPU cores).
    pub window: usize,
    /// LSTM units per layer (paper: 80).
    pub hidden: usize,
    /// LSTM layers (paper: 2).
    pub layers: usize,
    /// Dropout on the last LSTM state before the dense layer, in training (paper: 0.3, after
    /// each LSTM layer).
    pub dropout: f64,
    /// Training epochs (paper: up to 35, stopping early when the validation loss stalls for 10).
    pub epochs: usize,
    /// Mini-batch size (paper: 70).
    pub batch_size: usize,
    /// Adam learning rate (paper: Keras' default, 1e-3).
    pub learning_rate: f64,
    /// Use every `train_stride`-th training window (paper: 1, every window).
    pub train_stride: usize,
}

impl Default for LstmNdtConfig {
    fn default() -> Self {
        LstmNdtConfig {
            window: 100,
            hidden: 80,
            layers: 2,
            dropout: 0.3,
            epochs: 10,
            batch_size: 70,
            learning_rate: 1e-3,
            train_stride: 1,
        }
    }
}

detector_config! {
    LstmNdtConfig = "lstm-ndt", batch batch_size;
    counts: hidden, layers, epochs, batch_size, train_stride;
    shares_below_one: dropout;
    positive: learning_rate;
    |c, checks| {
        checks
            .require(
                "window",
                c.window >= 2,
                c.window,
                "at least 2 (the steps read, then the step predicted)",
            )
            .at_most_counts(&[("window", c.window)]);
    }
}

#[derive(Module, Debug)]
struct LstmNdtNet {
    lstm: Recurrent,
    // vigil's dropout, whose masks come from the fit's seed; burn's draws from the process-wide
    // generator, which another fit running at once would share.
    dropout: nn::Dropout,
    head: Linear,
}

impl LstmNdtNet {
    fn new(c: &LstmNdtConfig, metrics: usize, device: &Device) -> Self {
        LstmNdtNet {
            lstm: Recurrent::new(Cell::Lstm, metrics, c.hidden, c.layers, device),
            dropout: nn::Dropout::new(c.dropout),
            head: LinearConfig::new(c.hidden, metrics).init(device),
        }
    }

    /// The prediction `[batch, metrics]` of the step after `history` `[batch, steps, metrics]`.
    fn forward(&self, history: Tensor<3>) -> Tensor<2> {
        let [batch, steps, _] = history.dims();
        let states = self.lstm.forward(history);
        let hidden = states.dims()[2];
        let last = states.narrow(1, steps - 1, 1).reshape([batch, hidden]);
        self.head.forward(self.dropout.forward(last))
    }
}

/// The LSTM-NDT forecaster.
#[derive(Debug)]
pub struct LstmNdt {
    config: LstmNdtConfig,
    net: nn::Fitted<LstmNdtNet>,
}

const WEIGHTS: &str = "lstm_ndt.bpk";

impl LstmNdt {
    /// Builds an unfitted detector.
    pub fn new(config: LstmNdtConfig) -> Result<LstmNdt> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            LstmNdtNet::new(c, m, device)
        });
        Ok(LstmNdt { config, net })
    }
}

/// Windows per scoring task: each runs the LSTM stack over its windows' steps.
const SCORE_CHUNK_WINDOWS: usize = 64;

impl Detector for LstmNdt {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        vec![
            LayerGroup::new("lstm", LayerRole::Generic),
            LayerGroup::new("head", LayerRole::TaskSpecific),
        ]
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let (device, net) = self.net.start_fit(m, options);
        nn::seed_dropout(options.seed);
        let mut windows = nn::TrainingWindows::every(input, w, input.len(), c.train_stride);
        let mut optimiser = nn::adam().init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let (net, last_loss) = nn::Epochs::new("lstm-ndt", &windows, c.batch_size, epochs, options)
            .run(net, |net, idx, _| {
                let b = idx.len();
                let x = windows.tensor3(idx, &device);
                let history = x.clone().narrow(1, 0, w - 1);
                let target = x.narrow(1, w - 1, 1).reshape([b, m]);
                let loss = (net.forward(history) - target).square().mean();
                nn::descend(&mut optimiser, c.learning_rate, net, loss)
            })?;
        self.net.keep_trained(&net, m, options);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let lstm = net.lstm.inference_weights();
        let hidden = lstm.hidden();
        let head = Dense::from_linear(&net.head);
        let steps = w - 1;
        let contributions = par_rows(input.len(), m, SCORE_CHUNK_WINDOWS, |rows, out| {
            let n = rows.len();
            let (mut x, mut predicted) = (Vec::new(), Vec::new());
            windows_ending_at(input.values, m, w, rows, &mut x);
            // Each window: its first `w - 1` steps are read, its newest step is predicted.
            let history: Vec<f32> = (0..n)
                .flat_map(|r| &x[r * w * m..(r * w + steps) * m])
                .copied()
                .collect();
            let states = lstm.forward(&history, n, steps);
            let last: Vec<f32> = (0..n)
                .flat_map(|r| {
                    &states[(r * steps + steps - 1) * hidden..(r * steps + steps) * hidden]
                })
                .copied()
                .collect();
            head.forward(&last, n, Activation::Linear, &mut predicted);
            for r in 0..n {
                let actual = &x[(r * w + steps) * m..(r * w + w) * m];
                for (c, value) in actual.iter().enumerate() {
                    out[r * m + c] = (value - predicted[r * m + c]).abs();
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
        let values: Vec<f32> = (0..140 * m)
            .map(|i| ((i as f32) * 0.31).sin() * 0.5 + 0.5)
            .collect();
        let input = MtsInput::new(&values, m);
        let config = LstmNdtConfig {
            window: 12,
            hidden: 8,
            epochs: 1,
            ..LstmNdtConfig::default()
        };
        let mut det = LstmNdt::new(config.clone()).unwrap();
        det.fit(&input, &FitOptions::default()).unwrap();
        let w = config.window;
        let net = det.net.get(m).unwrap();
        let mut x = Vec::new();
        windows_ending_at(input.values, m, w, 0..input.len(), &mut x);
        let n = input.len();
        let x = nn::tensor3(x, n, w, m, &nn::device());
        let predicted = net.forward(x.clone().narrow(1, 0, w - 1));
        let actual = x.narrow(1, w - 1, 1).reshape([n, m]);
        let want = nn::to_vec((actual - predicted).abs());
        let got = det.score(&input).unwrap().per_metric;
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    #[test]
    fn a_window_too_short_to_forecast_is_refused() {
        let err = LstmNdt::new(LstmNdtConfig {
            window: 1,
            ..LstmNdtConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("window must be at least 2"), "{err}");
    }
}
