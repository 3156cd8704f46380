//! OmniAnomaly's prior over a window's latents: a linear Gaussian state-space model with
//! identity transition and observation matrices and unit noises (the authors' code builds it
//! with TensorFlow Probability's `LinearGaussianStateSpaceModel`):
//!
//! s₁ ~ N(0, I),  s_t = s_{t−1} + N(0, I),  z_t = s_t + N(0, I).
//!
//! Every latent dimension is then an independent Gaussian sequence z ~ N(0, Σ) with
//! Σ_ij = min(i, j) + δ_ij (1-based steps): the random walk's covariance plus the observation
//! noise. TFP evaluates the density with a Kalman filter, step by step; here Σ⁻¹ and ln|Σ| are
//! computed once per window length, and the log-density of a batch is one matrix product — the
//! same number (the tests compare it with a Kalman filter), without a sequential loop in the
//! training graph.

use burn::prelude::*;
use nalgebra::DMatrix;

/// ln 2π.
const LOG_TWO_PI: f64 = 1.837_877_066_409_345_5;

/// The prior's precision matrix and normalising constant for one window length.
#[derive(Debug, Clone)]
pub struct StateSpacePrior {
    steps: usize,
    /// Σ⁻¹, `steps × steps`, row-major.
    precision: Vec<f32>,
    /// ln|Σ|.
    log_det: f64,
}

impl StateSpacePrior {
    /// The prior for windows of `steps` steps.
    pub fn new(steps: usize) -> StateSpacePrior {
        let covariance = DMatrix::from_fn(steps, steps, |i, j| {
            (i.min(j) + 1) as f64 + if i == j { 1.0 } else { 0.0 }
        });
        // Σ is symmetric positive definite (a covariance plus the identity): Cholesky exists.
        let cholesky = covariance
            .cholesky()
            .expect("min(i, j) + δ_ij is positive definite");
        let log_det = 2.0 * cholesky.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
        let inverse = cholesky.inverse();
        let precision = (0..steps * steps)
            .map(|k| inverse[(k / steps, k % steps)] as f32)
            .collect();
        StateSpacePrior {
            steps,
            precision,
            log_det,
        }
    }

    /// ln p(z) of every window of `z` (`batch × steps × latent`), summed over the latent
    /// dimensions: `batch × 1`.
    pub fn log_density(&self, z: Tensor<3>) -> Tensor<2> {
        let [batch, steps, latent] = z.dims();
        assert_eq!(steps, self.steps, "prior built for another window length");
        let precision = crate::nn::tensor2(self.precision.clone(), steps, steps, &z.device());
        // One row per (window, latent dimension): zᵀ Σ⁻¹ z for each.
        let rows = z.swap_dims(1, 2).reshape([batch * latent, steps]);
        let quadratic = (rows.clone().matmul(precision) * rows)
            .sum_dim(1)
            .reshape([batch, latent])
            .sum_dim(1);
        let constant = latent as f64 * 0.5 * (self.log_det + steps as f64 * LOG_TWO_PI);
        quadratic.mul_scalar(-0.5).sub_scalar(constant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ln p(z) of one latent dimension by the Kalman filter: the sum of each step's predictive
    /// density given the steps before it (what TFP's `forward_filter` returns).
    fn kalman_log_density(z: &[f64]) -> f64 {
        let (mut mean, mut var) = (0.0f64, 1.0f64); // s₁'s prior
        let mut total = 0.0;
        for &obs in z {
            // Predictive of z_t: s_t's prediction plus observation noise.
            let predictive_var = var + 1.0;
            total +=
                -0.5 * (LOG_TWO_PI + predictive_var.ln() + (obs - mean).powi(2) / predictive_var);
            // Update s_t with z_t, then predict s_{t+1}.
            let gain = var / predictive_var;
            mean += gain * (obs - mean);
            var *= 1.0 - gain;
            var += 1.0;
        }
        total
    }

    #[test]
    fn closed_form_matches_the_kalman_filter() {
        let (batch, steps, latent) = (2, 30, 3);
        let values: Vec<f32> = (0..batch * steps * latent)
            .map(|i| ((i as f32) * 0.37).sin() * 2.0 + (i % 7) as f32 * 0.1)
            .collect();
        let prior = StateSpacePrior::new(steps);
        let z = crate::nn::tensor3(values.clone(), batch, steps, latent, &crate::nn::device());
        let got = crate::nn::to_vec(prior.log_density(z));
        for b in 0..batch {
            let want: f64 = (0..latent)
                .map(|l| {
                    let series: Vec<f64> = (0..steps)
                        .map(|t| values[(b * steps + t) * latent + l] as f64)
                        .collect();
                    kalman_log_density(&series)
                })
                .sum();
            assert!(
                (got[b] as f64 - want).abs() < 1e-3 * want.abs().max(1.0),
                "window {b}: {} vs Kalman {want}",
                got[b]
            );
        }
    }

    #[test]
    fn a_random_walk_is_likelier_than_white_noise_of_the_same_size() {
        // The prior prefers latents that drift smoothly: that is the temporal dependence it
        // adds over N(0, I).
        let steps = 50;
        let walk: Vec<f32> = (0..steps).map(|t| (t as f32 * 0.2).sin() * 3.0).collect();
        let jumpy: Vec<f32> = (0..steps)
            .map(|t| if t % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        let prior = StateSpacePrior::new(steps);
        let density = |v: Vec<f32>| {
            crate::nn::to_vec(prior.log_density(crate::nn::tensor3(
                v,
                1,
                steps,
                1,
                &crate::nn::device(),
            )))[0]
        };
        assert!(density(walk) > density(jumpy) + 50.0);
    }
}
