//! GON (Tuli et al., *Generative Optimization Networks for Memory Efficient Data Generation*,
//! NeurIPS 2021 ML for Systems workshop): one network, a discriminator D over a flattened
//! window; generation is gradient ascent on D's *input* ([`generate`]). Training (the paper's
//! Alg. 1) alternates: generate windows by the input-space search, then update D with
//! cross-entropy on real windows (label 0.9) and generated ones (0.1; the authors' label
//! smoothing). Scoring reconstructs each window by the same search started from the window
//! itself; the score of a point is the squared error of the reconstruction's newest step, per
//! metric (the paper's eq. 4, squared as in the authors' code).
//!
//! Defaults follow the authors' code (window 15, hidden 16 x 2, LeakyReLU, sigmoid; search lr
//! 0.01 with cosine annealing, clamped to the data range, patience 10, at most 100 iterations,
//! tolerance 1e-3 in training and 1e-4 in scoring; Adam weight decay 1e-5). Changed:
//! - windows go through D and the search in mini-batches (`batch_size`) instead of one at a
//!   time, so `learning_rate` and `epochs` are set for batches (see docs/models.md);
//! - the authors' `nn.LeakyReLU(True)` sets PyTorch's negative slope to 1 (no non-linearity at
//!   all); `leaky_slope` is PyTorch's default 0.01, the evident intent;
//! - the generation start is a choice: `noise` (the paper: uniform in the data range; the
//!   default) or `real` (the authors' code: from the training window). Measured on the 8 SMD
//!   machines, noise gives the better label-free results (PA-F1 with POT 0.90 vs 0.82, ROC-AUC
//!   0.82 vs 0.76) for twice the training time: from a real window the search barely moves,
//!   the "fakes" are real windows, and D stays near 0.5 everywhere (docs/models.md).

pub mod generate;

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::nn::infer::{par_rows, Dense};
use crate::nn::{self};
use crate::weights::{get_json, put_json, WeightFiles};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, softplus};
use generate::{optimise, Discriminator, Search};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// Where the input-space search starts when training generates fake windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GenerationStart {
    /// From uniform noise within the data range (the paper's Alg. 1; the default).
    Noise,
    /// From the real window of the batch (the authors' code).
    Real,
}

/// GON configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GonConfig {
    /// Window length.
    pub window: usize,
    /// Units of D's hidden layers.
    pub hidden: Vec<usize>,
    /// Negative slope of the LeakyReLU between them.
    pub leaky_slope: f64,
    /// Training epochs.
    pub epochs: usize,
    /// Windows per D update and per batched search.
    pub batch_size: usize,
    /// Adam learning rate of D.
    pub learning_rate: f64,
    /// Adam weight decay of D.
    pub weight_decay: f64,
    /// Label of real windows (label smoothing).
    pub real_label: f64,
    /// Label of generated windows.
    pub fake_label: f64,
    /// Where training's search starts.
    pub generation_start: GenerationStart,
    /// Adam learning rate of the search on the input.
    pub search_learning_rate: f64,
    /// Half-period of its cosine annealing, in iterations.
    pub search_cycle: usize,
    /// Iterations of one search at most.
    pub search_max_iterations: usize,
    /// Quiet iterations after which a window's search stops.
    pub search_patience: usize,
    /// What counts as quiet while training.
    pub train_tolerance: f64,
    /// What counts as quiet while scoring.
    pub score_tolerance: f64,
}

impl Default for GonConfig {
    fn default() -> Self {
        GonConfig {
            window: 15,
            hidden: vec![16, 16],
            leaky_slope: 0.01,
            epochs: 5,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-5,
            real_label: 0.9,
            fake_label: 0.1,
            generation_start: GenerationStart::Noise,
            search_learning_rate: 0.01,
            search_cycle: 10,
            search_max_iterations: 100,
            search_patience: 10,
            train_tolerance: 1e-3,
            score_tolerance: 1e-4,
        }
    }
}

detector_config! {
    GonConfig = "gon", smaller GonConfig::shrunk;
    counts: window, epochs, batch_size, search_cycle, search_max_iterations;
    at_most_counts: search_patience;
    positive: learning_rate, search_learning_rate, train_tolerance, score_tolerance;
    non_negative: weight_decay, leaky_slope;
    |c, checks| {
        checks
            .widths("hidden", &c.hidden)
            .within("real_label", c.real_label, 0.0, 1.0)
            .within("fake_label", c.fake_label, 0.0, 1.0)
            .require(
                "real_label",
                c.real_label > c.fake_label,
                c.real_label,
                format!("above fake_label ({})", c.fake_label),
            );
    }
}

impl GonConfig {
    /// The next rung of GON's memory ladder: its size lies in the discriminator, so after the
    /// batch (little memory, no accuracy) it gives up width, and width before depth.
    fn shrunk(&self) -> Option<GonConfig> {
        const SMALLEST_BATCH: usize = 16;
        const NARROWEST: usize = 4;
        let mut c = self.clone();
        if c.batch_size > SMALLEST_BATCH {
            c.batch_size = (c.batch_size / 2).max(SMALLEST_BATCH);
        } else if c.hidden.iter().any(|&h| h > NARROWEST) {
            c.hidden
                .iter_mut()
                .for_each(|h| *h = (*h / 2).max(NARROWEST));
        } else if c.hidden.len() > 1 {
            c.hidden.pop();
        } else {
            return None;
        }
        Some(c)
    }
}

#[derive(Module, Debug)]
struct DiscriminatorNet {
    layers: Vec<Linear>,
}

impl DiscriminatorNet {
    /// Logits (before the sigmoid), `[n, 1]`.
    fn logits(&self, mut x: Tensor<2>, slope: f64) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = leaky_relu(x, slope);
            }
        }
        x
    }

    fn weights(&self, slope: f64) -> Discriminator {
        Discriminator {
            layers: self.layers.iter().map(Dense::from_linear).collect(),
            slope: slope as f32,
        }
    }
}

/// The data range of every value of a window (each metric's training min and max, repeated
/// over the window's steps): the search stays inside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Range {
    low: Vec<f32>,
    high: Vec<f32>,
}

/// The GON detector.
#[derive(Debug)]
pub struct Gon {
    config: GonConfig,
    net: nn::Fitted<DiscriminatorNet>,
    range: Option<Range>,
}

const WEIGHTS: &str = "gon.bpk";
const RANGE: &str = "gon-range.json";
/// Windows per task when scoring searches run across the cores.
const SCORE_CHUNK: usize = 256;

impl Gon {
    /// Builds an unfitted detector.
    pub fn new(config: GonConfig) -> Result<Gon> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, build_net);
        Ok(Gon {
            config,
            net,
            range: None,
        })
    }

    fn search(&self, tolerance: f64) -> Search {
        let c = &self.config;
        Search {
            learning_rate: c.search_learning_rate as f32,
            cycle: c.search_cycle,
            max_iterations: c.search_max_iterations,
            patience: c.search_patience,
            tolerance: tolerance as f32,
            target: c.real_label as f32,
        }
    }
}

/// Each metric's min and max over `input`, repeated for the `window` steps of a window.
fn data_range(input: &MtsInput, window: usize) -> Range {
    let m = input.n_metrics;
    let (mut low, mut high) = (vec![f32::INFINITY; m], vec![f32::NEG_INFINITY; m]);
    for row in input.values.chunks_exact(m) {
        for c in 0..m {
            low[c] = low[c].min(row[c]);
            high[c] = high[c].max(row[c]);
        }
    }
    Range {
        low: low.repeat(window),
        high: high.repeat(window),
    }
}

impl Detector for Gon {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        // The input layer reads the window's features; the rest decides real or fake.
        (0..=self.config.hidden.len())
            .map(|i| {
                let role = if i == 0 {
                    LayerRole::Generic
                } else {
                    LayerRole::TaskSpecific
                };
                LayerGroup::new(&format!("layers.{i}"), role)
            })
            .collect()
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let d = w * m;
        let (device, net) = self.net.start_fit(m, options);
        let range = data_range(input, w);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed ^ 0x60E);
        let mut optimiser = nn::adam()
            .with_weight_decay(Some(WeightDecayConfig::new(c.weight_decay as f32)))
            .init();
        let search = self.search(c.train_tolerance);
        let epochs = options.epochs.unwrap_or(c.epochs);
        let (mut windows, mut fake) = (nn::TrainingWindows::all(input, w), Vec::new());
        let (net, last_loss) = nn::Epochs::new("gon", &windows, c.batch_size, epochs, options)
            .run(net, |net, idx, _| {
                let b = idx.len();
                let real = windows.gather(idx);
                fake.clear();
                match c.generation_start {
                    GenerationStart::Real => fake.extend_from_slice(real),
                    GenerationStart::Noise => fake.extend((0..b * d).map(|i| {
                        let (lo, hi) = (range.low[i % d], range.high[i % d]);
                        lo + (hi - lo) * rng.gen::<f32>()
                    })),
                }
                // Generate with the current D (its weights copied onto slices).
                optimise(
                    &net.weights(c.leaky_slope),
                    &mut fake,
                    b,
                    &range.low,
                    &range.high,
                    &search,
                );
                let mut both = real.to_vec();
                both.extend_from_slice(&fake);
                let x = nn::tensor2(both, 2 * b, d, &device);
                let labels: Vec<f32> = std::iter::repeat_n(c.real_label as f32, b)
                    .chain(std::iter::repeat_n(c.fake_label as f32, b))
                    .collect();
                let y = nn::tensor2(labels, 2 * b, 1, &device);
                // Binary cross-entropy from logits: softplus(a) − y·a, the mean of the real and
                // the generated halves.
                let a = net.logits(x, c.leaky_slope);
                let loss = (softplus(a.clone(), 1.0) - a * y).mean();
                nn::descend(&mut optimiser, c.learning_rate, net, loss)
            })?;
        self.net.keep_trained(&net, m, options);
        self.range = Some(range);
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let range = crate::error::fitted(&self.range, self.kind())?;
        let d = w * m;
        let discriminator = net.weights(self.config.leaky_slope);
        let search = self.search(self.config.score_tolerance);
        let contributions = par_rows(input.len(), m, SCORE_CHUNK, |rows, out| {
            let n = rows.len();
            let mut x = Vec::new();
            windows_ending_at(input.values, m, w, rows, &mut x);
            // A reconstruction: the search from the window itself, clamped to the training
            // range (a test value beyond it cannot be reconstructed, and scores high).
            let mut z = x.clone();
            optimise(&discriminator, &mut z, n, &range.low, &range.high, &search);
            for r in 0..n {
                let newest = r * d + d - m..(r + 1) * d;
                for ((o, a), b) in out[r * m..(r + 1) * m]
                    .iter_mut()
                    .zip(&x[newest.clone()])
                    .zip(&z[newest])
                {
                    *o = (a - b) * (a - b);
                }
            }
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    fn save_weights(&self) -> Result<WeightFiles> {
        let range = crate::error::fitted(&self.range, self.kind())?;
        let mut files = WeightFiles::new();
        self.net.save(&mut files)?;
        put_json(&mut files, RANGE, range)?;
        Ok(files)
    }

    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let range: Range = get_json(files, RANGE)?;
        let d = self.config.window * n_metrics;
        if range.low.len() != d || range.high.len() != d {
            return Err(ModelError::Weights(format!(
                "{RANGE} does not hold {d} bounds; retrain the model"
            )));
        }
        self.net.load(files, n_metrics)?;
        self.range = Some(range);
        Ok(())
    }

    crate::nn::fitted_network!();
}

/// The untrained discriminator for `n_metrics` metrics: window · metrics → hidden → 1.
fn build_net(c: &GonConfig, n_metrics: usize, device: &Device) -> DiscriminatorNet {
    let mut sizes = vec![c.window * n_metrics];
    sizes.extend(&c.hidden);
    sizes.push(1);
    DiscriminatorNet {
        layers: sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_teaches_d_to_rate_real_windows_above_noise() {
        let m = 3;
        let values: Vec<f32> = (0..1500)
            .flat_map(|t| {
                let x = t as f32 * std::f32::consts::TAU / 50.0;
                [0.5 + 0.4 * x.sin(), 0.5 + 0.4 * x.cos(), 0.5]
            })
            .collect();
        let input = MtsInput::new(&values, m);
        let mut det = Gon::new(GonConfig {
            window: 5,
            epochs: 20,
            ..GonConfig::default()
        })
        .unwrap();
        let gap = |det: &Gon| {
            let d = det.net.get(m).unwrap().weights(0.01);
            let (real, n) = input.training_windows(5);
            let noise: Vec<f32> = (0..real.len())
                .map(|i| ((i as f32 * 12.9898).sin() * 43_758.547).fract().abs())
                .collect();
            let mean = |p: Vec<f32>| p.iter().sum::<f32>() / p.len() as f32;
            mean(d.probabilities(&real, n)) - mean(d.probabilities(&noise, n))
        };
        det.fit(
            &input,
            &FitOptions {
                epochs: Some(0),
                ..FitOptions::default()
            },
        )
        .unwrap();
        let untrained = gap(&det);
        det.fit(&input, &FitOptions::default()).unwrap();
        let trained = gap(&det);
        assert!(
            trained > 0.1 && trained > untrained + 0.1,
            "D(real) − D(noise): {untrained} untrained, {trained} trained"
        );
    }

    #[test]
    fn slice_discriminator_matches_burn() {
        let m = 3;
        let values: Vec<f32> = (0..200 * m)
            .map(|i| ((i as f32) * 0.21).sin() * 0.5 + 0.5)
            .collect();
        let input = MtsInput::new(&values, m);
        let mut det = Gon::new(GonConfig {
            epochs: 1,
            ..GonConfig::default()
        })
        .unwrap();
        det.fit(&input, &FitOptions::default()).unwrap();
        let net = det.net.get(m).unwrap();
        let (x, n) = input.training_windows(det.config.window);
        let d = det.config.window * m;
        let want = nn::to_vec(burn::tensor::activation::sigmoid(
            net.logits(nn::tensor2(x.clone(), n, d, &nn::device()), 0.01),
        ));
        let got = net.weights(0.01).probabilities(&x, n);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
