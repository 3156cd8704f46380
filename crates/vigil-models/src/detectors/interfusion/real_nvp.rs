//! RealNVP (Dinh et al., ICLR 2017) as InterFusion's posterior flow on the per-step latent z1:
//! each level is an invertible linear map followed by an affine coupling layer.
//!
//! - Invertible linear map: z ↦ W z with W = P · L · U, P the fixed reversal of the latent's
//!   features, L unit lower-triangular, U upper-triangular with diagonal e^s, so ln|det W| = Σ s
//!   (Glow's LU form; the authors' `InvertibleDense` in its `strict_invertible` setting). At
//!   initialisation W = P: the features are reversed between couplings, as in the authors'
//!   non-invertible variant.
//! - Coupling (tfsnippet's `CouplingLayer`, sigmoid scale): split z into z_a (the first ⌊l/2⌋
//!   features) and z_b; a dense ReLU layer of `COUPLING_HIDDEN` units reads z_a and gives a shift
//!   and a pre-scale for z_b; z_b ↦ (z_b + shift) · sigmoid(pre-scale + 2). The output layer
//!   starts at zero, so an untrained coupling only scales z_b by sigmoid(2).

use super::coupling::affine_coupling;
use crate::nn;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

/// Hidden units of each coupling's dense layer (the authors' `dense_coupling_n_hidden_units`).
pub const COUPLING_HIDDEN: usize = 100;

/// One coupling layer's networks.
#[derive(Module, Debug)]
pub struct Coupling {
    hidden: Linear,
    /// To [shift | pre-scale] of the second part.
    shift_and_scale: Linear,
}

/// A RealNVP flow of `levels` levels over latents of size `latent`.
#[derive(Module, Debug)]
pub struct RealNvp {
    /// Strictly-lower entries of every level's L, `levels × latent × latent` (masked on use).
    lower: Param<Tensor<3>>,
    /// Strictly-upper entries of every level's U, `levels × latent × latent` (masked on use).
    upper: Param<Tensor<3>>,
    /// ln of U's diagonal, `levels × latent`.
    log_diagonal: Param<Tensor<2>>,
    couplings: Vec<Coupling>,
}

impl RealNvp {
    /// A flow of `levels` levels; `levels = 0` is the identity. The coupling needs two features
    /// at least (the detector's config checks that).
    pub fn new(levels: usize, latent: usize, device: &Device) -> RealNvp {
        let first = latent / 2;
        RealNvp {
            lower: Param::from_tensor(Tensor::zeros([levels, latent, latent], device)),
            upper: Param::from_tensor(Tensor::zeros([levels, latent, latent], device)),
            log_diagonal: Param::from_tensor(Tensor::zeros([levels, latent], device)),
            couplings: (0..levels)
                .map(|_| Coupling {
                    hidden: LinearConfig::new(first.max(1), COUPLING_HIDDEN).init(device),
                    shift_and_scale: LinearConfig::new(COUPLING_HIDDEN, 2 * (latent - first))
                        .with_initializer(Initializer::Zeros)
                        .init(device),
                })
                .collect(),
        }
    }

    /// Every level's Wᵀ (`latent × latent`), to multiply row vectors: z Wᵀ = (W z)ᵀ.
    fn transposed_maps(&self) -> Vec<Tensor<2>> {
        let [levels, l, _] = self.lower.val().dims();
        let device = self.lower.val().device();
        let mask = |keep: &dyn Fn(usize, usize) -> bool| {
            let values = (0..l * l)
                .map(|k| if keep(k / l, k % l) { 1.0 } else { 0.0 })
                .collect();
            nn::tensor2(values, l, l, &device)
        };
        let (below, above) = (mask(&|i, j| i > j), mask(&|i, j| i < j));
        let identity = mask(&|i, j| i == j);
        let reversal = mask(&|i, j| i + j == l - 1);
        (0..levels)
            .map(|k| {
                let pick = |t: Tensor<3>| t.narrow(0, k, 1).reshape([l, l]);
                let lower = pick(self.lower.val()) * below.clone() + identity.clone();
                let diagonal = self.log_diagonal.val().narrow(0, k, 1).exp(); // 1 × l
                let upper = pick(self.upper.val()) * above.clone() + identity.clone() * diagonal;
                reversal.clone().matmul(lower).matmul(upper).transpose()
            })
            .collect()
    }

    /// Applies the flow to `z` (`rows × latent`): the transformed latents and each row's
    /// ln|det ∂f/∂z| summed over the levels (`rows × 1`).
    pub fn forward(&self, z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        self.forward_with(z, fused_coupling)
    }

    /// The flow with each coupling applied by `coupling` (the fused op, or — in tests — the
    /// same layer composed from burn ops).
    fn forward_with(
        &self,
        mut z: Tensor<2>,
        coupling: fn(&Coupling, Tensor<2>) -> Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let [rows, l] = z.dims();
        let mut log_det = Tensor::<2>::zeros([rows, 1], &z.device());
        if self.couplings.is_empty() {
            return (z, log_det);
        }
        // The linear maps' log-determinants do not depend on z: one sum for all levels.
        let linear_log_det = self.log_diagonal.val().sum().reshape([1, 1]);
        for (map, layer) in self.transposed_maps().into_iter().zip(&self.couplings) {
            let out = coupling(layer, z.matmul(map));
            log_det = log_det + out.clone().narrow(1, l, 1);
            z = out.narrow(1, 0, l);
        }
        (z, log_det + linear_log_det)
    }
}

/// A coupling layer by the fused op (`coupling.rs`): `[z | ln|det|]`.
fn fused_coupling(layer: &Coupling, z: Tensor<2>) -> Tensor<2> {
    let bias = |l: &Linear| l.bias.as_ref().expect("coupling layers have biases").val();
    affine_coupling(
        z,
        layer.hidden.weight.val(),
        bias(&layer.hidden),
        layer.shift_and_scale.weight.val(),
        bias(&layer.shift_and_scale),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::interfusion::coupling::SCALE_BIAS;
    use burn::tensor::activation::{relu, sigmoid, softplus};
    use burn::tensor::Distribution;

    /// The coupling layer composed from burn ops: what the fused op must equal.
    fn composed_coupling(layer: &Coupling, z: Tensor<2>) -> Tensor<2> {
        let l = z.dims()[1];
        let first = l / 2;
        let (kept, moved) = (z.clone().narrow(1, 0, first), z.narrow(1, first, l - first));
        let params = layer
            .shift_and_scale
            .forward(relu(layer.hidden.forward(kept.clone())));
        let shift = params.clone().narrow(1, 0, l - first);
        let pre_scale = params
            .narrow(1, l - first, l - first)
            .add_scalar(SCALE_BIAS as f64);
        // ln sigmoid(a) = −softplus(−a).
        let log_det = softplus(pre_scale.clone().neg(), 1.0).sum_dim(1).neg();
        Tensor::cat(vec![kept, (moved + shift) * sigmoid(pre_scale), log_det], 1)
    }

    /// Forward values and every parameter's and the input's gradient, fused against composed,
    /// on a flow whose parameters are all random (ReLU units on both sides of zero).
    #[test]
    fn the_fused_coupling_equals_the_composed_one_with_gradients() {
        let device = nn::device().autodiff();
        // One fixed draw (burn's generator is the process's, which other tests move): a ReLU
        // unit within rounding of zero takes a different branch in the two versions.
        let flow = nn::with_burn_generator(Some(11), &device, || {
            let mut flow = random_flow(3, 3, &device);
            for c in &mut flow.couplings {
                let dims = c.hidden.weight.val().dims();
                c.hidden.weight = Param::from_tensor(Tensor::random(
                    dims,
                    Distribution::Normal(0.0, 1.0),
                    &device,
                ));
            }
            nn::materialise(&flow);
            flow
        });
        let values: Vec<f32> = (0..64 * 3)
            .map(|i| ((i as f32) * 0.37).sin() * 1.5)
            .collect();
        let weights: Vec<f32> = (0..64 * 3).map(|i| 1.0 + (i % 5) as f32 * 0.2).collect();
        let run = |coupling: fn(&Coupling, Tensor<2>) -> Tensor<2>| {
            let z = nn::tensor2(values.clone(), 64, 3, &device).require_grad();
            let (out, log_det) = flow.forward_with(z.clone(), coupling);
            let loss = (out.clone() * nn::tensor2(weights.clone(), 64, 3, &device)).sum()
                + log_det.clone().mul_scalar(0.7).sum();
            let grads = loss.backward();
            let mut all = vec![nn::to_vec(out), nn::to_vec(log_det)];
            all.push(nn::to_vec(z.grad(&grads).unwrap()));
            all.push(nn::to_vec(flow.lower.val().grad(&grads).unwrap()));
            all.push(nn::to_vec(flow.log_diagonal.val().grad(&grads).unwrap()));
            for c in &flow.couplings {
                for linear in [&c.hidden, &c.shift_and_scale] {
                    all.push(nn::to_vec(linear.weight.val().grad(&grads).unwrap()));
                    let bias = linear.bias.as_ref().unwrap().val();
                    all.push(nn::to_vec(bias.grad(&grads).unwrap()));
                }
            }
            all
        };
        let (fused, composed) = (run(fused_coupling), run(composed_coupling));
        for (k, (a, b)) in fused.iter().zip(&composed).enumerate() {
            assert_eq!(a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "tensor {k}[{i}]: {x} vs {y}"
                );
            }
        }
    }

    /// A flow with every parameter random, so that no part of it is the identity.
    fn random_flow(levels: usize, latent: usize, device: &Device) -> RealNvp {
        let mut flow = RealNvp::new(levels, latent, device);
        let random =
            |dims: [usize; 3]| Tensor::random(dims, Distribution::Normal(0.0, 0.5), device);
        flow.lower = Param::from_tensor(random([levels, latent, latent]));
        flow.upper = Param::from_tensor(random([levels, latent, latent]));
        flow.log_diagonal = Param::from_tensor(Tensor::random(
            [levels, latent],
            Distribution::Normal(0.0, 0.5),
            device,
        ));
        for c in &mut flow.couplings {
            let dims = c.shift_and_scale.weight.val().dims();
            c.shift_and_scale.weight =
                Param::from_tensor(Tensor::random(dims, Distribution::Normal(0.0, 0.3), device));
        }
        flow
    }

    /// ln|det J| of the whole flow at `z` by central differences (latent 3).
    fn numeric_log_det(flow: &RealNvp, z: [f32; 3], device: &Device) -> f64 {
        let f = |p: [f32; 3]| nn::to_vec(flow.forward(nn::tensor2(p.to_vec(), 1, 3, device)).0);
        let h = 1e-3f32;
        let mut jacobian = [[0.0f64; 3]; 3];
        for j in 0..3 {
            let (mut plus, mut minus) = (z, z);
            plus[j] += h;
            minus[j] -= h;
            let (a, b) = (f(plus), f(minus));
            for i in 0..3 {
                jacobian[i][j] = (a[i] - b[i]) as f64 / (2.0 * h as f64);
            }
        }
        let m = jacobian;
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        det.abs().ln()
    }

    /// One level: its Jacobian is the coupling's (block-triangular, with y_a = z_a exactly)
    /// times W, so finite differences give its determinant free of the ReLU kinks' error, which
    /// only reaches the off-diagonal block. Levels add their log-determinants by construction.
    #[test]
    fn log_determinant_matches_finite_differences() {
        let device = nn::device();
        let flow = random_flow(1, 3, &device);
        let points = [[0.3f32, -0.7, 1.1], [1.2, 0.4, -0.2], [-2.0, 0.1, 0.5]];
        let z = nn::tensor2(points.iter().flatten().copied().collect(), 3, 3, &device);
        let log_det = nn::to_vec(flow.forward(z).1);
        for (i, p) in points.iter().enumerate() {
            let want = numeric_log_det(&flow, *p, &device);
            assert!(
                (log_det[i] as f64 - want).abs() < 1e-2,
                "point {i}: {} vs {want}",
                log_det[i]
            );
        }
    }

    #[test]
    fn an_untrained_level_reverses_and_scales_the_second_part() {
        let device = nn::device();
        let flow = RealNvp::new(1, 3, &device);
        let (z, log_det) = flow.forward(nn::tensor2(vec![1.0, 2.0, 3.0], 1, 3, &device));
        let s = 1.0 / (1.0 + (-2.0f32).exp());
        let z = nn::to_vec(z);
        for (got, want) in z.iter().zip([3.0, 2.0 * s, s]) {
            assert!((got - want).abs() < 1e-6, "{z:?}");
        }
        assert!((nn::to_vec(log_det)[0] - 2.0 * s.ln()).abs() < 1e-6);
        let (same, zero) =
            RealNvp::new(0, 3, &device).forward(nn::tensor2(vec![1.0, 2.0, 3.0], 1, 3, &device));
        assert_eq!(nn::to_vec(same), vec![1.0, 2.0, 3.0]);
        assert_eq!(nn::to_vec(zero), vec![0.0]);
    }
}
