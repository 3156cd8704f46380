//! GDN, the Graph Deviation Network (Deng & Hooi, AAAI 2021): every metric is a node with a
//! learned embedding; each node attends to the nodes whose embeddings are most like its own
//! (a top-k graph learned with the embeddings), forecasts its next value from its own and its
//! neighbours' recent windows, and a metric's score is its forecast error normalised by that
//! metric's typical error.
//!
//! Architecture (the authors' code, `d-ailin/GDN`, at its `run.sh` settings):
//! - graph: node i's neighbours are itself and the `top_k - 1` other nodes of highest cosine
//!   similarity between embeddings, recomputed from the current embeddings at every step (the
//!   selection is not differentiated, as in the paper);
//! - graph attention: h = W x (x: the node's last `window` values), attention logits
//!   LeakyReLU_0.2(a_i·[h_i, v_i] + a_j·[h_j, v_j]) softmaxed over i's neighbours,
//!   z_i = Σ_j α_ij h_j + b, then batch norm and ReLU — computed over every pair of nodes with
//!   the non-neighbours masked out, which gives them exactly zero weight;
//! - output: z_i ⊙ v_i, batch norm, ReLU, dropout 0.2, a dense layer to one value per node.
//!
//! Score: the signed forecast error d_i(t) = x̂_i(t) − x_i(t) normalised as
//! |d_i(t) − median_i| / (IQR_i + 0.01) and averaged over t and the `smoothing` steps before it
//! (the paper's moving average); that is metric i's contribution, and the total is the largest
//! contribution (the paper's max over sensors) — not their sum.
//!
//! What differs from the paper and why: the median and IQR of each metric's error come from the
//! training series, kept with the model; the authors' code takes them from the test series
//! being scored, which a stream cannot know in advance (and which would make one point's score
//! depend on every other point). Training runs a fixed number of epochs without the authors'
//! 20% validation split and early stopping, like vigil's other detectors.

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::nn;
use crate::weights::{get_json, put_json, WeightFiles};
use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, softmax};
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// GDN configuration: the authors' `run.sh` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GdnConfig {
    /// Past steps each node reads to forecast its next value (paper: 5).
    pub window: usize,
    /// Size of the node embeddings and of the graph layer's output (paper: 64).
    pub embedding: usize,
    /// Neighbours per node, itself included (run.sh: 5; the paper used 15 on SWaT, 30 on WADI).
    pub top_k: usize,
    /// Dropout before the output layer, in training (paper: 0.2).
    pub dropout: f64,
    /// Training epochs (run.sh: up to 30, keeping the epoch of best validation loss; 10 here so
    /// that an SMD machine trains in about a minute on two CPU cores).
    pub epochs: usize,
    /// Mini-batch size (run.sh: 32).
    pub batch_size: usize,
    /// Adam learning rate (paper: 1e-3).
    pub learning_rate: f64,
    /// Earlier steps averaged into a point's score with its own (the authors' code: 3).
    pub smoothing: usize,
}

impl Default for GdnConfig {
    fn default() -> Self {
        GdnConfig {
            window: 5,
            embedding: 64,
            top_k: 5,
            dropout: 0.2,
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-3,
            smoothing: 3,
        }
    }
}

detector_config! {
    GdnConfig = "gdn", batch batch_size;
    counts: window, embedding, top_k, epochs, batch_size;
    at_most_counts: smoothing;
    shares_below_one: dropout;
    positive: learning_rate;
}

/// The attention over a node's neighbours (the authors' `GraphLayer`, one head).
#[derive(Module, Debug)]
struct GraphAttention {
    /// W: a node's window to its hidden features (no bias).
    lin: Linear,
    /// Attention weights on the receiving node's features and embedding.
    att_i: Param<Tensor<1>>,
    att_em_i: Param<Tensor<1>>,
    /// Attention weights on the sending node's features and embedding.
    att_j: Param<Tensor<1>>,
    att_em_j: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
    norm: BatchNorm,
}

#[derive(Module, Debug)]
struct GdnNet {
    /// One embedding per metric, `[metrics, embedding]`.
    embedding: Param<Tensor<2>>,
    graph: GraphAttention,
    out_norm: BatchNorm,
    /// vigil's dropout: burn's draws its mask from a slow generator, a quarter of a GDN step.
    dropout: nn::Dropout,
    head: Linear,
}

impl GdnNet {
    fn new(c: &GdnConfig, metrics: usize, device: &Device) -> Self {
        let d = c.embedding;
        // The authors' initialisation: embeddings Kaiming-uniform (±1/√d), W and the feature
        // attention weights Glorot-uniform, the embedding attention weights and the bias zero.
        let uniform = |bound: f64| Distribution::Uniform(-bound, bound);
        let glorot = uniform((6.0 / (1.0 + d as f64)).sqrt());
        let attention = || Param::from_tensor(Tensor::random([d], glorot, device));
        let zeros = || Param::from_tensor(Tensor::zeros([d], device));
        GdnNet {
            embedding: Param::from_tensor(Tensor::random(
                [metrics, d],
                uniform(1.0 / (d as f64).sqrt()),
                device,
            )),
            graph: GraphAttention {
                lin: LinearConfig::new(c.window, d)
                    .with_bias(false)
                    .with_initializer(burn::nn::Initializer::XavierUniform { gain: 1.0 })
                    .init(device),
                att_i: attention(),
                att_em_i: zeros(),
                att_j: attention(),
                att_em_j: zeros(),
                bias: zeros(),
                norm: BatchNormConfig::new(d).init(device),
            },
            out_norm: BatchNormConfig::new(d).init(device),
            dropout: nn::Dropout::new(c.dropout),
            head: LinearConfig::new(d, 1).init(device),
        }
    }

    /// Forecasts `[batch, metrics]` from each node's window `[batch, metrics, window]`, over the
    /// graph given as an additive attention `mask` (`metrics x metrics`: 0 where node i reads
    /// node j, a large negative number elsewhere). Attending over every pair and masking is
    /// cheaper here than gathering each node's k neighbours: one batched matrix product
    /// instead of gathers whose gradients scatter (measured: bench/results/speed.md).
    fn forward(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [batch, nodes, _] = x.dims();
        let emb = self.embedding.val();
        let d = emb.dims()[1];
        let g = &self.graph;
        let h = g.lin.forward(x); // [batch, nodes, d]
                                  // Both nodes' attention terms in one product each: column 0 is node i's (receiving)
                                  // weights, column 1 node j's (sending).
        let column = |p: &Param<Tensor<1>>| p.val().reshape([d, 1]);
        let on_features = Tensor::cat(vec![column(&g.att_i), column(&g.att_j)], 1);
        let on_embeddings = Tensor::cat(vec![column(&g.att_em_i), column(&g.att_em_j)], 1);
        let terms = h.clone().matmul(on_features.reshape([1, d, 2]))
            + emb.clone().matmul(on_embeddings).reshape([1, nodes, 2]); // [b, n, 2]
        let receiving = terms.clone().narrow(2, 0, 1); // [b, n, 1]
        let sending = terms.narrow(2, 1, 1).swap_dims(1, 2); // [b, 1, n]
        let logits = leaky_relu(receiving + sending, 0.2) + mask.reshape([1, nodes, nodes]);
        let alpha = softmax(logits, 2); // [b, n, n], zero off the graph
        let z = alpha.matmul(h).reshape([batch * nodes, d]) + g.bias.val().reshape([1, d]);
        let z = relu(g.norm.forward(z)).reshape([batch, nodes, d]);
        let out = (z * emb.reshape([1, nodes, d])).reshape([batch * nodes, d]);
        let out = self.dropout.forward(relu(self.out_norm.forward(out)));
        self.head.forward(out).reshape([batch, nodes])
    }

    /// The attention mask of the graph [`Self::neighbours`] picks, on `device`.
    fn graph_mask(&self, k: usize, device: &Device) -> Tensor<2> {
        let nodes = self.embedding.val().dims()[0];
        let mut mask = vec![OFF_GRAPH; nodes * nodes];
        for (slot, &j) in self.neighbours(k).iter().enumerate() {
            mask[(slot / k) * nodes + j] = 0.0;
        }
        nn::tensor2(mask, nodes, nodes, device)
    }

    /// Each node's neighbours from the current embeddings: itself, then the `k - 1` other nodes
    /// of highest cosine similarity (ties to the lower index), flattened row by row.
    fn neighbours(&self, k: usize) -> Vec<usize> {
        let [nodes, d] = self.embedding.val().dims();
        let emb = nn::to_vec(self.embedding.val());
        let norms: Vec<f32> = emb
            .chunks_exact(d)
            .map(|v| v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12))
            .collect();
        let mut out = Vec::with_capacity(nodes * k);
        for i in 0..nodes {
            let vi = &emb[i * d..(i + 1) * d];
            let mut others: Vec<(f32, usize)> = (0..nodes)
                .filter(|&j| j != i)
                .map(|j| {
                    let dot: f32 = vi
                        .iter()
                        .zip(&emb[j * d..(j + 1) * d])
                        .map(|(a, b)| a * b)
                        .sum();
                    (dot / (norms[i] * norms[j]), j)
                })
                .collect();
            others.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            out.push(i);
            out.extend(others.iter().take(k - 1).map(|&(_, j)| j));
        }
        out
    }
}

/// Each metric's typical forecast error on the training series: the normalisation of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ErrorScale {
    median: Vec<f32>,
    iqr: Vec<f32>,
}

/// The GDN detector.
#[derive(Debug)]
pub struct Gdn {
    config: GdnConfig,
    net: nn::Fitted<GdnNet>,
    scale: Option<ErrorScale>,
}

const WEIGHTS: &str = "gdn.bpk";
const SCALE: &str = "gdn-error-scale.json";
/// Added to the IQR before dividing, as in the authors' code (a metric that never errs).
const IQR_FLOOR: f32 = 1e-2;
/// Attention logit added between nodes that are not neighbours: far enough below any real
/// logit that softmax gives them exactly 0, finite so that no 0 · ∞ appears in a gradient.
const OFF_GRAPH: f32 = -1e9;
/// Windows forecast per tensor pass when scoring.
const SCORE_CHUNK: usize = 1024;

impl Gdn {
    /// Builds an unfitted detector.
    pub fn new(config: GdnConfig) -> Result<Gdn> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, GdnNet::new);
        Ok(Gdn {
            config,
            net,
            scale: None,
        })
    }

    /// Neighbours per node on `metrics` metrics: `top_k`, or every node when there are fewer.
    fn k(&self, metrics: usize) -> usize {
        self.config.top_k.min(metrics)
    }

    /// Signed forecast errors x̂ − x of every point (front-padded windows), `T x M`.
    fn forecast_errors(&self, net: &GdnNet, input: &MtsInput) -> Vec<f32> {
        let (m, w) = (input.n_metrics, self.config.window);
        let k = self.k(m);
        let device = nn::device_of(net);
        let mask = net.graph_mask(k, &device);
        let mut errors = Vec::with_capacity(input.len() * m);
        let mut windows = Vec::new();
        for start in (0..input.len()).step_by(SCORE_CHUNK) {
            let end = (start + SCORE_CHUNK).min(input.len());
            let n = end - start;
            windows_ending_at(input.values, m, w + 1, start..end, &mut windows);
            let (history, actual) = split_windows(windows.clone(), n, w, m, &device);
            let predicted = net.forward(history, mask.clone());
            errors.extend(nn::to_vec(predicted - actual));
        }
        errors
    }
}

/// Windows of `w + 1` steps `[n, w + 1, m]` as each node's history `[n, m, w]` and the values
/// to forecast `[n, m]`.
fn split_windows(
    windows: Vec<f32>,
    n: usize,
    w: usize,
    m: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<2>) {
    let x = nn::tensor3(windows, n, w + 1, m, device);
    let history = x.clone().narrow(1, 0, w).swap_dims(1, 2);
    let actual = x.narrow(1, w, 1).reshape([n, m]);
    (history, actual)
}

/// Median and interquartile range of each metric's errors (`T x M`, linear interpolation
/// between order statistics, as numpy's percentile).
fn error_scale(errors: &[f32], m: usize) -> ErrorScale {
    let (mut median, mut iqr) = (Vec::with_capacity(m), Vec::with_capacity(m));
    for c in 0..m {
        let mut column: Vec<f64> = errors
            .iter()
            .skip(c)
            .step_by(m)
            .map(|&e| e as f64)
            .collect();
        column.sort_by(f64::total_cmp);
        median.push(percentile(&column, 0.5) as f32);
        iqr.push((percentile(&column, 0.75) - percentile(&column, 0.25)) as f32);
    }
    ErrorScale { median, iqr }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Normalised, smoothed deviations (`T x M` contributions) and their per-step maximum.
fn deviation_scores(errors: &[f32], m: usize, scale: &ErrorScale, smoothing: usize) -> Scores {
    let deviation: Vec<f32> = errors
        .chunks_exact(m)
        .flat_map(|row| {
            row.iter()
                .enumerate()
                .map(|(c, &e)| (e - scale.median[c]).abs() / (scale.iqr[c].abs() + IQR_FLOOR))
        })
        .collect();
    let steps = deviation.len() / m;
    let mut per_metric = vec![0.0f32; deviation.len()];
    for t in 0..steps {
        let first = t.saturating_sub(smoothing);
        let span = (t - first + 1) as f32;
        for c in 0..m {
            let sum: f32 = (first..=t).map(|s| deviation[s * m + c]).sum();
            per_metric[t * m + c] = sum / span;
        }
    }
    let total = per_metric
        .chunks_exact(m)
        .map(|row| row.iter().fold(0.0f32, |a, &b| a.max(b)) as f64)
        .collect();
    Scores {
        total,
        per_metric,
        n_metrics: m,
    }
}

impl Detector for Gdn {
    crate::config::config_methods!();

    /// The forecast reads `window` steps, and the score averages `smoothing` earlier forecasts.
    fn window(&self) -> usize {
        self.config.window + 1 + self.config.smoothing
    }

    fn layer_groups(&self) -> Vec<LayerGroup> {
        vec![
            LayerGroup::new("embedding", LayerRole::Generic),
            LayerGroup::new("graph", LayerRole::Generic),
            LayerGroup::new("out_norm", LayerRole::TaskSpecific),
            LayerGroup::new("head", LayerRole::TaskSpecific),
        ]
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let m = input.n_metrics;
        let span = c.window + 1;
        check_window(self.window(), input.len(), "training series")?;
        let k = self.k(m);
        let (device, net) = self.net.start_fit(m, options);
        nn::seed_dropout(options.seed);
        let mut windows = nn::TrainingWindows::all(input, span);
        let mut optimiser = nn::adam().init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        // Batch norm needs two rows to estimate a spread; a lone window is skipped.
        let (net, last_loss) = nn::Epochs::new("gdn", &windows, c.batch_size, epochs, options)
            .skip_batches_below(2)
            .run(net, |net, idx, _| {
                let batch = windows.gather(idx).to_vec();
                let (history, actual) = split_windows(batch, idx.len(), c.window, m, &device);
                let mask = net.graph_mask(k, &device);
                let loss = (net.forward(history, mask) - actual).square().mean();
                nn::descend(&mut optimiser, c.learning_rate, net, loss)
            })?;
        let fitted = net.valid().to_device(&options.device);
        let errors = self.forecast_errors(&fitted, input);
        self.scale = Some(error_scale(&errors, m));
        self.net.set(fitted, m);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let m = input.n_metrics;
        let net = self.net.get(m)?;
        let scale = crate::error::fitted(&self.scale, self.kind())?;
        let errors = self.forecast_errors(net, input);
        Ok(deviation_scores(&errors, m, scale, self.config.smoothing))
    }

    fn save_weights(&self) -> Result<WeightFiles> {
        let scale = crate::error::fitted(&self.scale, self.kind())?;
        let mut files = WeightFiles::new();
        self.net.save(&mut files)?;
        put_json(&mut files, SCALE, scale)?;
        Ok(files)
    }

    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let scale: ErrorScale = get_json(files, SCALE)?;
        if scale.median.len() != n_metrics || scale.iqr.len() != n_metrics {
            return Err(ModelError::Weights(format!(
                "{SCALE} holds the error scale of {} metrics, the model has {n_metrics}; \
                     retrain the model",
                scale.median.len()
            )));
        }
        self.net.load(files, n_metrics)?;
        self.scale = Some(scale);
        Ok(())
    }

    crate::nn::fitted_network!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_neighbours_itself_then_its_most_similar_embeddings() {
        let device = nn::device();
        let config = GdnConfig {
            embedding: 2,
            ..GdnConfig::default()
        };
        let mut net = GdnNet::new(&config, 4, &device);
        // Nodes 0 and 1 point the same way, 2 is at 45° to them, 3 is opposite 0.
        net.embedding = Param::from_tensor(nn::tensor2(
            vec![1.0, 0.0, 2.0, 0.0, 1.0, 1.0, -1.0, 0.0],
            4,
            2,
            &device,
        ));
        assert_eq!(net.neighbours(3), vec![0, 1, 2, 1, 0, 2, 2, 0, 1, 3, 2, 0]);
    }

    #[test]
    fn scores_are_normalised_smoothed_deviations_and_the_total_is_their_maximum() {
        // Two metrics; metric 0 errs 0 except a deviation of 4.01 at t = 4; metric 1 errs 1.
        let mut errors = vec![0.0f32; 12];
        for t in 0..6 {
            errors[t * 2 + 1] = 1.0;
        }
        errors[8] = 4.01;
        let scale = ErrorScale {
            median: vec![0.0, 1.0],
            iqr: vec![0.0, 0.5],
        };
        let s = deviation_scores(&errors, 2, &scale, 1);
        // Metric 0: 4.01 / (0 + 0.01) = 401 at t = 4, smoothed with t = 3 → 200.5, and with
        // t = 5 → 200.5; metric 1 never deviates from its median.
        assert!(
            (s.per_metric[8] - 200.5).abs() < 1e-3,
            "{}",
            s.per_metric[8]
        );
        assert!((s.per_metric[10] - 200.5).abs() < 1e-3);
        assert_eq!(s.per_metric[6], 0.0);
        assert!(s.per_metric.iter().skip(1).step_by(2).all(|&v| v == 0.0));
        assert!((s.total[4] - 200.5).abs() < 1e-3);
        assert_eq!(s.total[0], 0.0);
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], [25, 50, 75]) = [1.75, 2.5, 3.25].
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile(&v, 0.25) - 1.75).abs() < 1e-12);
        assert!((percentile(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((percentile(&v, 0.75) - 3.25).abs() < 1e-12);
    }

    #[test]
    fn bad_config_is_refused() {
        for config in [
            GdnConfig {
                top_k: 0,
                ..GdnConfig::default()
            },
            GdnConfig {
                dropout: 1.0,
                ..GdnConfig::default()
            },
        ] {
            assert!(Gdn::new(config).is_err());
        }
    }
}
