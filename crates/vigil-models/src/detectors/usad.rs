//! USAD — UnSupervised Anomaly Detection on multivariate time series (Audibert et al., KDD 2020).
//!
//! One encoder E and two decoders D1, D2 over flattened windows. AE1 = D1∘E and AE2 = D2∘E are
//! trained in two phases with an adversarial term whose weight grows with the epoch n:
//!   L_AE1 = 1/n ‖W − AE1(W)‖² + (1 − 1/n) ‖W − AE2(AE1(W))‖²
//!   L_AE2 = 1/n ‖W − AE2(W)‖² − (1 − 1/n) ‖W − AE2(AE1(W))‖²
//! each minimised by its own Adam optimiser over its own parameters (E+D1, resp. E+D2).
//! Score = α‖W − AE1(W)‖² + β‖W − AE2(AE1(W))‖², here on the newest step of each window, per metric.

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::Result;
use crate::nn::infer::{par_rows, DenseStack, CHUNK_ROWS};
use crate::nn::{self, Activation, Mlp};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// USAD configuration (defaults: the paper's window for SMD and its α = β = 0.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsadConfig {
    /// Window length K (paper: 5 for SMD).
    pub window: usize,
    /// Latent size Z.
    pub latent: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Weight of the AE1 reconstruction error in the score.
    pub alpha: f64,
    /// Weight of the AE2(AE1) reconstruction error in the score.
    pub beta: f64,
}

impl Default for UsadConfig {
    fn default() -> Self {
        UsadConfig {
            window: 5,
            latent: 40,
            epochs: 30,
            batch_size: 64,
            learning_rate: 1e-3,
            alpha: 0.5,
            beta: 0.5,
        }
    }
}

detector_config! {
    UsadConfig = "usad", batch batch_size;
    counts: window, latent, epochs, batch_size;
    positive: learning_rate;
    non_negative: alpha, beta;
}

#[derive(Module, Debug)]
struct UsadNet {
    encoder: Mlp,
    decoder1: Mlp,
    decoder2: Mlp,
}

impl UsadNet {
    fn new(input: usize, latent: usize, device: &Device) -> UsadNet {
        let (h1, h2) = ((input / 2).max(1), (input / 4).max(1));
        UsadNet {
            encoder: Mlp::new(&[input, h1, h2, latent], device),
            decoder1: Mlp::new(&[latent, h2, h1, input], device),
            decoder2: Mlp::new(&[latent, h2, h1, input], device),
        }
    }

    fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encoder.forward(x, Activation::Relu)
    }

    /// (AE1(W), AE2(W), AE2(AE1(W))).
    fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let z = self.encode(x);
        let w1 = self.decoder1.forward(z.clone(), Activation::Sigmoid);
        let w2 = self.decoder2.forward(z, Activation::Sigmoid);
        let w3 = self
            .decoder2
            .forward(self.encode(w1.clone()), Activation::Sigmoid);
        (w1, w2, w3)
    }
}

fn mse(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    (a - b).square().mean()
}

/// The USAD detector.
#[derive(Debug)]
pub struct Usad {
    config: UsadConfig,
    net: nn::Fitted<UsadNet>,
}

const WEIGHTS: &str = "usad.bpk";

impl Usad {
    /// Builds an unfitted USAD detector.
    pub fn new(config: UsadConfig) -> Result<Usad> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            UsadNet::new(c.window * m, c.latent, device)
        });
        Ok(Usad { config, net })
    }
}

impl Detector for Usad {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        vec![
            LayerGroup::new("encoder", LayerRole::Generic),
            LayerGroup::new("decoder1", LayerRole::TaskSpecific),
            LayerGroup::new("decoder2", LayerRole::TaskSpecific),
        ]
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let (m, w) = (input.n_metrics, self.config.window);
        check_window(w, input.len(), "training series")?;
        let (device, net) = self.net.start_fit(m, options);
        let ids_ae1 = nn::param_ids(&[&net.encoder, &net.decoder1]);
        let ids_ae2 = nn::param_ids(&[&net.encoder, &net.decoder2]);
        let (ids_d1, ids_d2) = (
            nn::param_ids(&[&net.decoder1]),
            nn::param_ids(&[&net.decoder2]),
        );
        let mut opt1 = nn::adam().init();
        let mut opt2 = nn::adam().init();
        let epochs = options.epochs.unwrap_or(self.config.epochs);
        let lr = self.config.learning_rate;
        let mut windows = nn::TrainingWindows::all(input, w);
        // Gradients each phase leaves on the other phase's decoder. The authors' script zeroes only
        // the stepping optimiser's parameters, so D2 keeps its phase-1 gradient into phase 2 and D1
        // its phase-2 gradient into the next phase 1. The adversarial ‖W − AE2(AE1(W))‖ terms then
        // nearly cancel on the decoders and act on the shared encoder; without this carry-over the
        // adversarial phase drives both decoders away from reconstructing (measured: demo ROC-AUC
        // 0.62 without, see docs/models.md).
        let mut carried_d1 = GradientsParams::new();
        let schedule = nn::Epochs::new("USAD", &windows, self.config.batch_size, epochs, options);
        let (net, last_loss) = schedule.run(net, |net, idx, epoch| {
            let adv = 1.0 - 1.0 / epoch as f64;
            let x = windows.tensor2(idx, &device);
            let (w1, _, w3) = net.forward(x.clone());
            let recon1 = mse(x.clone(), w1);
            let loss1 = recon1.clone().mul_scalar(1.0 - adv) + mse(x.clone(), w3).mul_scalar(adv);
            let mut grads = loss1.backward();
            let mut g1 = GradientsParams::from_params(&mut grads, &net, &ids_ae1);
            nn::accumulate_gradients(&net.decoder1, &mut carried_d1, &mut g1);
            let mut carried_d2 = GradientsParams::from_params(&mut grads, &net, &ids_d2);
            let net = opt1.step(lr, net, g1);
            let (_, w2, w3) = net.forward(x.clone());
            let loss2 = mse(x.clone(), w2).mul_scalar(1.0 - adv) - mse(x, w3).mul_scalar(adv);
            let mut grads = loss2.backward();
            let mut g2 = GradientsParams::from_params(&mut grads, &net, &ids_ae2);
            nn::accumulate_gradients(&net.decoder2, &mut carried_d2, &mut g2);
            carried_d1 = GradientsParams::from_params(&mut grads, &net, &ids_d1);
            let net = opt2.step(lr, net, g2);
            // Report AE1's reconstruction error: the adversarial terms grow by design and hide learning.
            (net, nn::scalar(recon1.detach()))
        })?;
        self.net.keep_trained(&net, m, options);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let d = w * m;
        let newest = (w - 1) * m..d;
        let (alpha, beta) = (self.config.alpha as f32, self.config.beta as f32);
        let encoder = DenseStack::from_mlp(&net.encoder);
        let decoder1 = DenseStack::from_mlp(&net.decoder1);
        let decoder2 = DenseStack::from_mlp(&net.decoder2);
        let contributions = par_rows(input.len(), m, CHUNK_ROWS, |rows, out| {
            let n = rows.len();
            let (mut x, mut z, mut w1, mut w3) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            windows_ending_at(input.values, m, w, rows, &mut x);
            encoder.forward(&x, n, Activation::Relu, &mut z);
            decoder1.forward(&z, n, Activation::Sigmoid, &mut w1);
            encoder.forward(&w1, n, Activation::Relu, &mut z);
            // Only the newest step of AE2(AE1(W)) enters the score.
            decoder2.forward_columns(&z, n, newest.clone(), Activation::Sigmoid, &mut w3);
            for r in 0..n {
                let (x, w1) = (&x[r * d + newest.start..], &w1[r * d + newest.start..]);
                for c in 0..m {
                    let (e1, e3) = (x[c] - w1[c], x[c] - w3[r * m + c]);
                    out[r * m + c] = alpha * e1 * e1 + beta * e3 * e3;
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

    /// The scores as burn's forward pass computes them, to check the inference kernels against.
    fn burn_scores(det: &Usad, input: &MtsInput) -> Vec<f32> {
        let (m, w) = (input.n_metrics, det.config.window);
        let net = det.net.get(m).unwrap();
        let mut x = Vec::new();
        windows_ending_at(input.values, m, w, 0..input.len(), &mut x);
        let x = nn::tensor2(x, input.len(), w * m, &nn::device());
        let w1 = net
            .decoder1
            .forward(net.encode(x.clone()), Activation::Sigmoid);
        let w3 = net
            .decoder2
            .forward(net.encode(w1.clone()), Activation::Sigmoid);
        let newest = |t: Tensor<2>| t.narrow(1, (w - 1) * m, m);
        let e1 = (newest(x.clone()) - newest(w1))
            .square()
            .mul_scalar(det.config.alpha);
        let e3 = (newest(x) - newest(w3))
            .square()
            .mul_scalar(det.config.beta);
        nn::to_vec(e1 + e3)
    }

    #[test]
    fn kernel_scores_match_burns_forward_pass() {
        let m = 3;
        // More rows than one inference chunk, so that several chunks (and threads) take part.
        let values: Vec<f32> = (0..300 * m)
            .map(|i| ((i as f32) * 0.37).sin() * 0.5 + 0.5)
            .collect();
        let input = MtsInput::new(&values, m);
        let mut det = Usad::new(UsadConfig {
            epochs: 1,
            ..UsadConfig::default()
        })
        .unwrap();
        det.fit(&input, &FitOptions::default()).unwrap();
        let want = burn_scores(&det, &input);
        let got = det.score(&input).unwrap().per_metric;
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }
}
