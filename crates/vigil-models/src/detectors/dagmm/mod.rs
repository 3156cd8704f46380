//! DAGMM (Zong et al., *Deep Autoencoding Gaussian Mixture Model for Unsupervised Anomaly
//! Detection*, ICLR 2018) over flattened windows. A compression network (a dense autoencoder
//! with tanh) gives each window a low-dimensional code plus two reconstruction features — the
//! relative Euclidean distance and the cosine similarity between the window and its
//! reconstruction; an estimation network (dense, tanh, dropout, softmax) gives the code's soft
//! membership in a Gaussian mixture. Both train together: reconstruction error + λ₁ · sample
//! energy under the mixture that the batch's memberships imply + λ₂ · a penalty on small
//! variances. The score of a point is the sample energy of its window (ending at that point)
//! under the mixture fitted on all training windows.
//!
//! Sizes follow the paper's largest setting (KDDCUP99: 60 → 30 → 10 → 1 code, estimation
//! 10 units, 4 components, dropout 0.5, λ₁ 0.1, λ₂ 0.005, Adam 1e-4, batch 1024); the window
//! is 5 steps, as in the TranAD paper's baseline runs on SMD, SMAP and MSL. Changed: a small
//! ridge (1e-6) on every covariance's diagonal keeps the factorisation defined when a component
//! collapses (the paper relies on the penalty alone).
//!
//! `score = "reconstruction"` scores the newest step's squared reconstruction error instead of
//! the energy — what the TranAD paper's DAGMM baseline measures — so that its published
//! figures can be compared like for like.
//!
//! Per-metric contributions: the energy is a property of the whole code, so it is shared out
//! in proportion to each metric's squared reconstruction error over the window — the metrics
//! the compression network fails on take the blame. Energies can be negative (a density above
//! one); the shares then carry the sign of the total.

mod gmm;
mod infer;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::nn::infer::{par_rows, CHUNK_ROWS};
use crate::nn::{self, Activation, Dropout};
use crate::weights::{get_json, put_json, WeightFiles};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// DAGMM configuration; the paper's values (KDDCUP99) unless noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DagmmConfig {
    /// Window length (the TranAD paper's DAGMM runs: 5).
    pub window: usize,
    /// Hidden units of the compression network, input side first (mirrored by the decoder).
    pub hidden: Vec<usize>,
    /// Size of the code.
    pub latent: usize,
    /// Hidden units of the estimation network.
    pub estimation_hidden: usize,
    /// Mixture components.
    pub components: usize,
    /// Dropout in the estimation network.
    pub dropout: f64,
    /// Weight of the sample energy in the loss (λ₁).
    pub energy_weight: f64,
    /// Weight of the small-variance penalty (λ₂).
    pub covariance_weight: f64,
    /// Added to every covariance's diagonal (ours; see the module docs).
    pub covariance_ridge: f64,
    /// Training epochs (the paper: 200 on KDDCUP99).
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// What a point scores: `energy` (the paper's sample energy) or `reconstruction`.
    pub score: DagmmScore,
}

/// What a DAGMM point scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DagmmScore {
    /// The sample energy of the point's window under the training mixture (the paper's).
    Energy,
    /// The squared reconstruction error of the window's newest step, per metric: what the
    /// TranAD paper's DAGMM baseline scores (its code thresholds the autoencoder's error and
    /// never reads the mixture), kept so that its published figures can be set beside ours.
    Reconstruction,
}

impl Default for DagmmConfig {
    fn default() -> Self {
        DagmmConfig {
            window: 5,
            hidden: vec![60, 30, 10],
            latent: 1,
            estimation_hidden: 10,
            components: 4,
            dropout: 0.5,
            energy_weight: 0.1,
            covariance_weight: 0.005,
            covariance_ridge: 1e-6,
            epochs: 200,
            batch_size: 1024,
            learning_rate: 1e-4,
            score: DagmmScore::Energy,
        }
    }
}

detector_config! {
    DagmmConfig = "dagmm", batch batch_size;
    counts: window, latent, estimation_hidden, components, epochs;
    shares_below_one: dropout;
    positive: learning_rate;
    non_negative: energy_weight, covariance_weight, covariance_ridge;
    |c, checks| {
        checks
            .require(
                "batch_size",
                c.batch_size >= 2,
                c.batch_size,
                "at least 2 (each batch fits a mixture)",
            )
            .at_most_counts(&[("batch_size", c.batch_size)])
            .widths("hidden", &c.hidden);
    }
}

/// Dense layers with tanh between them and a linear output.
#[derive(Module, Debug)]
struct TanhStack {
    layers: Vec<Linear>,
}

impl TanhStack {
    fn new(sizes: &[usize], device: &Device) -> TanhStack {
        TanhStack {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
        }
    }

    /// tanh after every layer but the last; `dropout` after every hidden activation.
    fn forward(&self, mut x: Tensor<2>, dropout: Option<&Dropout>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let act = if i < last {
                Activation::Tanh
            } else {
                Activation::Linear
            };
            x = nn::dense(layer, x, act);
            if i < last {
                if let Some(d) = dropout {
                    x = d.forward(x);
                }
            }
        }
        x
    }
}

#[derive(Module, Debug)]
struct DagmmNet {
    encoder: TanhStack,
    decoder: TanhStack,
    estimation: TanhStack,
    dropout: Dropout,
}

/// What the compression network gives one batch of windows.
struct Compressed {
    /// Code plus the two reconstruction features, `[n, latent + 2]`.
    z: Tensor<2>,
    /// Squared reconstruction error per value, `[n, d]`.
    squared_error: Tensor<2>,
}

impl DagmmNet {
    fn compress(&self, x: Tensor<2>) -> Compressed {
        let code = self.encoder.forward(x.clone(), None);
        let reconstruction = self.decoder.forward(code.clone(), None);
        let squared_error = (x.clone() - reconstruction.clone()).square();
        // Small constants keep the norms' gradients finite at zero.
        let norm = |t: Tensor<2>| t.square().sum_dim(1).add_scalar(1e-10).sqrt();
        let x_norm = norm(x.clone());
        let relative_euclidean = squared_error.clone().sum_dim(1).add_scalar(1e-10).sqrt()
            / x_norm.clone().add_scalar(1e-6);
        let cosine = (x * reconstruction.clone()).sum_dim(1)
            / (x_norm * norm(reconstruction)).add_scalar(1e-6);
        Compressed {
            z: Tensor::cat(vec![code, relative_euclidean, cosine], 1),
            squared_error,
        }
    }

    fn memberships(&self, z: Tensor<2>) -> Tensor<2> {
        softmax(self.estimation.forward(z, Some(&self.dropout)), 1)
    }
}

/// The mixture fitted on every training window, stored beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MixtureState {
    weights: Vec<f32>,
    means: Vec<f32>,
    covariances: Vec<f32>,
}

impl MixtureState {
    fn from_mixture(m: &gmm::Mixture) -> MixtureState {
        MixtureState {
            weights: nn::to_vec(m.weights.clone()),
            means: nn::to_vec(m.means.clone()),
            covariances: nn::to_vec(m.covariances.clone()),
        }
    }

    fn to_mixture(&self, components: usize, k: usize, device: &Device) -> gmm::Mixture {
        gmm::Mixture {
            weights: Tensor::from_data(TensorData::new(self.weights.clone(), [components]), device),
            means: Tensor::from_data(TensorData::new(self.means.clone(), [components, k]), device),
            covariances: Tensor::from_data(
                TensorData::new(self.covariances.clone(), [components, k, k]),
                device,
            ),
        }
    }
}

/// The DAGMM detector.
#[derive(Debug)]
pub struct Dagmm {
    config: DagmmConfig,
    net: nn::Fitted<DagmmNet>,
    mixture: Option<MixtureState>,
}

const WEIGHTS: &str = "dagmm.bpk";
const MIXTURE: &str = "dagmm-mixture.json";
/// Windows per tensor pass when fitting the final mixture.
const CHUNK: usize = 8192;

impl Dagmm {
    /// Builds an unfitted detector.
    pub fn new(config: DagmmConfig) -> Result<Dagmm> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, |c, m, device| {
            Self::build_net(c, m, device)
        });
        Ok(Dagmm {
            config,
            net,
            mixture: None,
        })
    }

    fn build_net(c: &DagmmConfig, n_metrics: usize, device: &Device) -> DagmmNet {
        let mut sizes = vec![c.window * n_metrics];
        sizes.extend(&c.hidden);
        sizes.push(c.latent);
        let reversed: Vec<usize> = sizes.iter().rev().copied().collect();
        DagmmNet {
            encoder: TanhStack::new(&sizes, device),
            decoder: TanhStack::new(&reversed, device),
            estimation: TanhStack::new(&[c.latent + 2, c.estimation_hidden, c.components], device),
            dropout: Dropout::new(c.dropout),
        }
    }

    /// Code dimension the mixture lives in.
    fn k(&self) -> usize {
        self.config.latent + 2
    }
}

impl Detector for Dagmm {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        // Dense models transfer their outer layers: the encoder's input layer and the
        // decoder's output layer; the layers around the code and the estimation network are
        // specific to an entity's mixture.
        let depth = self.config.hidden.len();
        let mut groups = vec![
            LayerGroup::new("encoder.layers.0", LayerRole::Generic),
            LayerGroup::new(&format!("decoder.layers.{depth}"), LayerRole::Generic),
        ];
        groups.extend(
            (1..=depth)
                .map(|i| LayerGroup::new(&format!("encoder.layers.{i}"), LayerRole::TaskSpecific)),
        );
        groups.extend(
            (0..depth)
                .map(|i| LayerGroup::new(&format!("decoder.layers.{i}"), LayerRole::TaskSpecific)),
        );
        groups.push(LayerGroup::new("estimation", LayerRole::TaskSpecific));
        groups
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let (device, net) = self.net.start_fit(m, options);
        nn::seed_dropout(options.seed);
        let mut optimiser = nn::adam().init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let mut windows = nn::TrainingWindows::all(input, w);
        // A mixture needs more than one point; a last batch of one is skipped.
        let (net, last_loss) = nn::Epochs::new("dagmm", &windows, c.batch_size, epochs, options)
            .skip_batches_below(2)
            .run(net, |net, idx, _| {
                let x = windows.tensor2(idx, &device);
                let compressed = net.compress(x);
                let gamma = net.memberships(compressed.z.clone());
                let mixture = gmm::fit(compressed.z.clone(), gamma, c.covariance_ridge);
                let energy = gmm::energy(compressed.z, &gmm::prepare(&mixture)).mean();
                let reconstruction = compressed.squared_error.sum_dim(1).mean().reshape([1]);
                let loss = reconstruction
                    + energy.mul_scalar(c.energy_weight)
                    + gmm::inverse_diagonal_penalty(mixture.covariances)
                        .mul_scalar(c.covariance_weight);
                nn::descend(&mut optimiser, c.learning_rate, net, loss)
            })?;
        let net = net.valid().to_device(&options.device);
        let mixture = self.training_mixture(&net, input, w);
        self.net.set(net, m);
        self.mixture = Some(mixture);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let scorer = infer::SliceScorer::new(
            net,
            &self.prepared_mixture(&nn::device_of(net))?,
            self.config.score,
            w,
            m,
        );
        let contributions = par_rows(input.len(), m, CHUNK_ROWS, |rows, out| {
            let mut x = Vec::new();
            windows_ending_at(input.values, m, w, rows.clone(), &mut x);
            scorer.score_chunk(&x, rows.len(), out);
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    fn save_weights(&self) -> Result<WeightFiles> {
        let mixture = crate::error::fitted(&self.mixture, self.kind())?;
        let mut files = WeightFiles::new();
        self.net.save(&mut files)?;
        put_json(&mut files, MIXTURE, mixture)?;
        Ok(files)
    }

    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let state: MixtureState = get_json(files, MIXTURE)?;
        let (g, k) = (self.config.components, self.k());
        if state.weights.len() != g
            || state.means.len() != g * k
            || state.covariances.len() != g * k * k
        {
            return Err(ModelError::Weights(format!(
                "{MIXTURE} does not hold {g} components over a {k}-dimensional code; \
                     retrain the model"
            )));
        }
        self.net.load(files, n_metrics)?;
        self.mixture = Some(state);
        Ok(())
    }

    crate::nn::fitted_network!();
}

impl Dagmm {
    /// The training mixture, factorised for energies, on `device`.
    fn prepared_mixture(&self, device: &Device) -> Result<gmm::Prepared> {
        let state = crate::error::fitted(&self.mixture, self.kind())?;
        let mixture = state.to_mixture(self.config.components, self.k(), device);
        Ok(gmm::prepare(&mixture))
    }

    /// [`Detector::score`] through burn tensors: the reference the slice path
    /// (`infer.rs`) is tested against.
    #[cfg(test)]
    fn score_with_tensors(&self, input: &MtsInput) -> Result<Scores> {
        use crate::detector::share_out;
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let device = nn::device_of(net);
        let prepared = self.prepared_mixture(&device)?;
        let (n, d) = (input.len(), w * m);
        let mut x = Vec::new();
        windows_ending_at(input.values, m, w, 0..n, &mut x);
        let compressed = net.compress(nn::tensor2(x, n, d, &device));
        let step_errors = compressed.squared_error.reshape([n, w, m]);
        if self.config.score == DagmmScore::Reconstruction {
            let newest = step_errors.slice([0..n, w - 1..w, 0..m]).reshape([n, m]);
            return Ok(Scores::from_contributions(nn::to_vec(newest), m));
        }
        let energy = nn::to_vec(gmm::energy(compressed.z, &prepared));
        let mut per_metric = nn::to_vec(step_errors.sum_dim(1).reshape([n, m]));
        for (e, row) in energy.iter().zip(per_metric.chunks_exact_mut(m)) {
            share_out(*e, row);
        }
        Ok(Scores::from_contributions(per_metric, m))
    }

    /// The mixture of all training windows under the trained networks (no dropout): the
    /// paper's φ, μ, Σ "from the training samples", which the energies at scoring time use.
    fn training_mixture(&self, net: &DagmmNet, input: &MtsInput, w: usize) -> MixtureState {
        let device = nn::device_of(net);
        let (n, d) = (input.n_full_windows(w), w * input.n_metrics);
        let mut x = Vec::new();
        let (mut zs, mut gammas) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(CHUNK) {
            let rows = (start + CHUNK).min(n) - start;
            let starts: Vec<usize> = (start..start + rows).collect();
            input.gather_windows(w, &starts, &mut x);
            let z = net
                .compress(nn::tensor2(std::mem::take(&mut x), rows, d, &device))
                .z;
            gammas.push(net.memberships(z.clone()));
            zs.push(z);
        }
        let mixture = gmm::fit(
            Tensor::cat(zs, 0),
            Tensor::cat(gammas, 0),
            self.config.covariance_ridge,
        );
        MixtureState::from_mixture(&mixture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two periodic metrics and a constant one; a short window and a small network.
    fn trained(score: DagmmScore) -> (Dagmm, Vec<f32>) {
        let values: Vec<f32> = (0..400)
            .flat_map(|t| {
                let x = t as f32 * std::f32::consts::TAU / 40.0;
                [0.5 + 0.4 * x.sin(), 0.5 + 0.4 * x.cos(), 0.3]
            })
            .collect();
        let mut det = Dagmm::new(DagmmConfig {
            window: 4,
            hidden: vec![8, 4],
            latent: 2,
            epochs: 3,
            batch_size: 64,
            score,
            ..DagmmConfig::default()
        })
        .unwrap();
        det.fit(&MtsInput::new(&values, 3), &FitOptions::default())
            .unwrap();
        (det, values)
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{what} {i}: slices {g}, tensors {w}"
            );
        }
    }

    /// The slice path (`infer.rs`) gives the tensor path's contributions, for both scores.
    #[test]
    fn slice_scoring_matches_the_tensor_forward_pass() {
        for score in [DagmmScore::Energy, DagmmScore::Reconstruction] {
            let (det, values) = trained(score);
            let input = MtsInput::new(&values, 3);
            let slices = det.score(&input).unwrap();
            let tensors = det.score_with_tensors(&input).unwrap();
            assert_close(
                &slices.per_metric,
                &tensors.per_metric,
                &format!("{score:?}"),
            );
        }
    }

    /// `score = "reconstruction"` gives each point its window's newest-step squared error per
    /// metric, computed here straight from the trained autoencoder; the energy score differs.
    #[test]
    fn reconstruction_score_is_the_newest_steps_squared_error() {
        let (det, values) = trained(DagmmScore::Reconstruction);
        let (m, w) = (3, 4);
        let input = MtsInput::new(&values, m);
        let scores = det.score(&input).unwrap();

        let net = det.net.get(m).unwrap();
        let mut x = Vec::new();
        windows_ending_at(input.values, m, w, 0..input.len(), &mut x);
        let n = input.len();
        let errors = nn::to_vec(
            net.compress(nn::tensor2(x, n, w * m, &nn::device()))
                .squared_error,
        );
        let newest: Vec<f32> = errors
            .chunks_exact(w * m)
            .flat_map(|window| window[(w - 1) * m..].to_vec())
            .collect();
        assert_close(&scores.per_metric, &newest, "point/metric");

        let energy = Dagmm {
            config: DagmmConfig {
                score: DagmmScore::Energy,
                ..det.config.clone()
            },
            net: det.net.clone(),
            mixture: det.mixture.clone(),
        };
        assert_ne!(energy.score(&input).unwrap().total, scores.total);
    }
}
