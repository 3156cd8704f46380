//! MTAD-FL's dual feature extractor SE-EA-EDN (Hao et al., ICSOC 2023 workshops): two
//! *supervised* detectors, `mtad-local` and `mtad-transfer`, that classify each time step as
//! normal or anomalous from the window ending at it, trained with cross-entropy (Eq. 1) on the
//! labels of the training data — AdamW, learning rate 0.02, batches of 128, 80 epochs (§4.3).
//!
//! The score of a step is the Transfer or Local model's probability that it is anomalous; its
//! per-metric contributions share that probability out by |∂p/∂x · (x − the metric's training
//! mean)| summed over the window (a first-order estimate of how much each metric moved p).
//!
//! In federated training (LGF-PKT, `crate::federated`), a node trains its Local model, sends the
//! convolutions named in [`net::HIDDEN_LAYERS`], and loads the hidden layers of its most similar
//! peer into its Transfer model before training that: both detectors name those layers alike.

mod net;
#[cfg(test)]
mod tests;

pub use net::HIDDEN_LAYERS;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{
    share_out, Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores,
};
use crate::error::{ModelError, Result};
use crate::nn;
use crate::weights::{get_json, put_json, WeightFiles};
use burn::optim::AdamWConfig;
use burn::tensor::activation::{log_softmax, softmax};
use net::{Classifier, LocalNet, Shape, TransferNet};
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// What the Local and the Transfer model share: the window, the convolutions, the training.
#[derive(Debug, Clone, Copy)]
struct Training {
    window: usize,
    filters: [usize; 3],
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    weight_decay: f64,
}

/// The Local model's configuration (defaults: the paper's §4.3; the filters are MLSTM-FCN's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtadLocalConfig {
    /// Time steps per sample (the paper classifies single steps: 1). Each step is one input
    /// channel of the convolutions, which run along the metrics.
    pub window: usize,
    /// Filters of the first convolution.
    pub conv1_filters: usize,
    /// Filters of the second convolution.
    pub conv2_filters: usize,
    /// Filters of the third convolution.
    pub conv3_filters: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay (PyTorch's default; the paper keeps the defaults).
    pub weight_decay: f64,
}

impl Default for MtadLocalConfig {
    fn default() -> Self {
        MtadLocalConfig {
            window: 1,
            conv1_filters: 128,
            conv2_filters: 256,
            conv3_filters: 128,
            epochs: 80,
            batch_size: 128,
            learning_rate: 0.02,
            weight_decay: 0.01,
        }
    }
}

detector_config! {
    MtadLocalConfig = "mtad-local", batch batch_size;
    counts: window, conv1_filters, conv2_filters, conv3_filters, epochs, batch_size;
    positive: learning_rate;
    non_negative: weight_decay;
}

/// The Transfer model's configuration: the Local model's, plus its squeeze-excitation and
/// external attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtadTransferConfig {
    /// Time steps per sample (the paper: 1).
    pub window: usize,
    /// Filters of the first convolution.
    pub conv1_filters: usize,
    /// Filters of the second convolution.
    pub conv2_filters: usize,
    /// Filters of the third convolution.
    pub conv3_filters: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Squeeze-excitation reduction ratio r (the paper: 16).
    pub se_reduction: usize,
    /// External attention's memory slots S (Guo et al.'s default: 64).
    pub attention_memory: usize,
}

impl Default for MtadTransferConfig {
    fn default() -> Self {
        let local = MtadLocalConfig::default();
        MtadTransferConfig {
            window: local.window,
            conv1_filters: local.conv1_filters,
            conv2_filters: local.conv2_filters,
            conv3_filters: local.conv3_filters,
            epochs: local.epochs,
            batch_size: local.batch_size,
            learning_rate: local.learning_rate,
            weight_decay: local.weight_decay,
            se_reduction: 16,
            attention_memory: 64,
        }
    }
}

detector_config! {
    MtadTransferConfig = "mtad-transfer", batch batch_size;
    counts: window, conv1_filters, conv2_filters, conv3_filters, epochs, batch_size,
        se_reduction, attention_memory;
    positive: learning_rate;
    non_negative: weight_decay;
}

/// Both configs' shared fields as one [`Training`] (serde's `flatten` cannot share the fields
/// themselves: it does not combine with `deny_unknown_fields`).
macro_rules! training_of {
    ($($config:ty),*) => {$(
        impl $config {
            fn training(&self) -> Training {
                Training {
                    window: self.window,
                    filters: [self.conv1_filters, self.conv2_filters, self.conv3_filters],
                    epochs: self.epochs,
                    batch_size: self.batch_size,
                    learning_rate: self.learning_rate,
                    weight_decay: self.weight_decay,
                }
            }
        }
    )*};
}
training_of!(MtadLocalConfig, MtadTransferConfig);

impl Training {
    fn shape(&self, n_metrics: usize) -> Shape {
        Shape {
            channels: self.window,
            metrics: n_metrics,
            filters: self.filters,
        }
    }
}

/// What a fit learns besides the weights: each metric's training mean, the reference point of
/// the per-metric contributions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClassifierState {
    metric_means: Vec<f32>,
}

/// The layer groups of both models: the hidden convolutions travel (generic), the rest stays.
fn layer_groups(extra: &[&str]) -> Vec<LayerGroup> {
    let mut groups: Vec<LayerGroup> = HIDDEN_LAYERS
        .iter()
        .map(|name| LayerGroup::new(name, LayerRole::Generic))
        .collect();
    for name in ["bn1", "bn2", "bn3"]
        .iter()
        .chain(extra)
        .chain(&["classifier"])
    {
        groups.push(LayerGroup::new(name, LayerRole::TaskSpecific));
    }
    groups
}

/// The window label of every window start: anomalous when its newest step is (the window
/// classifies the step it ends at). Refuses input without labels, or — for a fit from scratch,
/// `one_class_ok` false — whose labels hold no anomalous step to learn from (a fine-tune on
/// feedback that marks only false positives is fine: the model knows anomalies already).
fn window_targets(
    input: &MtsInput,
    window: usize,
    kind: &str,
    one_class_ok: bool,
) -> Result<Vec<f32>> {
    let labels = input.labels.ok_or_else(|| {
        ModelError::config(
            kind,
            "this detector learns from labels (a supervised classifier, as MTAD-FL trains it), \
             and the training data has none; give training data with a `label` column \
             (1 marks an anomalous step), or `y` to Python's fit",
        )
    })?;
    if labels.len() != input.len() {
        return Err(ModelError::Shape(format!(
            "{} labels for {} training steps; give one label per step",
            labels.len(),
            input.len()
        )));
    }
    let targets: Vec<f32> = (window - 1..input.len())
        .map(|end| f32::from(labels[end] != 0))
        .collect();
    if !one_class_ok && !targets.contains(&1.0) {
        return Err(ModelError::config(
            kind,
            "the training labels mark no step anomalous, so there is nothing to learn an anomaly \
             from; train on data whose label column marks some anomalies",
        ));
    }
    Ok(targets)
}

/// Trains `net` (from `fitted`, fresh or warm) by cross-entropy on the window labels.
fn fit_classifier<N: Classifier>(
    fitted: &mut nn::Fitted<N>,
    state: &mut Option<ClassifierState>,
    t: Training,
    input: &MtsInput,
    options: &FitOptions,
    kind: &'static str,
) -> Result<FitSummary> {
    let (m, w) = (input.n_metrics, t.window);
    check_window(w, input.len(), "training series")?;
    let warm = options.warm_start && fitted.get(m).is_ok();
    let targets = window_targets(input, w, kind, warm)?;
    let starts: Vec<usize> = (0..targets.len()).collect();
    let weights = input.weights.map(|_| {
        starts
            .iter()
            .map(|&s| input.window_weight(s, w).unwrap_or(1.0))
            .collect()
    });
    let (device, net) = fitted.start_fit(m, options);
    let mut optimiser = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(t.weight_decay as f32)
        .init();
    let epochs = options.epochs.unwrap_or(t.epochs);
    let (mut batch, mut onehot) = (Vec::new(), Vec::new());
    // Batch norm needs two samples to have a spread.
    let schedule = nn::Epochs::over(kind, starts.len(), weights, t.batch_size, epochs, options)
        .skip_batches_below(2);
    let (net, last_loss) = schedule.run(net, |net, idx, _epoch| {
        let batch_starts: Vec<usize> = idx.iter().map(|&i| starts[i]).collect();
        input.gather_windows(w, &batch_starts, &mut batch);
        onehot.clear();
        for &i in idx {
            let y = targets[i];
            onehot.extend_from_slice(&[1.0 - y, y]);
        }
        let x = nn::tensor3(batch.clone(), idx.len(), w, m, &device);
        let y = nn::tensor2(onehot.clone(), idx.len(), 2, &device);
        // Eq. 1: the mean negative log-likelihood of the true class.
        let loss = (log_softmax(net.logits(x), 1) * y).sum_dim(1).mean().neg();
        nn::descend(&mut optimiser, t.learning_rate, net, loss)
    })?;
    fitted.keep_trained(&net, m, options);
    *state = Some(ClassifierState {
        metric_means: input.metric_means(),
    });
    Ok(FitSummary::trained(epochs, last_loss, starts.len()))
}

/// Rows scored per pass: bounds the memory of one forward and backward pass.
const SCORE_ROWS: usize = 1024;

/// Each step's probability of being anomalous, shared out over the metrics by the input
/// gradient times the distance from the training mean.
fn score_classifier<N: Classifier>(
    fitted: &nn::Fitted<N>,
    state: &Option<ClassifierState>,
    window: usize,
    input: &MtsInput,
    kind: &str,
) -> Result<Scores> {
    let m = input.n_metrics;
    let net = fitted.get(m)?;
    let state = crate::error::fitted(state, kind)?;
    if state.metric_means.len() != m {
        return Err(ModelError::Shape(format!(
            "the {kind} model's training means are for {} metrics, the data has {m}; fit it on \
             this data (a network imported for other metrics needs a fit before it scores)",
            state.metric_means.len()
        )));
    }
    // On the autodiff device for the input gradient; frozen, so that no parameter tracks a
    // gradient and the batch norms use their running statistics, whether the network was
    // fitted here or loaded (a loaded one's norms would otherwise take the training path).
    let device = nn::device().autodiff();
    let net = net.clone().fork(&device).freeze();
    let mut per_metric = vec![0.0f32; input.len() * m];
    let mut x = Vec::new();
    for first in (0..input.len()).step_by(SCORE_ROWS) {
        let rows = first..(first + SCORE_ROWS).min(input.len());
        let n = rows.len();
        windows_ending_at(input.values, m, window, rows.clone(), &mut x);
        let xt = nn::tensor3(x.clone(), n, window, m, &device).require_grad();
        let p = softmax(net.logits(xt.clone()), 1).narrow(1, 1, 1);
        let grads = p.clone().sum().backward();
        let g = xt.grad(&grads).map(nn::to_vec).ok_or_else(|| {
            ModelError::Training(format!("the {kind} model gave no input gradient"))
        })?;
        let p = nn::to_vec(p);
        for r in 0..n {
            let share = &mut per_metric[(first + r) * m..(first + r + 1) * m];
            let d = window * m;
            let (g, v) = (&g[r * d..(r + 1) * d], &x[r * d..(r + 1) * d]);
            for (step_g, step_v) in g.chunks_exact(m).zip(v.chunks_exact(m)) {
                for c in 0..m {
                    share[c] += (step_g[c] * (step_v[c] - state.metric_means[c])).abs();
                }
            }
            share_out(p[r], share);
        }
    }
    // The total is the probability itself (the shares sum to it up to rounding).
    Ok(Scores::from_contributions(per_metric, m))
}

fn save(
    net: &nn::Fitted<impl Classifier>,
    state: &Option<ClassifierState>,
    kind: &str,
    file: &str,
) -> Result<WeightFiles> {
    let state = crate::error::fitted(state, kind)?;
    let mut files = WeightFiles::new();
    net.save(&mut files)?;
    put_json(&mut files, file, state)?;
    Ok(files)
}

fn load<N: Classifier>(
    net: &mut nn::Fitted<N>,
    state: &mut Option<ClassifierState>,
    files: &WeightFiles,
    n_metrics: usize,
    file: &str,
) -> Result<()> {
    let loaded: ClassifierState = get_json(files, file)?;
    if loaded.metric_means.len() != n_metrics {
        return Err(ModelError::Weights(format!(
            "{file} holds {} metric means for a model of {n_metrics} metrics; retrain the model",
            loaded.metric_means.len()
        )));
    }
    net.load(files, n_metrics)?;
    *state = Some(loaded);
    Ok(())
}

/// MTAD-FL's Local model as a detector.
#[derive(Debug)]
pub struct MtadLocal {
    config: MtadLocalConfig,
    net: nn::Fitted<LocalNet>,
    state: Option<ClassifierState>,
}

/// MTAD-FL's Transfer model as a detector.
#[derive(Debug)]
pub struct MtadTransfer {
    config: MtadTransferConfig,
    net: nn::Fitted<TransferNet>,
    state: Option<ClassifierState>,
}

const LOCAL_WEIGHTS: &str = "mtad-local.bpk";
const LOCAL_STATE: &str = "mtad-local-means.json";
const TRANSFER_WEIGHTS: &str = "mtad-transfer.bpk";
const TRANSFER_STATE: &str = "mtad-transfer-means.json";

impl MtadLocal {
    /// Builds an unfitted Local model.
    pub fn new(config: MtadLocalConfig) -> Result<MtadLocal> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, LOCAL_WEIGHTS, |c, m, device| {
            LocalNet::new(c.training().shape(m), device)
        });
        Ok(MtadLocal {
            config,
            net,
            state: None,
        })
    }
}

impl MtadTransfer {
    /// Builds an unfitted Transfer model.
    pub fn new(config: MtadTransferConfig) -> Result<MtadTransfer> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, TRANSFER_WEIGHTS, |c, m, device| {
            TransferNet::new(
                c.training().shape(m),
                c.se_reduction,
                c.attention_memory,
                device,
            )
        });
        Ok(MtadTransfer {
            config,
            net,
            state: None,
        })
    }
}

/// The `Detector` methods both models implement alike.
macro_rules! classifier_detector {
    ($state:expr, $extra_groups:expr) => {
        crate::config::config_methods!(window);

        fn supervised(&self) -> bool {
            true
        }

        fn layer_groups(&self) -> Vec<LayerGroup> {
            layer_groups($extra_groups)
        }

        fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
            let kind = self.kind();
            let t = self.config.training();
            fit_classifier(&mut self.net, &mut self.state, t, input, options, kind)
        }

        fn score(&self, input: &MtsInput) -> Result<Scores> {
            score_classifier(
                &self.net,
                &self.state,
                self.config.window,
                input,
                self.kind(),
            )
        }

        fn save_weights(&self) -> Result<WeightFiles> {
            save(&self.net, &self.state, self.kind(), $state)
        }

        fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
            load(&mut self.net, &mut self.state, files, n_metrics, $state)
        }

        crate::nn::fitted_network!();
    };
}

impl Detector for MtadLocal {
    classifier_detector!(LOCAL_STATE, &[]);
}

impl Detector for MtadTransfer {
    classifier_detector!(TRANSFER_STATE, &["squeeze1", "squeeze2", "attention"]);
}
