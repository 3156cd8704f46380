//! Planar normalising flow (Rezende & Mohamed, ICML 2015), OmniAnomaly's posterior flow: each
//! layer maps a latent z ↦ z + û · tanh(wᵀz + b). The flow lets the posterior be non-Gaussian;
//! OmniAnomaly stacks 20 layers and applies them to every step's latent with shared weights.
//!
//! Invertibility needs wᵀû ≥ −1; as in the flow's paper (and tfsnippet, the authors' library)
//! u is reparameterised: û = u + (m(wᵀu) − wᵀu) · w / ‖w‖² with m(a) = −1 + softplus(a), so
//! wᵀû = m(wᵀu) > −1 and the log-determinant ln(1 + (1 − tanh²(wᵀz + b)) · wᵀû) is finite.

use crate::nn;
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::softplus;
use burn::tensor::Distribution;

/// `layers` planar layers over latents of size `latent`.
#[derive(Module, Debug)]
pub struct PlanarFlow {
    /// w of every layer, `layers × latent`.
    w: Param<Tensor<2>>,
    /// u of every layer (before the invertibility correction), `layers × latent`.
    u: Param<Tensor<2>>,
    /// b of every layer, `layers × 1`.
    b: Param<Tensor<2>>,
}

/// Standard deviation of the initial w and u: small, so that the untrained flow is close to the
/// identity and the posterior starts Gaussian.
const INIT_STD: f64 = 0.05;

impl PlanarFlow {
    /// A flow of `layers` layers; `layers = 0` is the identity.
    pub fn new(layers: usize, latent: usize, device: &Device) -> PlanarFlow {
        let random = || {
            Param::from_tensor(Tensor::random(
                [layers, latent],
                Distribution::Normal(0.0, INIT_STD),
                device,
            ))
        };
        PlanarFlow {
            w: random(),
            u: random(),
            b: Param::from_tensor(Tensor::zeros([layers, 1], device)),
        }
    }

    fn layers(&self) -> usize {
        self.w.val().dims()[0]
    }

    /// û of every layer and wᵀû (= m(wᵀu)), `layers × latent` and `layers × 1`.
    fn corrected_u(&self) -> (Tensor<2>, Tensor<2>) {
        let (w, u) = (self.w.val(), self.u.val());
        let wu = (w.clone() * u.clone()).sum_dim(1);
        let m = softplus(wu.clone(), 1.0).sub_scalar(1.0);
        let norm2 = w.clone().square().sum_dim(1);
        let u_hat = u + w * ((m.clone() - wu) / norm2);
        (u_hat, m)
    }

    /// Applies the flow to `z` (`rows × latent`): the transformed latents and, per row, the sum
    /// of the layers' ln|det ∂f/∂z| (`rows × 1`).
    pub fn forward(&self, mut z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let [rows, _] = z.dims();
        let mut log_det = Tensor::zeros([rows, 1], &z.device());
        if self.layers() == 0 {
            return (z, log_det);
        }
        let (u_hat, wu_hat) = self.corrected_u();
        let (w, b) = (self.w.val(), self.b.val());
        for k in 0..self.layers() {
            let w_k = w.clone().narrow(0, k, 1);
            let activation =
                nn::tanh(z.clone().matmul(w_k.transpose()) + b.clone().narrow(0, k, 1));
            z = z + activation.clone() * u_hat.clone().narrow(0, k, 1);
            // 1 + ψᵀû with ψ = (1 − tanh²) w: the slope factor times wᵀû.
            let slope = activation.square().neg().add_scalar(1.0);
            log_det = log_det
                + (slope * wu_hat.clone().narrow(0, k, 1))
                    .add_scalar(1.0)
                    .log();
        }
        (z, log_det)
    }

    /// The flow's weights for scoring on plain slices.
    pub fn inference_weights(&self) -> FlowWeights {
        let (u_hat, _) = self.corrected_u();
        FlowWeights {
            latent: self.w.val().dims()[1],
            w: nn::to_vec(self.w.val()),
            u_hat: nn::to_vec(u_hat),
            b: nn::to_vec(self.b.val()),
        }
    }
}

/// A trained flow, applied one latent at a time (scoring).
#[derive(Debug, Clone)]
pub struct FlowWeights {
    latent: usize,
    w: Vec<f32>,
    u_hat: Vec<f32>,
    b: Vec<f32>,
}

impl FlowWeights {
    /// Transforms every latent in `z` (rows of `latent` values) in place.
    pub fn apply(&self, z: &mut [f32]) {
        let l = self.latent;
        for row in z.chunks_exact_mut(l) {
            for (k, &b) in self.b.iter().enumerate() {
                let (w, u) = (&self.w[k * l..(k + 1) * l], &self.u_hat[k * l..(k + 1) * l]);
                let a: f32 = row.iter().zip(w).map(|(z, w)| z * w).sum::<f32>() + b;
                let h = a.tanh();
                row.iter_mut().zip(u).for_each(|(z, u)| *z += u * h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flow in f64 (from the sliced weights), so that the finite differences below measure
    /// the Jacobian rather than f32 rounding.
    fn apply_f64(weights: &FlowWeights, z: [f64; 2]) -> [f64; 2] {
        let mut z = z;
        for (k, &b) in weights.b.iter().enumerate() {
            let (w, u) = (
                &weights.w[2 * k..2 * k + 2],
                &weights.u_hat[2 * k..2 * k + 2],
            );
            let h = (z[0] * w[0] as f64 + z[1] * w[1] as f64 + b as f64).tanh();
            z = [z[0] + u[0] as f64 * h, z[1] + u[1] as f64 * h];
        }
        z
    }

    /// Central-difference Jacobian log-determinant of the whole flow at one point (latent 2).
    fn numeric_log_det(weights: &FlowWeights, z: [f32; 2]) -> f64 {
        let z = [z[0] as f64, z[1] as f64];
        let h = 1e-5;
        let column = |i: usize| {
            let (mut plus, mut minus) = (z, z);
            plus[i] += h;
            minus[i] -= h;
            let (a, b) = (apply_f64(weights, plus), apply_f64(weights, minus));
            [(a[0] - b[0]) / (2.0 * h), (a[1] - b[1]) / (2.0 * h)]
        };
        let (c0, c1) = (column(0), column(1));
        (c0[0] * c1[1] - c0[1] * c1[0]).abs().ln()
    }

    #[test]
    fn log_determinant_matches_finite_differences_and_slices_match_tensors() {
        let device = nn::device();
        // Fixed weights, steeper than the initialisation so that the layers bend the space
        // visibly. (Random ones once made a near-singular layer, whose determinant f32 cannot
        // resolve to the tolerance.)
        let param = |values: &[f32], rows: usize, cols: usize| {
            Param::from_tensor(nn::tensor2(values.to_vec(), rows, cols, &device))
        };
        let flow = PlanarFlow {
            w: param(&[1.2, -0.8, 0.5, 1.9, -1.4, 0.3, 0.7, 0.6], 4, 2),
            u: param(&[0.9, 1.1, -1.3, 0.4, 0.2, -1.7, 1.5, -0.6], 4, 2),
            b: param(&[0.1, -0.4, 0.3, 0.0], 4, 1),
        };
        let points = [[0.3f32, -0.7], [1.2, 0.4], [-2.0, 0.1]];
        let z = nn::tensor2(points.iter().flatten().copied().collect(), 3, 2, &device);
        let (moved, log_det) = flow.forward(z);
        let (moved, log_det) = (nn::to_vec(moved), nn::to_vec(log_det));
        let weights = flow.inference_weights();
        for (i, p) in points.iter().enumerate() {
            let want = numeric_log_det(&weights, *p);
            assert!(
                (log_det[i] as f64 - want).abs() < 1e-3,
                "point {i}: {} vs {want}",
                log_det[i]
            );
            let mut sliced = p.to_vec();
            weights.apply(&mut sliced);
            for (a, b) in sliced.iter().zip(&moved[i * 2..i * 2 + 2]) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn no_layers_is_the_identity() {
        let device = nn::device();
        let flow = PlanarFlow::new(0, 3, &device);
        let z = nn::tensor2(vec![0.5, -1.0, 2.0], 1, 3, &device);
        let (moved, log_det) = flow.forward(z);
        assert_eq!(nn::to_vec(moved), vec![0.5, -1.0, 2.0]);
        assert_eq!(nn::to_vec(log_det), vec![0.0]);
    }
}
