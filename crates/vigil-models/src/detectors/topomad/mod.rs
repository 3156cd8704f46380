//! TopoMAD (He et al., *A Spatiotemporal Deep Learning Approach for Unsupervised Anomaly
//! Detection in Cloud Systems*, IEEE TNNLS 2020): a stochastic seq2seq (VAE) over windows of a
//! system's components whose recurrent cells convolve over the call graph, as the authors'
//! reference code builds it (`../shared/papers/topomad-notes.md`).
//!
//! - Input: every component reports the same metrics; the [`Topology`] (columns
//!   `component.metric` and an edge list) tells the model which column is which component's
//!   metric. It comes with the training data ([`MtsInput::topology`]), is kept in the config —
//!   so it travels in the model's manifest — and scoring refuses data whose graph differs.
//! - Network (`net.rs`, `cell.rs`): two GraphLSTM layers (GCN gates, or GAT with `cell: gat`)
//!   in the encoder and the decoder, a Gaussian posterior per component, backward
//!   reconstruction with teacher forcing whose probability falls linearly from 1 in the first
//!   epoch to 0 in the last.
//! - Loss: the Gaussian negative log-likelihood of the window plus the KL term.
//! - Score: the squared reconstruction error of each component's metrics (the per-metric
//!   contributions: a component's share is its summed error, what localises the fault), with z
//!   at its posterior mean so that scores are deterministic (the reference averages L draws).
//!   The system's score is their sum, or the largest component's (`system_score`).
//!
//! Deviations from the reference:
//! - the score of a step averages the errors of the last `delay` steps of the window that ends
//!   at it (the reference averages the windows that end up to `delay − 1` steps later, which a
//!   stream cannot wait for);
//! - a fixed number of epochs instead of early stopping on a validation split;
//! - the data is normalised per column by the pipeline's normaliser (min-max unless chosen),
//!   not per metric type pooled over components as the reference does: every detector here
//!   sees the same preparation, stored with the model;
//! - the heads give a standard deviation through softplus + ε (as the other VAEs here) rather
//!   than a log-variance, which keeps the likelihood finite when a head's output runs large;
//! - every head is one linear map shared by the components (`net.rs`);
//! - not built yet: fused kernels for the cell (it is composed from burn's operations).

mod cell;
mod graph;
mod net;
#[cfg(test)]
mod tests;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::nn::infer::par_rows;
use crate::nn::{self};
use burn::optim::decay::WeightDecayConfig;
use burn::prelude::*;
use cell::{Graph, NOT_LINKED};
pub use graph::GraphKind;
use net::{Feeding, Shape, TopomadNet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use vigil_core::topology::Topology;
use vigil_core::window::{check_window, windows_ending_at};

/// How a cell mixes components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellKind {
    /// A graph convolution (GCN, improved normalisation), the reference's default.
    Gcn,
    /// Graph attention (GAT, one head), the reference's option.
    Gat,
}

/// How the system's score of a step is made from its components'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemScore {
    /// The sum over every component and metric.
    Sum,
    /// The largest component's summed error (the per-metric contributions then sum to more
    /// than the total).
    Max,
}

/// TopoMAD's configuration; the reference code's defaults where it has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopomadConfig {
    /// Window length (reference: 30).
    pub window: usize,
    /// Hidden units per component in each GraphLSTM layer (the reference's are small, 5-64).
    pub hidden: usize,
    /// Latent size per component.
    pub latent: usize,
    /// GraphLSTM layers in the encoder and in the decoder (reference: 2).
    pub layers: usize,
    /// How the cells mix components: `gcn` (graph convolution) or `gat` (graph attention).
    pub cell: CellKind,
    /// Which links the cells follow; `none` is the model without the graph.
    pub graph: GraphKind,
    /// Training epochs (the reference stops early on a validation split; a fixed count here,
    /// which the teacher-forcing schedule is spread over).
    pub epochs: usize,
    /// Mini-batch size (reference: 32).
    pub batch_size: usize,
    /// Adam learning rate (reference: 1e-3).
    pub learning_rate: f64,
    /// Adam's L2 weight decay (reference: 1e-4).
    pub weight_decay: f64,
    /// Added to every standard deviation.
    pub std_epsilon: f64,
    /// Gradient L2-norm clip (not in the reference; a guard against the rare step whose
    /// likelihood explodes on a tiny standard deviation).
    pub gradient_clip: f64,
    /// Use every `train_stride`-th training window.
    pub train_stride: usize,
    /// A step's score averages the errors of the last `delay` steps of the window ending at it
    /// (1: the newest step alone).
    pub delay: usize,
    /// The system's score of a step: the sum over components or the largest component's.
    pub system_score: SystemScore,
    /// The system's components and calls: set from the training data's topology by the first
    /// fit, after which data with another graph is refused.
    pub topology: Option<Topology>,
}

impl Default for TopomadConfig {
    fn default() -> Self {
        TopomadConfig {
            window: 30,
            hidden: 16,
            latent: 8,
            layers: 2,
            cell: CellKind::Gcn,
            graph: GraphKind::Undirected,
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            std_epsilon: 1e-4,
            gradient_clip: 10.0,
            train_stride: 1,
            delay: 1,
            system_score: SystemScore::Sum,
            topology: None,
        }
    }
}

detector_config! {
    TopomadConfig = "topomad", batch batch_size;
    counts: window, hidden, latent, layers, epochs, batch_size, train_stride, delay;
    positive: learning_rate, std_epsilon, gradient_clip;
    non_negative: weight_decay;
    |c, checks| {
        checks.at_least("window", c.window, 2);
        checks.require("delay", c.delay <= c.window, c.delay, "at most the window");
        if let Some(Err(problem)) = c.topology.as_ref().map(Topology::check) {
            checks.require(
                "topology",
                false,
                problem,
                "components, metrics, columns and edges that agree",
            );
        }
    }
}

/// The TopoMAD detector.
#[derive(Debug)]
pub struct Topomad {
    config: TopomadConfig,
    net: nn::Fitted<TopomadNet>,
}

const WEIGHTS: &str = "topomad.bpk";

/// Windows per scoring task.
const SCORE_CHUNK_WINDOWS: usize = 128;

impl Topomad {
    /// Builds an unfitted detector.
    pub fn new(config: TopomadConfig) -> Result<Topomad> {
        config.validate()?;
        let net = Self::network(&config);
        Ok(Topomad { config, net })
    }

    /// The network recipe: its input is each component's metrics, so its size follows from
    /// the data's column count divided by the topology's components.
    fn network(config: &TopomadConfig) -> nn::Fitted<TopomadNet> {
        let components = config
            .topology
            .as_ref()
            .map_or(1, |t| t.n_components().max(1));
        nn::Fitted::for_config(config, WEIGHTS, move |c, m, device| {
            let shape = Shape {
                metrics: m / components,
                hidden: c.hidden,
                latent: c.latent,
                layers: c.layers,
                attention: c.cell == CellKind::Gat,
            };
            TopomadNet::new(shape, device)
        })
    }

    /// The topology to use for `input`: the model's, which the input's must equal when it
    /// carries one; before the first fit, the input's.
    fn topology_for(&self, input: &MtsInput) -> Result<Topology> {
        let topology = match (&self.config.topology, input.topology) {
            (Some(mine), Some(theirs)) => {
                if let Some(difference) = mine.difference(theirs) {
                    return Err(ModelError::config(
                        "topomad",
                        format!(
                            "the data's topology is not the one the model was trained on: \
                             {difference}; retrain on the new graph or pass the training's \
                             edge list"
                        ),
                    ));
                }
                mine.clone()
            }
            (Some(mine), None) => mine.clone(),
            (None, Some(theirs)) => {
                theirs.check()?;
                theirs.clone()
            }
            (None, None) => {
                return Err(ModelError::config(
                    "topomad",
                    "topomad needs the system's topology: name the columns `component.metric` \
                     and pass the call graph as an edge list (`vigil train --topology \
                     edges.csv`)",
                ))
            }
        };
        if topology.columns.len() != input.n_metrics {
            return Err(ModelError::Shape(format!(
                "the topology covers {} columns ({} components x {} metrics) but the data has {}",
                topology.columns.len(),
                topology.n_components(),
                topology.n_metrics(),
                input.n_metrics
            )));
        }
        Ok(topology)
    }
}

/// The values with columns in component-major order (component 0's metrics, then 1's, ...),
/// borrowed when they already are.
fn component_major<'a>(values: &'a [f32], topology: &Topology) -> Cow<'a, [f32]> {
    let columns = &topology.columns;
    if columns.iter().enumerate().all(|(k, &c)| k == c) {
        return Cow::Borrowed(values);
    }
    let m = columns.len();
    let mut out = Vec::with_capacity(values.len());
    for row in values.chunks_exact(m) {
        out.extend(columns.iter().map(|&c| row[c]));
    }
    Cow::Owned(out)
}

/// The graph's tensors the cells mix components with.
fn graph_of(topology: &Topology, kind: GraphKind, device: &Device) -> Graph {
    let n = topology.n_components();
    Graph {
        adjacency: nn::tensor2(graph::normalised_adjacency(topology, kind), n, n, device),
        mask: nn::tensor2(
            graph::attention_mask(topology, kind, NOT_LINKED),
            n,
            n,
            device,
        ),
    }
}

/// The probability of teacher forcing in `epoch` (from 1) of `epochs`: 1 in the first, falling
/// linearly to 0 in the last.
fn teacher_probability(epoch: usize, epochs: usize) -> f64 {
    if epochs <= 1 {
        0.0
    } else {
        (epochs - epoch.min(epochs)) as f64 / (epochs - 1) as f64
    }
}

impl Detector for Topomad {
    crate::config::config_methods!(window);

    fn reads_topology(&self) -> bool {
        true
    }

    fn layer_groups(&self) -> Vec<LayerGroup> {
        vec![
            LayerGroup::new("encoder", LayerRole::Generic),
            LayerGroup::new("decoder", LayerRole::Generic),
            LayerGroup::new("posterior", LayerRole::TaskSpecific),
            LayerGroup::new("latent", LayerRole::TaskSpecific),
            LayerGroup::new("output", LayerRole::TaskSpecific),
        ]
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let topology = self.topology_for(input)?;
        // A first fit binds the model to the data's topology, once it has succeeded.
        let mut c = self.config.clone();
        let mut fresh = None;
        if c.topology.is_none() {
            c.topology = Some(topology.clone());
            fresh = Some(Self::network(&c));
        }
        let fitted = fresh.as_mut().unwrap_or(&mut self.net);
        let (m, w) = (input.n_metrics, c.window);
        let (n, per) = (topology.n_components(), topology.n_metrics());
        check_window(w, input.len(), "training series")?;
        let values = component_major(input.values, &topology);
        let ordered = MtsInput {
            values: &values,
            topology: None,
            ..*input
        };
        let (device, net) = fitted.start_fit(m, options);
        let graph = graph_of(&topology, c.graph, &device);
        let mut windows = nn::TrainingWindows::every(&ordered, w, ordered.len(), c.train_stride);
        let mut optimiser = nn::adam()
            .with_weight_decay(Some(WeightDecayConfig::new(c.weight_decay as f32)))
            .with_grad_clipping(Some(
                burn::optim::grad_clipping::GradientClippingConfig::Norm(c.gradient_clip as f32),
            ))
            .init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let mut noise = nn::Noise::for_fit(options.seed);
        let mut coins = ChaCha8Rng::seed_from_u64(options.seed ^ 0x7465_6163_6865_7231);
        let (net, last_loss) = nn::Epochs::new("topomad", &windows, c.batch_size, epochs, options)
            .run(net, |net, idx, epoch| {
                let b = idx.len();
                let x = windows.tensor3(idx, &device).reshape([b, w, n, per]);
                let p = teacher_probability(epoch, epochs);
                let teacher: Vec<bool> = (1..w).map(|_| coins.gen_bool(p)).collect();
                let feeding = Feeding {
                    noise: Some(noise.standard_normal([b, n, c.latent], &device)),
                    teacher: &teacher,
                    std_epsilon: c.std_epsilon,
                };
                let decoded = net.forward(&graph, x.clone(), feeding);
                let nll = nn::likelihood::gaussian_nll_softplus(
                    x,
                    decoded.mean,
                    decoded.raw_std,
                    c.std_epsilon,
                )
                .sum();
                // KL(N(μ, σ²) ‖ N(0, 1)) summed over components and latents.
                let (mean_z, std_z) = (decoded.z_mean, decoded.z_std);
                let kl = (mean_z.square() + std_z.clone().square() - 1.0)
                    .mul_scalar(0.5)
                    .sub(std_z.log())
                    .sum();
                let loss = (nll + kl).div_scalar(b as f64);
                nn::descend(&mut optimiser, c.learning_rate, net, loss)
            })?;
        fitted.keep_trained(&net, m, options);
        if let Some(fresh) = fresh {
            self.net = fresh;
        }
        self.config = c;
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let topology = self.topology_for(input)?;
        let c = &self.config;
        let (m, w) = (input.n_metrics, c.window);
        let net = self.net.get(m)?;
        let (n, per) = (topology.n_components(), topology.n_metrics());
        let values = component_major(input.values, &topology);
        let device = nn::device();
        let graph = graph_of(&topology, c.graph, &device);
        let delay = c.delay.min(w);
        let contributions = par_rows(input.len(), m, SCORE_CHUNK_WINDOWS, |rows, out| {
            let b = rows.len();
            let mut x = Vec::new();
            windows_ending_at(&values, m, w, rows, &mut x);
            let tensor = nn::tensor3(x.clone(), b, w, m, &device).reshape([b, w, n, per]);
            let feeding = Feeding {
                noise: None,
                teacher: &[],
                std_epsilon: c.std_epsilon,
            };
            let mean = nn::to_vec(net.forward(&graph, tensor, feeding).mean);
            for (r, row) in out.chunks_exact_mut(m).enumerate() {
                for (k, &column) in topology.columns.iter().enumerate() {
                    let error: f32 = (w - delay..w)
                        .map(|t| {
                            let at = (r * w + t) * m + k;
                            (x[at] - mean[at]).powi(2)
                        })
                        .sum();
                    row[column] = error / delay as f32;
                }
            }
        });
        let scores = Scores::from_contributions(contributions, m);
        if c.system_score == SystemScore::Sum {
            return Ok(scores);
        }
        // The largest component's summed error.
        let component = topology.component_of_column();
        let total = scores
            .per_metric
            .chunks_exact(m)
            .map(|row| {
                let mut sums = vec![0.0f64; n];
                for (v, &j) in row.iter().zip(&component) {
                    sums[j] += *v as f64;
                }
                sums.into_iter().fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        Ok(Scores { total, ..scores })
    }

    nn::fitted_checkpoints!();
}
