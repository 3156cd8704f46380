//! The Detector contract: what every model in the zoo provides.
//!
//! A detector sees *normalised* data (the pipeline cleans and normalises before calling it) and
//! returns *scores* — higher means more anomalous — with a per-metric contribution beside the total.
//! Thresholds and evaluation are separate steps.
//!
//! The contract already carries what later features need:
//! - transfer learning (OmniTransfer): [`Detector::layer_groups`] declares which layers are generic
//!   feature extractors and which are task-specific heads; [`FitOptions::frozen_groups`] trains
//!   with some groups frozen; [`Detector::export_tensors`] and [`Detector::import_tensors`] move
//!   a subset of layers from one model into another (and carry weights in federated training);
//! - conditional models (AnoTuner's CVAE): [`MtsInput::condition`], an extra input per time step;
//! - graph models (TopoMAD): [`MtsInput::topology`], nodes per time step and their edges;
//! - gradients with respect to inputs (GON) live inside the detectors that need them, on burn's
//!   autodiff device (`Tensor::require_grad` on the input), and need nothing from the contract.

use crate::error::{ModelError, Result};
use crate::weights::{no_tensors, NamedTensors, WeightFiles};
use serde::{Deserialize, Serialize};

/// A multivariate series as a detector sees it: normalised, `T x M` row-major.
#[derive(Debug, Clone, Copy)]
pub struct MtsInput<'a> {
    /// Values, `T x M` row-major.
    pub values: &'a [f32],
    /// Number of metrics `M`.
    pub n_metrics: usize,
    /// Optional conditioning input, `T x C` row-major (e.g. time-of-day features for a CVAE).
    pub condition: Option<(&'a [f32], usize)>,
    /// Optional topology: the metrics belong to nodes connected by edges.
    pub topology: Option<&'a Topology>,
    /// Optional per-step labels of training data (0 normal, anything else anomalous), `T` of
    /// them: operators' feedback for a fine-tune. Detectors that learn from them
    /// ([`Detector::learns_from_labels`]) leave out of training every window that holds a
    /// step labelled anomalous, so that what an operator flagged is not learnt as normal —
    /// except supervised ones ([`Detector::supervised`]), which learn to classify them.
    pub labels: Option<&'a [u8]>,
    /// Optional per-step weights of training data (finite, zero or more), `T` of them: how much
    /// each step counts in a fit (an operator's recent feedback counting more than old data,
    /// TSAL's bias correction). A window weighs the least of its steps' weights (it is only as
    /// trustworthy as its least trusted step: a step of weight 0 keeps every window holding it
    /// out, as an anomalous label does), and each epoch
    /// draws its windows with probability in proportion to their weight (with replacement, as
    /// many as there are windows), so every detector's loss is weighted in expectation without
    /// a weighted form of each loss; a window of weight 0 is never drawn.
    pub weights: Option<&'a [f32]>,
}

impl<'a> MtsInput<'a> {
    /// Plain values without conditioning or topology.
    pub fn new(values: &'a [f32], n_metrics: usize) -> Self {
        MtsInput {
            values,
            n_metrics,
            condition: None,
            topology: None,
            labels: None,
            weights: None,
        }
    }

    /// The same input with per-step `labels` (see [`MtsInput::labels`]).
    pub fn with_labels(self, labels: &'a [u8]) -> Self {
        MtsInput {
            labels: Some(labels),
            ..self
        }
    }

    /// The same input with per-step `weights` (see [`MtsInput::weights`]).
    pub fn with_weights(self, weights: &'a [f32]) -> Self {
        MtsInput {
            weights: Some(weights),
            ..self
        }
    }

    /// The weight of the window of `window` steps starting at `start`: the least of its steps'
    /// weights, or `None` without weights.
    /// NaN when a step weight is NaN or the weights end before the window does (so that
    /// training refuses them: [`crate::nn::Epochs`]).
    pub fn window_weight(&self, start: usize, window: usize) -> Option<f64> {
        self.weights
            .map(|weights| match weights.get(start..start + window) {
                None => f64::NAN,
                Some(steps) => steps.iter().fold(f64::INFINITY, |least, &w| {
                    if w.is_nan() || least.is_nan() {
                        f64::NAN
                    } else {
                        least.min(w as f64)
                    }
                }),
            })
    }

    /// Whether the window of `window` steps starting at `start` holds a step labelled
    /// anomalous (never, without labels).
    pub fn window_labelled_anomalous(&self, start: usize, window: usize) -> bool {
        self.labels.is_some_and(|labels| {
            labels[start.min(labels.len())..(start + window).min(labels.len())]
                .iter()
                .any(|&l| l != 0)
        })
    }

    /// Number of time steps.
    pub fn len(&self) -> usize {
        self.values.len() / self.n_metrics.max(1)
    }

    /// How many full windows of `window` steps the series holds (`T − window + 1`; 0 when it
    /// is shorter than one window).
    pub fn n_full_windows(&self, window: usize) -> usize {
        (self.len() + 1).saturating_sub(window.max(1))
    }

    /// Every full window of `window` steps, in order, each flattened (`window x M` values).
    /// No copy: the rows of a window are consecutive in the series, so a window is a slice of
    /// it. Training reads windows through this or [`Self::gather_windows`] instead of
    /// materialising them all, which would hold `window` copies of the series (64 MB for one
    /// SMD machine at window 15; the memory budget of `vigil train` depends on not doing so).
    pub fn full_windows(&self, window: usize) -> impl ExactSizeIterator<Item = &'a [f32]> + 'a {
        let m = self.n_metrics.max(1);
        let d = window * m;
        let values: &'a [f32] = self.values;
        let n = self.n_full_windows(window);
        (0..n).map(move |i| &values[i * m..i * m + d])
    }

    /// Copies the full windows that start at steps `starts` into `out` (cleared first),
    /// flattened: a training batch.
    pub fn gather_windows(&self, window: usize, starts: &[usize], out: &mut Vec<f32>) {
        let m = self.n_metrics;
        out.clear();
        for &s in starts {
            out.extend_from_slice(&self.values[s * m..(s + window) * m]);
        }
    }

    /// Every full window flattened into one buffer, and their count — for tests and for code
    /// that needs them all at once; training gathers batches with [`Self::gather_windows`].
    pub fn training_windows(&self, window: usize) -> (Vec<f32>, usize) {
        let n = self.n_full_windows(window);
        let starts: Vec<usize> = (0..n).collect();
        let mut windows = Vec::new();
        self.gather_windows(window, &starts, &mut windows);
        (windows, n)
    }

    /// The mean of every metric over the series.
    pub fn metric_means(&self) -> Vec<f32> {
        let m = self.n_metrics;
        let mut sums = vec![0.0f64; m];
        for row in self.values.chunks_exact(m) {
            sums.iter_mut().zip(row).for_each(|(s, v)| *s += *v as f64);
        }
        sums.iter()
            .map(|s| (s / self.len() as f64) as f32)
            .collect()
    }

    /// True when there is no time step.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Components of a system, their common metrics and their links, for topology-aware
/// detectors (TopoMAD); built and checked against the data in `vigil-core`.
pub use vigil_core::topology::Topology;

/// Scores of every time step: the total and each metric's contribution (`T x M`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Anomaly score per time step (higher is more anomalous).
    pub total: Vec<f64>,
    /// Per-metric contribution, `T x M` row-major; the total is their sum unless a detector documents otherwise.
    pub per_metric: Vec<f32>,
    /// Number of metrics `M`.
    pub n_metrics: usize,
}

impl Scores {
    /// Builds scores whose total is the row sum of the contributions.
    pub fn from_contributions(per_metric: Vec<f32>, n_metrics: usize) -> Scores {
        let total = per_metric
            .chunks_exact(n_metrics)
            .map(|row| row.iter().map(|&v| v as f64).sum())
            .collect();
        Scores {
            total,
            per_metric,
            n_metrics,
        }
    }
}

/// Scales `weights` in place so that they sum to `total`: the per-metric contributions of a
/// detector whose score is not a sum over metrics. Equal shares when the weights sum to zero
/// or to something not finite. Each weight is divided by the sum before the multiplication, so a
/// tiny sum cannot overflow the quotient (0 · ∞ would make a share NaN).
pub(crate) fn share_out(total: f32, weights: &mut [f32]) {
    let sum: f32 = weights.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        weights.iter_mut().for_each(|w| *w = *w / sum * total);
    } else {
        weights.fill(total / weights.len().max(1) as f32);
    }
}

/// Whether a layer group extracts generic features or is specific to a task/entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerRole {
    /// Generic feature extractor: transferred (and frozen first) by partial transfer.
    Generic,
    /// Task-specific head: re-initialised and trained by partial transfer.
    TaskSpecific,
}

/// A named group of layers of a neural detector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerGroup {
    /// Group name (a module path prefix, e.g. `encoder`).
    pub name: String,
    /// Its role in transfer learning.
    pub role: LayerRole,
}

impl LayerGroup {
    /// A group named `name` (a module path prefix) with `role`.
    pub fn new(name: &str, role: LayerRole) -> LayerGroup {
        LayerGroup {
            name: name.into(),
            role,
        }
    }
}

/// Called after every epoch with (epoch, epochs, mean loss); drives progress bars.
pub type EpochCallback = std::sync::Arc<dyn Fn(usize, usize, f64) + Send + Sync>;

/// What `fit` needs besides the data.
#[derive(Clone)]
pub struct FitOptions {
    /// The device to train on (the fitted network stays there for scoring). The default is the
    /// process's device (`nn::select_device`, `--device`); a fit never reads that setting
    /// itself, so two fits in one process may train on two devices.
    pub device: burn::prelude::Device,
    /// Seed for initialisation, shuffling and sampling.
    pub seed: u64,
    /// Overrides the detector's default number of epochs.
    pub epochs: Option<usize>,
    /// Layer groups kept frozen during this fit (transfer learning).
    pub frozen_groups: Vec<String>,
    /// Keep the current weights instead of re-initialising (fine-tuning).
    pub warm_start: bool,
    /// Called after every epoch with (epoch, epochs, mean loss); drives progress bars.
    pub on_epoch: Option<EpochCallback>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            device: crate::nn::device(),
            seed: 0,
            epochs: None,
            frozen_groups: Vec::new(),
            warm_start: false,
            on_epoch: None,
        }
    }
}

impl std::fmt::Debug for FitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitOptions")
            .field("device", &self.device)
            .field("seed", &self.seed)
            .field("epochs", &self.epochs)
            .field("frozen_groups", &self.frozen_groups)
            .field("warm_start", &self.warm_start)
            .finish_non_exhaustive()
    }
}

/// What fitting produced, recorded in the model manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Epochs run (1 for closed-form models).
    pub epochs: usize,
    /// Mean loss of the last epoch (for PCA the unexplained variance per feature); `None` for
    /// detectors that minimise no loss (Isolation Forest).
    pub final_loss: Option<f64>,
    /// Number of training windows.
    pub windows: usize,
}

impl FitSummary {
    /// The summary of a fit that ran `epochs` over `windows` windows and ended at `final_loss`.
    pub fn trained(epochs: usize, final_loss: f64, windows: usize) -> FitSummary {
        FitSummary {
            epochs,
            final_loss: Some(final_loss),
            windows,
        }
    }
}

/// An anomaly detector.
pub trait Detector: Send + Sync {
    /// Registry name, e.g. `usad`.
    fn kind(&self) -> &'static str;

    /// The detector's configuration as JSON (stored in the manifest; `registry::build` reads it back).
    fn config_json(&self) -> serde_json::Value;

    /// Time steps of context the detector looks at to score one point.
    fn window(&self) -> usize;

    /// Fits on normalised training data.
    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary>;

    /// Scores every time step of normalised data (front-padded windows: the first steps are scored too).
    fn score(&self, input: &MtsInput) -> Result<Scores>;

    /// Scores the newest point of a stream from its last [`Detector::window`] steps (`window x M`).
    fn score_newest(&self, context: &MtsInput) -> Result<Scores> {
        if context.len() != self.window() {
            return Err(ModelError::Shape(format!(
                "streaming context has {} steps but the {} model needs exactly {}",
                context.len(),
                self.kind(),
                self.window()
            )));
        }
        let all = self.score(context)?;
        let m = all.n_metrics;
        let last = all.total.len() - 1;
        Ok(Scores {
            total: vec![all.total[last]],
            per_metric: all.per_metric[last * m..].to_vec(),
            n_metrics: m,
        })
    }

    /// The trained state as named byte strings (a model directory holds each as a file).
    fn save_weights(&self) -> Result<WeightFiles>;

    /// Loads the state given by [`Detector::save_weights`] for data with `n_metrics` metrics.
    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()>;

    /// Whether a fit with [`FitOptions::warm_start`] continues from the fitted state (neural
    /// detectors: fine-tuning); classical detectors refit from scratch and say so here.
    fn continues_training(&self) -> bool {
        false
    }

    /// Whether fitting uses [`MtsInput::labels`]. Neural detectors do (windows holding a step
    /// labelled anomalous are left out of training); classical ones fit on every window and
    /// say so here, so that a fine-tune with labels is refused rather than silently unlabelled.
    fn learns_from_labels(&self) -> bool {
        false
    }

    /// Whether fitting learns *from* labels as its targets (a classifier: MTAD-FL's Local and
    /// Transfer models). Such a detector refuses a fit without [`MtsInput::labels`] or without
    /// a step labelled anomalous; `pipeline::train` gives it the training series' labels, which
    /// the others never see at training.
    fn supervised(&self) -> bool {
        false
    }

    /// Whether fitting reads [`MtsInput::topology`] (TopoMAD); the others have no use for a
    /// call graph and say so here, so that one given to them is refused rather than ignored.
    fn reads_topology(&self) -> bool {
        false
    }

    /// Each window's code under the detector's own encoder (a VAE's posterior mean): one row
    /// per window starting at `starts` (each `window()` steps), as `(codes, code size)`. What
    /// AnoTuner's TSAL clusters history by (the paper: the model's encoding finds what the
    /// model sees as alike). Detectors without an encoder say so.
    fn encode(&self, _input: &MtsInput, _starts: &[usize]) -> Result<(Vec<f32>, usize)> {
        Err(ModelError::config(
            self.kind(),
            "this detector has no encoder to embed windows with; TSAL needs one (anotuner has it)",
        ))
    }

    /// The layer groups of a neural detector (empty for classical ones).
    fn layer_groups(&self) -> Vec<LayerGroup> {
        Vec::new()
    }

    /// The fitted parameters whose module path contains one of `groups` (all of them when
    /// `groups` is empty), as plain named tensors: what federated averaging sends and what
    /// transfer learning copies. Classical detectors have none and say so.
    fn export_tensors(&self, _groups: &[String]) -> Result<NamedTensors> {
        Err(no_tensors(self.kind()))
    }

    /// Sets the parameters named in `tensors` (from [`Detector::export_tensors`] of a model of
    /// the same detector and config) and keeps the others — into the fitted network when it
    /// expects `n_metrics` metrics, otherwise into a fresh one, whose other parameters are
    /// drawn unseeded (fit with `epochs: Some(0)` first for a seeded start, as partial transfer
    /// does). A name that matches no parameter, or a shape that differs, is refused and nothing
    /// changes.
    fn import_tensors(&mut self, _tensors: &NamedTensors, _n_metrics: usize) -> Result<()> {
        Err(no_tensors(self.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::share_out;

    #[test]
    fn shares_sum_to_the_total_even_for_tiny_or_zero_weights() {
        let mut w = [1.0, 3.0, 0.0];
        share_out(8.0, &mut w);
        assert_eq!(w, [2.0, 6.0, 0.0]);
        // A subnormal sum: total / sum would overflow to ∞ and 0 · ∞ is NaN.
        let mut tiny = [1e-44f32, 0.0, 2e-44];
        share_out(900.0, &mut tiny);
        assert!(tiny.iter().all(|v| v.is_finite()), "{tiny:?}");
        assert!((tiny.iter().sum::<f32>() - 900.0).abs() < 1e-2, "{tiny:?}");
        let mut zero = [0.0f32; 4];
        share_out(-2.0, &mut zero);
        assert_eq!(zero, [-0.5; 4]);
    }
}
