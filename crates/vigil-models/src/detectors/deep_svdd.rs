//! Deep SVDD (Ruff et al., *Deep One-Class Classification*, ICML 2018) over flattened windows —
//! one of MTAD-FL's deep baselines. A network φ without bias terms maps each window into a
//! representation space; training pulls every training window towards a fixed centre `c` (the
//! mean of φ over the training data at initialisation), i.e. minimises the volume of a
//! hypersphere around the normal data. The score of a point is ‖φ(window) − c‖², its window
//! ending at that point.
//!
//! The paper's encoder is a LeNet-style CNN for images; for windows of a multivariate series we
//! use a dense network (window x metrics → 128 → 64 → 32, ReLU). Kept from the paper: no biases
//! (with them φ can map everything onto `c`), centre components near zero pushed to ±0.1 (a
//! zero component could be matched by dead units), one-class objective with weight decay, Adam.
//! Left out: the optional autoencoder pre-training of the weights.
//!
//! Per-metric contributions: the score lives in representation space, not per metric, so it
//! is shared out by gradient x deviation — each metric's share is Σ over the window of
//! |∂score/∂x · (x − training mean of that metric)|, normalised; a metric sitting at its usual
//! level, or one the network ignores, takes little of the blame.

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{
    share_out, Detector, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores,
};
use crate::error::{ModelError, Result};
use crate::nn::infer::{par_rows, DenseStack, CHUNK_ROWS};
use crate::nn::{self, Activation, Mlp};
use crate::weights::{get_json, put_json, WeightFiles};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// Deep SVDD configuration; the paper's values are noted where ours differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepSvddConfig {
    /// Window length (steps x all metrics form one input).
    pub window: usize,
    /// Units of the hidden layers, input side first.
    pub hidden: Vec<usize>,
    /// Size of the representation (the paper: 32 on MNIST, 128 on CIFAR-10).
    pub representation: usize,
    /// Training epochs (the paper: 150 on images).
    pub epochs: usize,
    /// Mini-batch size (the paper: 200).
    pub batch_size: usize,
    /// Adam learning rate (the paper: 1e-4, dropped to 1e-5 late in training).
    pub learning_rate: f64,
    /// Weight decay λ (the paper: 1e-6).
    pub weight_decay: f64,
    /// Centre components closer to zero than this are moved to ±this (the paper's code: 0.1).
    pub centre_epsilon: f64,
}

impl Default for DeepSvddConfig {
    fn default() -> Self {
        DeepSvddConfig {
            window: 10,
            hidden: vec![128, 64],
            representation: 32,
            epochs: 30,
            batch_size: 200,
            learning_rate: 1e-4,
            weight_decay: 1e-6,
            centre_epsilon: 0.1,
        }
    }
}

detector_config! {
    DeepSvddConfig = "deep-svdd", batch batch_size;
    counts: window, representation, epochs, batch_size;
    positive: learning_rate, centre_epsilon;
    non_negative: weight_decay;
    |c, checks| {
        checks.widths("hidden", &c.hidden);
    }
}

#[derive(Module, Debug)]
struct SvddNet {
    encoder: Mlp,
}

/// What a fit learns besides the weights: the centre, and the training mean of each metric
/// (the reference point of the per-metric contributions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SvddState {
    centre: Vec<f32>,
    metric_means: Vec<f32>,
}

/// The Deep SVDD detector.
#[derive(Debug)]
pub struct DeepSvdd {
    config: DeepSvddConfig,
    net: nn::Fitted<SvddNet>,
    state: Option<SvddState>,
}

const WEIGHTS: &str = "deep-svdd.bpk";
const STATE: &str = "deep-svdd-centre.json";

impl DeepSvdd {
    /// Builds an unfitted detector.
    pub fn new(config: DeepSvddConfig) -> Result<DeepSvdd> {
        config.validate()?;
        let net = nn::Fitted::for_config(&config, WEIGHTS, build_net);
        Ok(DeepSvdd {
            config,
            net,
            state: None,
        })
    }
}

/// The untrained encoder for `n_metrics` metrics: window · metrics → hidden → representation.
fn build_net(c: &DeepSvddConfig, n_metrics: usize, device: &Device) -> SvddNet {
    let mut sizes = vec![c.window * n_metrics];
    sizes.extend(&c.hidden);
    sizes.push(c.representation);
    SvddNet {
        encoder: Mlp::without_bias(&sizes, device),
    }
}

/// The mean representation of the training windows of `input`, with components near zero
/// pushed to ±`eps`.
fn centre_of(encoder: &DenseStack, input: &MtsInput, w: usize, eps: f32) -> Vec<f32> {
    let n = input.n_full_windows(w);
    let k = encoder.outputs();
    let sums = par_rows(n.div_ceil(CHUNK_ROWS), k, 1, |chunks, out| {
        let first = chunks.start * CHUNK_ROWS;
        let rows = CHUNK_ROWS.min(n - first);
        let (mut x, mut phi) = (Vec::new(), Vec::new());
        let starts: Vec<usize> = (first..first + rows).collect();
        input.gather_windows(w, &starts, &mut x);
        encoder.forward(&x, rows, Activation::Linear, &mut phi);
        for row in phi.chunks_exact(k) {
            out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
        }
    });
    let mut centre = vec![0.0f32; k];
    for part in sums.chunks_exact(k) {
        centre.iter_mut().zip(part).for_each(|(c, s)| *c += s);
    }
    for c in &mut centre {
        *c /= n as f32;
        if c.abs() < eps {
            *c = if *c < 0.0 { -eps } else { eps };
        }
    }
    centre
}

impl Detector for DeepSvdd {
    crate::config::config_methods!(window);

    fn layer_groups(&self) -> Vec<LayerGroup> {
        // A dense model transfers its input-side layers; the last layer places the
        // representation around this entity's centre.
        let last = self.config.hidden.len();
        (0..=last)
            .map(|i| {
                let role = if i < last {
                    LayerRole::Generic
                } else {
                    LayerRole::TaskSpecific
                };
                LayerGroup::new(&format!("encoder.layers.{i}"), role)
            })
            .collect()
    }

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = self.config.clone();
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let (device, net) = self.net.start_fit(m, options);
        // The centre comes from the starting network and stays fixed (the paper's rule); a
        // fine-tuning run keeps the centre it was trained towards.
        let centre = match (&self.state, options.warm_start) {
            (Some(state), true) if state.centre.len() == c.representation => state.centre.clone(),
            _ => centre_of(
                &DenseStack::from_mlp(&net.valid().encoder),
                input,
                w,
                c.centre_epsilon as f32,
            ),
        };
        let centre_tensor =
            Tensor::<1>::from_data(TensorData::new(centre.clone(), [c.representation]), &device)
                .unsqueeze::<2>();
        let mut optimiser = nn::adam()
            .with_weight_decay(Some(WeightDecayConfig::new(c.weight_decay as f32)))
            .init();
        let epochs = options.epochs.unwrap_or(c.epochs);
        let mut windows = nn::TrainingWindows::all(input, w);
        let (net, last_loss) =
            nn::Epochs::new("deep-svdd", &windows, c.batch_size, epochs, options).run(
                net,
                |net, idx, _| {
                    let x = windows.tensor2(idx, &device);
                    let phi = net.encoder.forward(x, Activation::Linear);
                    let loss = (phi - centre_tensor.clone()).square().sum_dim(1).mean();
                    nn::descend(&mut optimiser, c.learning_rate, net, loss)
                },
            )?;
        self.net.keep_trained(&net, m, options);
        self.state = Some(SvddState {
            centre,
            metric_means: input.metric_means(),
        });
        Ok(FitSummary::trained(epochs, last_loss, windows.len()))
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let (m, w) = (input.n_metrics, self.config.window);
        let net = self.net.get(m)?;
        let state = crate::error::fitted(&self.state, self.kind())?;
        let encoder = DenseStack::from_mlp(&net.encoder);
        let contributions = par_rows(input.len(), m, CHUNK_ROWS, |rows, out| {
            let mut x = Vec::new();
            windows_ending_at(input.values, m, w, rows.clone(), &mut x);
            score_chunk(&encoder, state, &x, rows.len(), m, out);
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    fn save_weights(&self) -> Result<WeightFiles> {
        let state = crate::error::fitted(&self.state, self.kind())?;
        let mut files = WeightFiles::new();
        self.net.save(&mut files)?;
        put_json(&mut files, STATE, state)?;
        Ok(files)
    }

    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let state: SvddState = get_json(files, STATE)?;
        if state.centre.len() != self.config.representation || state.metric_means.len() != n_metrics
        {
            return Err(ModelError::Weights(format!(
                "{STATE} holds a centre of {} and {} metric means, but the model has a \
                     representation of {} over {n_metrics} metrics; retrain the model",
                state.centre.len(),
                state.metric_means.len(),
                self.config.representation
            )));
        }
        self.net.load(files, n_metrics)?;
        self.state = Some(state);
        Ok(())
    }

    crate::nn::fitted_network!();
}

/// Scores `rows` windows `x` (`rows x window·m`) into `out` (`rows x m` contributions): the
/// forward pass keeps every layer's activations, and a backward pass through the same layers
/// gives ∂score/∂x for the gradient x deviation shares.
fn score_chunk(
    encoder: &DenseStack,
    state: &SvddState,
    x: &[f32],
    rows: usize,
    m: usize,
    out: &mut [f32],
) {
    let layers = encoder.layers();
    let d = x.len() / rows;
    // Forward: activations[i] is the input of layer i; the last entry is φ.
    let mut activations: Vec<Vec<f32>> = Vec::with_capacity(layers.len() + 1);
    activations.push(x.to_vec());
    for (i, layer) in layers.iter().enumerate() {
        let act = if i + 1 == layers.len() {
            Activation::Linear
        } else {
            Activation::Relu
        };
        let mut next = Vec::new();
        layer.forward(&activations[i], rows, act, &mut next);
        activations.push(next);
    }
    // ∂score/∂φ = 2(φ − c), then back through the layers (ReLU passes where its output > 0).
    let k = state.centre.len();
    let phi = &activations[layers.len()];
    let mut totals = vec![0.0f32; rows];
    let mut grad: Vec<f32> = phi
        .chunks_exact(k)
        .zip(&mut totals)
        .flat_map(|(row, total)| {
            *total = row
                .iter()
                .zip(&state.centre)
                .map(|(p, c)| (p - c) * (p - c))
                .sum();
            row.iter().zip(&state.centre).map(|(p, c)| 2.0 * (p - c))
        })
        .collect();
    let mut below = Vec::new();
    for i in (0..layers.len()).rev() {
        layers[i].input_gradient(&grad, rows, &mut below);
        if i > 0 {
            for (g, a) in below.iter_mut().zip(&activations[i]) {
                if *a <= 0.0 {
                    *g = 0.0;
                }
            }
        }
        std::mem::swap(&mut grad, &mut below);
    }
    // Shares of each metric, summed over the window's steps.
    for r in 0..rows {
        let share = &mut out[r * m..(r + 1) * m];
        share.fill(0.0);
        let (g, v) = (&grad[r * d..(r + 1) * d], &x[r * d..(r + 1) * d]);
        for (step_g, step_v) in g.chunks_exact(m).zip(v.chunks_exact(m)) {
            for c in 0..m {
                share[c] += (step_g[c] * (step_v[c] - state.metric_means[c])).abs();
            }
        }
        share_out(totals[r], share);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(t: usize, m: usize) -> Vec<f32> {
        (0..t * m)
            .map(|i| ((i as f32) * 0.13).sin() * 0.4 + 0.5)
            .collect()
    }

    #[test]
    fn kernel_scores_and_input_gradients_match_burn() {
        let m = 3;
        let values = wave(300, m);
        let input = MtsInput::new(&values, m);
        let mut det = DeepSvdd::new(DeepSvddConfig {
            epochs: 2,
            hidden: vec![16, 8],
            representation: 4,
            ..DeepSvddConfig::default()
        })
        .unwrap();
        det.fit(&input, &FitOptions::default()).unwrap();
        let state = det.state.clone().unwrap();
        let w = det.config.window;
        let (rows, d) = (input.len(), w * m);
        let mut x = Vec::new();
        windows_ending_at(input.values, m, w, 0..rows, &mut x);

        // burn: the score and its gradient with respect to the window.
        let device = nn::device().autodiff();
        let net = det.net.get(m).unwrap().clone().fork(&device);
        let xt = nn::tensor2(x.clone(), rows, d, &device).require_grad();
        let centre = Tensor::<1>::from_data(TensorData::new(state.centre.clone(), [4]), &device);
        let score = (net.encoder.forward(xt.clone(), Activation::Linear) - centre.unsqueeze())
            .square()
            .sum_dim(1);
        let grads = score.clone().sum().backward();
        let want_scores = nn::to_vec(score);
        let want_grad = nn::to_vec(xt.grad(&grads).unwrap());

        let got = det.score(&input).unwrap();
        for (g, w) in got.total.iter().zip(&want_scores) {
            assert!(
                (*g as f32 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{g} vs {w}"
            );
        }
        // The shares are built from ∂score/∂x: recompute them from burn's gradient.
        for (r, score) in want_scores.iter().enumerate() {
            let mut share = vec![0.0f32; m];
            for t in 0..w {
                for (c, s) in share.iter_mut().enumerate() {
                    let i = r * d + t * m + c;
                    *s += (want_grad[i] * (x[i] - state.metric_means[c])).abs();
                }
            }
            let sum: f32 = share.iter().sum();
            for (c, s) in share.iter().enumerate() {
                let want = s / sum * score;
                let got = got.per_metric[r * m + c];
                assert!(
                    (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
                    "row {r} metric {c}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_centre_keeps_clear_of_zero() {
        let encoder = DenseStack::from_mlp(&Mlp::without_bias(&[4, 3], &nn::device()));
        let zeros = vec![0.0f32; 40];
        let centre = centre_of(&encoder, &MtsInput::new(&zeros, 4), 1, 0.1);
        assert_eq!(centre, vec![0.1; 3]);
    }
}
