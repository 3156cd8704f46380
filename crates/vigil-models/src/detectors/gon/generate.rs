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
use crate::nn::simd::wide_simd;
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

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// Adam's bias corrections at one iteration, folded into the learning rate.
struct AdamStep {
    lr_over_c1: f32,
    inv_c2: f32,
}

wide_simd!(
    /// One Adam step on one window's values `z` (gradient `g`, moments `m`, `v`), clamped to
    /// `range`; raises `largest_move` to the largest change of a value.
    fn adam_row = adam_row_body(
        z: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        range: (&[f32], &[f32]),
        step: &AdamStep,
        largest_move: &mut f32,
    )
);

/// The loop of [`adam_row`], written in lanes of 8 so that it vectorises: it is most of a
/// search's time (the products through D are small), and the scalar form with `clamp`'s check
/// and a running `max` did not.
#[inline(always)]
fn adam_row_body(
    z: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    (low, high): (&[f32], &[f32]),
    step: &AdamStep,
    largest_move: &mut f32,
) {
    const LANES: usize = 8;
    // Comparisons instead of f32::max/min/clamp: those carry NaN rules (and clamp a check)
    // that keep the loop scalar.
    #[inline(always)]
    fn one(
        z: &mut f32,
        g: f32,
        m: &mut f32,
        v: &mut f32,
        lo: f32,
        hi: f32,
        step: &AdamStep,
    ) -> f32 {
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * g * g;
        let mut moved = *z - step.lr_over_c1 * *m / ((*v * step.inv_c2).sqrt() + EPS);
        moved = if moved < lo { lo } else { moved };
        moved = if moved > hi { hi } else { moved };
        let change = (moved - *z).abs();
        *z = moved;
        change
    }
    let n = z.len();
    let (g, m, v, low, high) = (&g[..n], &mut m[..n], &mut v[..n], &low[..n], &high[..n]);
    let mut lanes = [0.0f32; LANES];
    let chunks = z
        .chunks_exact_mut(LANES)
        .zip(g.chunks_exact(LANES))
        .zip(m.chunks_exact_mut(LANES))
        .zip(v.chunks_exact_mut(LANES))
        .zip(low.chunks_exact(LANES).zip(high.chunks_exact(LANES)));
    for ((((zc, gc), mc), vc), (lc, hc)) in chunks {
        for l in 0..LANES {
            let change = one(
                &mut zc[l], gc[l], &mut mc[l], &mut vc[l], lc[l], hc[l], step,
            );
            lanes[l] = if change > lanes[l] { change } else { lanes[l] };
        }
    }
    let full = n - n % LANES;
    for i in full..n {
        let change = one(&mut z[i], g[i], &mut m[i], &mut v[i], low[i], high[i], step);
        lanes[0] = if change > lanes[0] { change } else { lanes[0] };
    }
    *largest_move = lanes.iter().fold(*largest_move, |a, &b| a.max(b));
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
    let (mut m, mut v) = (vec![0.0f32; z.len()], vec![0.0f32; z.len()]);
    let mut quiet = vec![0usize; rows];
    let mut previous_loss = vec![10.0f32; rows]; // the authors' starting value
    let mut iterations = vec![0usize; rows];
    let mut pass = Pass { pre: Vec::new() };
    // The windows still searching. Stopped ones leave the products through D: each window's
    // path is its own, so this changes no result, only the work (most windows stop long before
    // the slowest of their batch).
    let mut live: Vec<usize> = (0..rows).collect();
    let mut gathered = Vec::new();
    for k in 0..search.max_iterations {
        if live.is_empty() {
            break;
        }
        let n = live.len();
        let x: &[f32] = if n == rows {
            &*z
        } else {
            gathered.clear();
            for &r in &live {
                gathered.extend_from_slice(&z[r * dim..(r + 1) * dim]);
            }
            &gathered
        };
        let logits = d.forward(x, n, &mut pass);
        // ∂CE/∂a = sigmoid(a) − y.
        let d_logit: Vec<f32> = logits
            .iter()
            .map(|a| 1.0 / (1.0 + exp_f32(-a)) - search.target)
            .collect();
        let grad = d.input_gradient(&d_logit, n, &pass);
        // PyTorch's CosineAnnealingLR in closed form (η_min = 0), stepped after each update.
        let phase = std::f32::consts::PI * k as f32 / search.cycle as f32;
        let lr = search.learning_rate * 0.5 * (1.0 + phase.cos());
        let t = (k + 1) as i32;
        let step = AdamStep {
            lr_over_c1: lr / (1.0 - BETA1.powi(t)),
            inv_c2: 1.0 / (1.0 - BETA2.powi(t)),
        };
        let mut still_searching = Vec::with_capacity(n);
        for (j, &r) in live.iter().enumerate() {
            let span = r * dim..(r + 1) * dim;
            let mut largest_move = 0.0f32;
            adam_row(
                &mut z[span.clone()],
                &grad[j * dim..(j + 1) * dim],
                &mut m[span.clone()],
                &mut v[span],
                (low, high),
                &step,
                &mut largest_move,
            );
            let loss = cross_entropy(logits[j], search.target);
            let fell = previous_loss[r] - loss;
            let still = largest_move < search.tolerance || (fell > 0.0 && fell < search.tolerance);
            quiet[r] = if still { quiet[r] + 1 } else { 0 };
            previous_loss[r] = loss;
            iterations[r] = k + 1;
            if quiet[r] <= search.patience {
                still_searching.push(r);
            }
        }
        live = still_searching;
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
            layers: crate::nn::infer::DenseStack::from_mlp(&mlp).into_layers(),
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
    fn each_window_searches_as_if_alone() {
        // Stopped windows leave the batch's products; the others must not notice.
        let device = crate::nn::device();
        device.seed(7);
        let mlp = Mlp::new(&[6, 8, 8, 1], &device);
        let mut d = Discriminator {
            layers: crate::nn::infer::DenseStack::from_mlp(&mlp).into_layers(),
            slope: 0.01,
        };
        // Steep enough that windows near D's boundary keep moving while saturated ones stop.
        d.layers = d
            .layers
            .into_iter()
            .map(|layer| layer.scaled(2.0))
            .collect();
        let rows = 16;
        let start: Vec<f32> = (0..rows * 6)
            .map(|i| ((i as f32) * 0.61).sin() * 0.5 + 0.5)
            .collect();
        let (low, high) = (vec![0.0f32; 6], vec![1.0f32; 6]);
        let search = Search {
            learning_rate: 0.01,
            cycle: 10,
            max_iterations: 100,
            patience: 10,
            tolerance: 1e-3,
            target: 0.9,
        };
        let mut batch = start.clone();
        let iterations = optimise(&d, &mut batch, rows, &low, &high, &search);
        assert!(
            iterations.iter().min() < iterations.iter().max(),
            "every window stopped together ({iterations:?}): the test needs some to stop early"
        );
        for r in 0..rows {
            let mut alone = start[r * 6..(r + 1) * 6].to_vec();
            let its = optimise(&d, &mut alone, 1, &low, &high, &search);
            assert_eq!(its[0], iterations[r], "window {r}'s iterations");
            for (a, b) in alone.iter().zip(&batch[r * 6..(r + 1) * 6]) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "window {r}: {a} alone, {b} in the batch"
                );
            }
        }
    }

    #[test]
    fn the_input_gradient_matches_finite_differences() {
        let device = crate::nn::device();
        device.seed(5);
        let mlp = Mlp::new(&[4, 5, 3, 1], &device);
        let d = Discriminator {
            layers: crate::nn::infer::DenseStack::from_mlp(&mlp).into_layers(),
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
