//! A dense layer's forward and backward pass on plain slices: `y = act(x · W + b)` with `W`
//! stored as burn stores it, `[inputs, outputs]` row-major.
//!
//! Forward writes the bias into the output, lets gemm add the product onto it and applies the
//! activation in place: one output buffer, no broadcast or separate bias pass. Backward turns
//! the output's gradient into the pre-activation gradient from the saved output (ReLU, tanh
//! and sigmoid all have derivatives that are functions of their value), then computes only the
//! gradients that some parent needs: the data fed to a network's first layer needs none, which
//! skips the largest product of a step.

use crate::gemm::{product, Strided};
use crate::infer::activate;
use crate::Activation;
use std::borrow::Cow;

/// Products below this many multiply-adds run on the calling thread (a layer's three products
/// all have `rows x inputs x outputs` of them). Training calls them
/// hundreds of times a second, so a split must win more than the hand-off to another core
/// costs: on a 2-core AVX-512 Xeon, the dense VAE's epoch took 0.39 s with its products
/// (batch 256 x 380 x 100 and smaller) split over both cores and 0.32 s with each on one,
/// against PyTorch's 0.43 s (`bench/speed.sh 10 vae`). Inference splits rows across cores
/// instead (`nn::infer::par_rows`); training keeps its cores for the larger products.
const PARALLEL_WORK: usize = 1 << 24;

/// Whether a product of layer `d` is worth splitting across cores.
fn split(d: Dims) -> bool {
    d.rows * d.inputs * d.outputs >= PARALLEL_WORK
}

/// A dense layer applied to `rows` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub rows: usize,
    pub inputs: usize,
    pub outputs: usize,
}

/// Which of the inputs' gradients the backward pass computes.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub x: bool,
    pub weight: bool,
    pub bias: bool,
}

/// The gradients [`backward`] computed; `None` where not [`Wanted`].
#[derive(Debug, Default)]
pub struct Grads {
    pub x: Option<Vec<f32>>,
    pub weight: Option<Vec<f32>>,
    pub bias: Option<Vec<f32>>,
}

/// `act(x · weight + bias)`, `rows x outputs` row-major.
pub fn forward(
    d: Dims,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    check(d, x, weight, bias);
    let mut y = match bias {
        Some(b) => b.repeat(d.rows),
        None => vec![0.0; d.rows * d.outputs],
    };
    product(
        d.rows,
        d.outputs,
        d.inputs,
        &mut y,
        Strided::rows(0, d.outputs),
        x,
        Strided::rows(0, d.inputs),
        weight,
        Strided::rows(0, d.outputs),
        true,
        split(d),
    );
    activate(&mut y, act);
    y
}

/// The gradient of the pre-activation `x · W + b` from the output `y` and its gradient: the
/// output's own gradient, borrowed, for a linear layer.
fn pre_activation_grad<'a>(y: &[f32], grad_y: &'a [f32], act: Activation) -> Cow<'a, [f32]> {
    fn zip(y: &[f32], grad_y: &[f32], f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
        y.iter().zip(grad_y).map(|(&y, &g)| f(y, g)).collect()
    }
    Cow::Owned(match act {
        Activation::Linear => return Cow::Borrowed(grad_y),
        Activation::Relu => zip(y, grad_y, |y, g| if y > 0.0 { g } else { 0.0 }),
        Activation::Tanh => zip(y, grad_y, |y, g| g * (1.0 - y * y)),
        Activation::Sigmoid => zip(y, grad_y, |y, g| g * y * (1.0 - y)),
    })
}

/// Gradients of `y = act(x · weight + bias)` with respect to what `wanted` asks for, given the
/// saved output `y` and its gradient `grad_y`.
pub fn backward(
    d: Dims,
    x: &[f32],
    weight: &[f32],
    y: &[f32],
    grad_y: &[f32],
    act: Activation,
    wanted: Wanted,
) -> Grads {
    assert_eq!(y.len(), d.rows * d.outputs, "dense: saved output size");
    assert_eq!(grad_y.len(), y.len(), "dense: output gradient size");
    let g = pre_activation_grad(y, grad_y, act);
    let mut grads = Grads::default();
    if wanted.weight {
        // dW = xᵀ · g, reading x transposed in place.
        let mut dw = vec![0.0; d.inputs * d.outputs];
        product(
            d.inputs,
            d.outputs,
            d.rows,
            &mut dw,
            Strided::rows(0, d.outputs),
            x,
            Strided::transposed(d.inputs),
            &g,
            Strided::rows(0, d.outputs),
            false,
            split(d),
        );
        grads.weight = Some(dw);
    }
    if wanted.bias {
        let mut db = vec![0.0; d.outputs];
        for row in g.chunks_exact(d.outputs) {
            db.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
        grads.bias = Some(db);
    }
    if wanted.x {
        // dx = g · Wᵀ, reading W transposed in place.
        let mut dx = vec![0.0; d.rows * d.inputs];
        product(
            d.rows,
            d.inputs,
            d.outputs,
            &mut dx,
            Strided::rows(0, d.inputs),
            &g,
            Strided::rows(0, d.outputs),
            weight,
            Strided::transposed(d.outputs),
            false,
            split(d),
        );
        grads.x = Some(dx);
    }
    grads
}

fn check(d: Dims, x: &[f32], weight: &[f32], bias: Option<&[f32]>) {
    assert_eq!(
        x.len(),
        d.rows * d.inputs,
        "dense: input is not rows x inputs"
    );
    assert_eq!(
        weight.len(),
        d.inputs * d.outputs,
        "dense: weight is not inputs x outputs"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), d.outputs, "dense: bias is not one per output");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// Σ y ⊙ r for a fixed `r`: a scalar whose gradient with respect to `y` is `r`.
    fn objective(d: Dims, x: &[f32], w: &[f32], b: &[f32], act: Activation, r: &[f32]) -> f64 {
        let y = forward(d, x, w, Some(b), act);
        y.iter()
            .zip(r)
            .map(|(y, r)| (*y as f64) * (*r as f64))
            .sum()
    }

    #[test]
    fn gradients_match_finite_differences_for_every_activation() {
        let d = Dims {
            rows: 5,
            inputs: 4,
            outputs: 3,
        };
        let (x, w, b) = (values(20, 1), values(12, 2), values(3, 3));
        let r = values(15, 4);
        for act in [
            Activation::Linear,
            Activation::Relu,
            Activation::Tanh,
            Activation::Sigmoid,
        ] {
            let y = forward(d, &x, &w, Some(&b), act);
            let all = Wanted {
                x: true,
                weight: true,
                bias: true,
            };
            let g = backward(d, &x, &w, &y, &r, act, all);
            let h = 1e-3;
            let numeric = |which: usize, i: usize| {
                let mut p = [x.clone(), w.clone(), b.clone()];
                p[which][i] += h;
                let up = objective(d, &p[0], &p[1], &p[2], act, &r);
                p[which][i] -= 2.0 * h;
                let down = objective(d, &p[0], &p[1], &p[2], act, &r);
                ((up - down) / (2.0 * h as f64)) as f32
            };
            let analytic = [g.x.unwrap(), g.weight.unwrap(), g.bias.unwrap()];
            for (which, grad) in analytic.iter().enumerate() {
                for (i, a) in grad.iter().enumerate() {
                    let n = numeric(which, i);
                    assert!(
                        (a - n).abs() < 2e-3,
                        "{act:?}, input {which}, element {i}: analytic {a}, numeric {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_wanted_gradients_are_computed() {
        let d = Dims {
            rows: 2,
            inputs: 3,
            outputs: 2,
        };
        let (x, w) = (values(6, 5), values(6, 6));
        let y = forward(d, &x, &w, None, Activation::Relu);
        let wanted = Wanted {
            x: false,
            weight: true,
            bias: false,
        };
        let g = backward(d, &x, &w, &y, &[1.0; 4], Activation::Relu, wanted);
        assert!(g.x.is_none() && g.bias.is_none());
        assert_eq!(g.weight.map(|w| w.len()), Some(6));
    }
}
