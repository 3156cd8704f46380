//! GON's generation step: Adam on the *input* of the discriminator D, many windows at once.
//!
//! Each window z climbs log D(z) — in the authors' form, descends the cross-entropy of D(z)
//! against the "real" label — with Adam (lr 0.01, cosine annealing with period 2·`cycle`),
//! clamped to the data range after every step, and stops on its own when neither it nor its
//! loss has moved by more than `tolerance` for more than `patience` iterations, or after
//! `max_iterations`. The authors' code runs this one window at a time through PyTorch's
//! autograd; here D is a few small dense layers, so the forward pass, the input gradient and
//! the Adam update run on slices for a whole chunk of windows, and chunks run on all cores.

use crate::nn::fast_math::exp_f32;
use crate::nn::infer::Dense;
use crate::nn::Activation;

/// How the input-space optimisation runs.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    /// Adam's learning rate on the input.
    pub learning_rate: f32,
    /// Half-period of the cosine annealing of that rate, in iterations.
    pub cycle: usize,
    /// Iterations at most.
    pub max_iterations: usize,
    /// Consecutive quiet iterations after which a window stops.
    pub patience: usize,
    /// What counts as quiet: every value moved less than this, or the loss fell by less.
    pub tolerance: f32,
    /// The label the windows are pushed towards ("real", 0.9 with label smoothing).
    pub target: f32,
}

/// The discriminator's dense layers (LeakyReLU between them, sigmoid after the last, which has
/// one output), copied from the trained network.
#[derive(Debug, Clone)]
pub struct Discriminator {
    pub layers: Vec<Dense>,
    pub slope: f32,
}

/// Per-row forward state kept for the input gradient.
struct Pass {
    /// Pre-activations of every layer, input side first.
    pre: Vec<Vec<f32>>,
}

impl Discriminator {
    /// Logits (before the sigmoid) of `rows` windows; keeps the pre-activations in `pass`.
    fn forward(&self, x: &[f32], rows: usize, pass: &mut Pass) -> Vec<f32> {
        pass.pre.clear();
        let mut input = x.to_vec();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut out = Vec::new();
            layer.forward(&input, rows, Activation::Linear, &mut out);
            pass.pre.push(out.clone());
            if i + 1 < self.layers.len() {
                for v in &mut out {
                    if *v < 0.0 {
                        *v *= self.slope;
                    }
                }
            }
            input = out;
        }
        input
    }

    /// ∂loss/∂x from ∂loss/∂logit per row, back through the layers of the last `forward`.
    fn input_gradient(&self, d_logit: &[f32], rows: usize, pass: &Pass) -> Vec<f32> {
        let mut grad = d_logit.to_vec();
        let mut below = Vec::new();
        for i in (0..self.layers.len()).rev() {
            self.layers[i].input_gradient(&grad, rows, &mut below);
            if i > 0 {
                // Through the LeakyReLU after layer i − 1.
                for (g, pre) in below.iter_mut().zip(&pass.pre[i - 1]) {
                    if *pre < 0.0 {
                        *g *= self.slope;
                    }
                }
            }
            std::mem::swap(&mut grad, &mut below);
        }
        grad
    }

    /// D(x) for `rows` windows.
    pub fn probabilities(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut pass = Pass { pre: Vec::new() };
        self.forward(x, rows, &mut pass)
            .iter()
            .map(|a| 1.0 / (1.0 + exp_f32(-a)))
            .collect()
    }
}

/// Cross-entropy of sigmoid(a) against label y, from the logit: softplus(a) − y·a.
fn cross_entropy(a: f32, y: f32) -> f32 {
    a.max(0.0) + (-a.abs()).exp().ln_1p() - y * a
}

/// Runs the search on `rows` windows `z` (`rows x dim`, updated in place) within `[low, high]`
/// per value of a window; returns the iterations each window ran.
pub fn optimise(
    d: &Discriminator,
    z: &mut [f32],
    rows: usize,
    low: &[f32],
    high: &[f32],
    search: &Search,
) -> Vec<usize> {
    let dim = low.len();
    debug_assert_eq!(z.len(), rows * dim);
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    const EPS: f32 = 1e-8;
    let (mut m, mut v) = (vec![0.0f32; z.len()], vec![0.0f32; z.len()]);
    let mut active = vec![true; rows];
    let mut quiet = vec![0usize; rows];
    let mut previous_loss = vec![10.0f32; rows]; // the authors' starting value
    let mut iterations = vec![0usize; rows];
    let mut pass = Pass { pre: Vec::new() };
    for k in 0..search.max_iterations {
        if !active.iter().any(|&a| a) {
            break;
        }
        let logits = d.forward(z, rows, &mut pass);
        // ∂CE/∂a = sigmoid(a) − y; rows that have stopped contribute nothing.
        let d_logit: Vec<f32> = logits
            .iter()
            .zip(&active)
            .map(|(a, &on)| {
                if on {
                    1.0 / (1.0 + exp_f32(-a)) - search.target
                } else {
                    0.0
                }
            })
            .collect();
        let grad = d.input_gradient(&d_logit, rows, &pass);
        // PyTorch's CosineAnnealingLR in closed form (η_min = 0), stepped after each update.
        let phase = std::f32::consts::PI * k as f32 / search.cycle as f32;
        let lr = search.learning_rate * 0.5 * (1.0 + phase.cos());
        let t = (k + 1) as i32;
        let (c1, c2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        for r in 0..rows {
            if !active[r] {
                continue;
            }
            let span = r * dim..(r + 1) * dim;
            let mut largest_move = 0.0f32;
            for ((((zi, gi), mi), vi), (lo, hi)) in z[span.clone()]
                .iter_mut()
                .zip(&grad[span.clone()])
                .zip(&mut m[span.clone()])
                .zip(&mut v[span.clone()])
                .zip(low.iter().zip(high))
            {
                *mi = BETA1 * *mi + (1.0 - BETA1) * gi;
                *vi = BETA2 * *vi + (1.0 - BETA2) * gi * gi;
                let step = lr * (*mi / c1) / ((*vi / c2).sqrt() + EPS);
                let moved = (*zi - step).clamp(*lo, *hi);
                largest_move = largest_move.max((moved - *zi).abs());
                *zi = moved;
            }
            let loss = cross_entropy(logits[r], search.target);
            let fell = previous_loss[r] - loss;
            let still = largest_move < search.tolerance || (fell > 0.0 && fell < search.tolerance);
            quiet[r] = if still { quiet[r] + 1 } else { 0 };
            previous_loss[r] = loss;
            iterations[r] = k + 1;
            if quiet[r] > search.patience {
                active[r] = false;
            }
        }
    }
    iterations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Mlp;

    #[test]
    fn the_search_raises_d_and_stays_in_range() {
        let device = crate::nn::device();
        device.seed(11);
        let mlp = Mlp::new(&[6, 8, 8, 1], &device);
        let d = Discriminator {
            layers: crate::nn::infer::DenseStack::from_mlp(&mlp).layers,
            slope: 0.01,
        };
        let rows = 20;
        let mut z: Vec<f32> = (0..rows * 6)
            .map(|i| ((i as f32) * 0.37).sin() * 0.5 + 0.5)
            .collect();
        let (low, high) = (vec![0.0f32; 6], vec![1.0f32; 6]);
        let before = d.probabilities(&z, rows);
        let search = Search {
            learning_rate: 0.01,
            cycle: 10,
            max_iterations: 100,
            patience: 10,
            tolerance: 1e-4,
            target: 0.9,
        };
        optimise(&d, &mut z, rows, &low, &high, &search);
        let after = d.probabilities(&z, rows);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!(
            mean(&after) > mean(&before),
            "D: {} -> {}",
            mean(&before),
            mean(&after)
        );
        assert!(
            z.iter().all(|v| (0.0..=1.0).contains(v)),
            "left the data range"
        );
    }

    #[test]
    fn the_input_gradient_matches_finite_differences() {
        let device = crate::nn::device();
        device.seed(5);
        let mlp = Mlp::new(&[4, 5, 3, 1], &device);
        let d = Discriminator {
            layers: crate::nn::infer::DenseStack::from_mlp(&mlp).layers,
            slope: 0.2,
        };
        let x = vec![0.3f32, -0.7, 0.9, 0.1];
        let mut pass = Pass { pre: Vec::new() };
        d.forward(&x, 1, &mut pass);
        let grad = d.input_gradient(&[1.0], 1, &pass);
        let h = 1e-3f32;
        for i in 0..4 {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let f = |v: &[f32]| d.forward(v, 1, &mut Pass { pre: Vec::new() })[0];
            let numeric = (f(&up) - f(&down)) / (2.0 * h);
            assert!(
                (grad[i] - numeric).abs() < 1e-3,
                "d/dx{i}: {} vs {numeric}",
                grad[i]
            );
        }
    }
}
