//! Anomaly Transformer (Xu, Wu, Wang & Long, *Anomaly Transformer: Time Series Anomaly
//! Detection with Association Discrepancy*, ICLR 2022).
//!
//! A transformer reconstructs each window; its anomaly-attention also yields, per step, a
//! *series* association (where the step attends) and a learned Gaussian *prior* association
//! (where a step near its neighbours would attend). Normal steps spread their attention over
//! the window, anomalies concentrate it on their neighbours, so the association discrepancy
//! (symmetric KL between the two) is small for anomalies. Training is minimax: one term pulls
//! the prior towards the series (series detached), the other pushes the series away from the
//! prior (prior detached), each beside the reconstruction error:
//!
//!   loss = (rec − k · D(series, prior̸)) + (rec + k · D(prior, series̸))
//!
//! Score of a step: softmax over the window's steps of −(Σ_layers KL(S‖P) + KL(P‖S)) · 50,
//! times the step's squared reconstruction error (mean over metrics). `net.rs` has the network.

mod in_window;
mod net;
mod prior;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::Result;
use crate::nn;
use crate::nn::discrepancy::association_discrepancy;
use burn::optim::GradientsParams;
use burn::prelude::*;
use net::{AnomalyTransformerNet, Forward};
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// Anomaly Transformer configuration; the authors' values (their `main.py`, `scripts/SMD.sh`)
/// are noted where ours differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyTransformerConfig {
    /// Window length (authors: 100).
    pub window: usize,
    /// Model width (authors: 512; 64 here so that an SMD machine trains in minutes on two CPU
    /// cores — the cost grows with its square).
    pub d_model: usize,
    /// Attention heads (authors: 8); must divide `d_model`.
    pub heads: usize,
    /// Encoder layers (authors: 3).
    pub layers: usize,
    /// Feed-forward width (authors: 512, equal to d_model; 64 here, as `d_model`).
    pub feedforward: usize,
    /// Weight k of the association discrepancy in the minimax loss (authors: 3).
    pub k: f64,
    /// Temperature of the discrepancy in the score's softmax (authors: 50).
    pub temperature: f64,
    /// Training epochs (authors: 10 on SMD, 3 on SMAP and MSL).
    pub epochs: usize,
    /// Mini-batch size (authors: 256 in their scripts).
    pub batch_size: usize,
    /// Adam learning rate of the first epoch, halved after every epoch (authors: 1e-4).
    pub learning_rate: f64,
    /// Train on the windows starting every `train_stride` steps (authors: 1 on SMAP, MSL and
    /// PSM; 100 on SMD, i.e. non-overlapping windows — their `get_loader_segment`).
    pub train_stride: usize,
}

impl Default for AnomalyTransformerConfig {
    fn default() -> Self {
        AnomalyTransformerConfig {
            window: 100,
            d_model: 64,
            heads: 8,
            layers: 3,
            feedforward: 64,
            k: 3.0,
            temperature: 50.0,
            epochs: 10,
            batch_size: 256,
            learning_rate: 1e-4,
            train_stride: 1,
        }
    }
}

detector_config! {
    AnomalyTransformerConfig = "anomaly-transformer", batch batch_size;
    counts: d_model, heads, layers, feedforward, epochs, batch_size, train_stride;
    positive: learning_rate, temperature;
    non_negative: k;
    |c, checks| {
        checks.at_least("window", c.window, 2).require(
            "heads",
            // heads = 0 is reported as a count.
            c.heads == 0 || c.d_model.is_multiple_of(c.heads),
            c.heads,
            format!("a divisor of d_model ({})", c.d_model),
        );
    }
}

const KIND: &str = AnomalyTransformerConfig::KIND;
const WEIGHTS: &str = "anomaly_transformer.bpk";

/// The Anomaly Transformer detector.
#[derive(Debug)]
pub struct AnomalyTransformer {
    config: AnomalyTransformerConfig,
    net: nn::Fitted<AnomalyTransformerNet>,
}

impl AnomalyTransformer {
    /// Builds an unfitted detector.
    pub fn new(config: AnomalyTransformerConfig) -> Result<AnomalyTransformer> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            AnomalyTransformerNet::new(m, c.d_model, c.heads, c.layers, c.feedforward, device)
        });
        Ok(AnomalyTransformer { config, net })
    }
}

/// The minimax objective of one batch and the first of its two halves, which the authors'
/// training log reports. Their two losses, back-propagated one after the other into one
/// optimiser step, are (rec − k·D(S, P̸)) + (rec + k·D(P, S̸)), D the symmetric KL averaged over
/// rows and layers; `nn::discrepancy` gives that sum's gradients in one fused op.
fn minimax_loss(out: Forward, x: Tensor<3>, k: f64) -> (Tensor<1>, f64) {
    let layers = out.associations.len();
    let reconstruction = (out.reconstruction - x).square().mean();
    let mut discrepancy = Tensor::<1>::zeros([1], &reconstruction.device());
    for a in out.associations {
        let steps = a.series.dims()[3];
        // Summed over a row's `steps` entries, averaged over batch, heads and rows.
        let per_row = association_discrepancy(a.series, a.prior)
            .mean()
            .mul_scalar(steps as f64);
        discrepancy = discrepancy + per_row;
    }
    let discrepancy = discrepancy.div_scalar(layers as f64);
    let reported =
        nn::scalar(reconstruction.clone().detach()) - k * nn::scalar(discrepancy.clone().detach());
    (
        reconstruction.mul_scalar(2.0) + discrepancy.mul_scalar(k),
        reported,
    )
}

/// For each point t, exp(−temperature · d_t) / Σ exp(−temperature · d_j) over the points j of
/// t's trailing window (t − window + 1 ..= t, fewer at the start of a series).
fn trailing_softmax(discrepancy: &[f32], window: usize, temperature: f64) -> Vec<f32> {
    let logits: Vec<f64> = discrepancy
        .iter()
        .map(|&d| -temperature * d as f64)
        .collect();
    (0..logits.len())
        .map(|t| {
            let span = &logits[t.saturating_sub(window - 1)..=t];
            let top = span.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = span.iter().map(|l| (l - top).exp()).sum();
            ((logits[t] - top).exp() / sum) as f32
        })
        .collect()
}

/// Windows scored per forward pass: the attention maps of a pass hold
/// windows × heads × steps² values per layer and association, so this bounds scoring memory
/// (32 windows of 100 steps, 8 heads, 3 layers: about 60 MB).
const SCORE_CHUNK_WINDOWS: usize = 32;

impl Detector for AnomalyTransformer {
    crate::config::config_methods!();

    /// A point's weight compares it with the `window − 1` points before it, each scored from
    /// its own window (`score`).
    fn window(&self) -> usize {
        2 * self.config.window - 1
    }

    /// The embedding and the attention encoder are generic; the final norm and the
    /// reconstruction head are specific to the entity.
    fn layer_groups(&self) -> Vec<LayerGroup> {
        vec![
            LayerGroup::new("embedding", LayerRole::Generic),
            LayerGroup::new("encoder", LayerRole::Generic),
            LayerGroup::new("final_norm", LayerRole::TaskSpecific),
            LayerGroup::new("projection", LayerRole::TaskSpecific),
        ]
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let (device, net) = self.net.start_fit(m, options);
        let fixed = net.fixed_encodings(w, &device);
        let mut windows = nn::TrainingWindows::every(input, w, input.len(), c.train_stride);
        let mut optimiser = nn::adam().init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let (net, last_loss) = nn::Epochs::new(KIND, &windows, c.batch_size, epochs, options).run(
            net,
            |net, idx, epoch| {
                // The authors halve the learning rate after every epoch.
                let lr = nn::step_decay(c.learning_rate, 0.5, 1, epoch);
                let x = windows.tensor3(idx, &device);
                let (loss, reported) = minimax_loss(net.forward(x.clone(), &fixed), x, c.k);
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                (optimiser.step(lr, net, grads), reported)
            },
        )?;
        self.net.keep_trained(&net, m, options);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    /// Each point is the newest step of its window. Its discrepancy is measured there, and its
    /// weight is its share of exp(−temperature · discrepancy) among the `window` points ending
    /// at it, each measured as the newest step of its own window; the weight times the point's
    /// squared error per metric, divided by the metric count, is its contribution (the
    /// contributions add up to the authors' criterion, which averages over metrics).
    ///
    /// The authors normalise over the positions of one window instead (their test windows do
    /// not overlap). A stream only ever has its newest point at the window's edge, where the
    /// associations are one-sided and the discrepancy is systematically different from the
    /// interior's: within one window the newest point's weight is then ~0 whatever happens.
    /// Comparing each point with its predecessors *at the same position* keeps the paper's
    /// criterion — a point's share of the recent attention discrepancy — and makes a score a
    /// function of the last `2 · window − 1` steps, as streaming needs.
    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let device = nn::device_of(net);
        let n = input.len();
        let fixed = net.fixed_encodings(w, &device);
        let (mut discrepancy, mut errors) = (Vec::with_capacity(n), Vec::with_capacity(n * m));
        let mut x = Vec::new();
        let mut start = 0;
        while start < n {
            let end = (start + SCORE_CHUNK_WINDOWS).min(n);
            windows_ending_at(input.values, m, w, start..end, &mut x);
            let rows = end - start;
            let windows = nn::tensor3(x.clone(), rows, w, m, &device);
            let out = net.forward(windows.clone(), &fixed);
            // The newest step's row of each layer's maps: its symmetric KL, mean over heads.
            let mut newest_discrepancy = Tensor::<2>::zeros([rows, 1], &device);
            for a in out.associations {
                let heads = a.series.dims()[1];
                let newest = |t: Tensor<4>| t.narrow(2, w - 1, 1);
                let kl = association_discrepancy(newest(a.series), newest(a.prior));
                newest_discrepancy =
                    newest_discrepancy + kl.sum_dim(3).reshape([rows, heads]).mean_dim(1);
            }
            discrepancy.extend(nn::to_vec(newest_discrepancy));
            let newest = |t: Tensor<3>| t.narrow(1, w - 1, 1).reshape([rows, m]);
            errors.extend(nn::to_vec(
                (newest(out.reconstruction) - newest(windows)).square(),
            ));
            start = end;
        }
        let weights = trailing_softmax(&discrepancy, w, self.config.temperature);
        let contributions = errors
            .chunks_exact(m)
            .zip(&weights)
            .flat_map(|(row, &weight)| row.iter().map(move |e| e * weight / m as f32))
            .collect();
        Ok(Scores::from_contributions(contributions, m))
    }

    nn::fitted_checkpoints!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_softmax_shares_out_each_points_window() {
        let d = [0.0f32, 0.0, 1.0, 0.0];
        let w = trailing_softmax(&d, 2, 1.0);
        // t = 0 alone in its span; t = 1 ties with t = 0; t = 2 against t = 1; t = 3 against t = 2.
        let e = (-1.0f64).exp();
        let want = [1.0, 0.5, e / (1.0 + e), 1.0 / (1.0 + e)];
        for (g, w) in w.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        for (json, needle) in [
            (serde_json::json!({"heads": 3}), "a divisor of d_model"),
            (serde_json::json!({"window": 1}), "window"),
            (serde_json::json!({"temperature": 0.0}), "temperature"),
            (serde_json::json!({"k": -1.0}), "k must"),
            (serde_json::json!({"train_stride": 0}), "train_stride"),
        ] {
            let config: AnomalyTransformerConfig = serde_json::from_value(json).unwrap();
            let err = AnomalyTransformer::new(config).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    /// The prior association is a normalised Gaussian over distances: rows sum to one and
    /// peak on the diagonal; the series association's rows sum to one too.
    #[test]
    fn associations_are_distributions_and_the_prior_peaks_on_the_diagonal() {
        let device = nn::device();
        let net = AnomalyTransformerNet::new(3, 16, 4, 2, 16, &device);
        let x = nn::tensor3(
            (0..2 * 10 * 3).map(|i| (i as f32 * 0.1).sin()).collect(),
            2,
            10,
            3,
            &device,
        );
        for a in net
            .forward(x, &net.fixed_encodings(10, &device))
            .associations
        {
            for t in [a.series, a.prior.clone()] {
                for s in nn::to_vec(t.sum_dim(3)) {
                    assert!((s - 1.0).abs() < 1e-4, "row sums to {s}");
                }
            }
            let prior = nn::to_vec(a.prior);
            for row in prior
                .chunks_exact(10)
                .enumerate()
                .map(|(r, row)| (r % 10, row))
            {
                let (i, values) = row;
                let peak = values
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::MIN),
                        |best, (j, &v)| if v > best.1 { (j, v) } else { best },
                    );
                assert_eq!(peak.0, i, "row {i}: {values:?}");
            }
        }
    }
}
