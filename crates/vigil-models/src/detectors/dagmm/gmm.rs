//! A Gaussian mixture on DAGMM's low-dimensional representation, differentiable end to end:
//! the mixture's parameters come from soft memberships (DAGMM's estimation network), and the
//! sample energy −ln p(z) goes through a batched Cholesky factorisation built from tensor ops,
//! so burn's autodiff carries the gradient into both networks.
//!
//! Why by hand: burn has no differentiable Cholesky, inverse or determinant. The representation
//! is small (the latent size plus two reconstruction features), so the factorisation is a few
//! dozen tiny tensor ops per batch; the products over the batch are batched matmuls.

use burn::prelude::*;

/// Mixture parameters: weights φ `[g]`, means μ `[g, k]`, covariances Σ `[g, k, k]`.
#[derive(Debug, Clone)]
pub struct Mixture {
    pub weights: Tensor<1>,
    pub means: Tensor<2>,
    pub covariances: Tensor<3>,
}

/// The mixture that soft memberships `gamma` `[n, g]` give the points `z` `[n, k]` (the paper's
/// eq. 5); `ridge` is added to every covariance's diagonal to keep it invertible.
pub fn fit(z: Tensor<2>, gamma: Tensor<2>, ridge: f64) -> Mixture {
    let [n, k] = z.dims();
    let g = gamma.dims()[1];
    let mass = gamma.clone().sum_dim(0).add_scalar(1e-12); // [1, g]
    let weights = mass.clone().div_scalar(n as f64).reshape([g]);
    // μ = γᵀ z / Σγ.
    let means = gamma.clone().transpose().matmul(z.clone()) / mass.clone().transpose(); // [g, k]
                                                                                        // Σ = Σᵢ γᵢ (zᵢ − μ)(zᵢ − μ)ᵀ / Σγ, per component.
    let diff = centred(z, means.clone()); // [g, n, k]
    let weighted = diff.clone() * gamma.transpose().reshape([g, n, 1]);
    let covariances = weighted.swap_dims(1, 2).matmul(diff) / mass.reshape([g, 1, 1]);
    let eye = Tensor::<2>::eye(k, &covariances.device()).reshape([1, k, k]);
    Mixture {
        weights,
        means,
        covariances: covariances + eye.mul_scalar(ridge),
    }
}

/// `z − μ_c` for every component: `[g, n, k]`.
fn centred(z: Tensor<2>, means: Tensor<2>) -> Tensor<3> {
    let [n, k] = z.dims();
    let g = means.dims()[0];
    z.reshape([1, n, k]) - means.reshape([g, 1, k])
}

/// The lower Cholesky factor L of each `[k, k]` matrix (Σ = L Lᵀ), column by column.
pub fn cholesky(a: Tensor<3>) -> Tensor<3> {
    let [g, k, _] = a.dims();
    let device = a.device();
    let mut columns: Vec<Tensor<3>> = Vec::with_capacity(k);
    for j in 0..k {
        let mut v = a.clone().narrow(2, j, 1); // [g, k, 1]
        if j > 0 {
            let done = Tensor::cat(columns.clone(), 2); // [g, k, j]
            let row_j = done.clone().narrow(1, j, 1); // [g, 1, j]
            v = v - done.matmul(row_j.swap_dims(1, 2));
        }
        let pivot = v.clone().narrow(1, j, 1).clamp_min(1e-12).sqrt(); // [g, 1, 1]
                                                                       // Entries above the diagonal are zero.
        let below: Vec<f32> = (0..k).map(|i| if i >= j { 1.0 } else { 0.0 }).collect();
        let mask = Tensor::<3>::from_data(TensorData::new(below, [1, k, 1]), &device);
        columns.push(v / pivot * mask);
    }
    let l = Tensor::cat(columns, 2);
    debug_assert_eq!(l.dims(), [g, k, k]);
    l
}

/// L⁻¹ of lower-triangular matrices, row by row (forward substitution on the identity).
pub fn invert_lower(l: Tensor<3>) -> Tensor<3> {
    let [g, k, _] = l.dims();
    let device = l.device();
    let mut rows: Vec<Tensor<3>> = Vec::with_capacity(k);
    for j in 0..k {
        let unit: Vec<f32> = (0..k).map(|i| if i == j { 1.0 } else { 0.0 }).collect();
        let mut r =
            Tensor::<3>::from_data(TensorData::new(unit, [1, 1, k]), &device).repeat_dim(0, g); // [g, 1, k]
        if j > 0 {
            let done = Tensor::cat(rows.clone(), 1); // [g, j, k]
            let l_row = l.clone().narrow(1, j, 1).narrow(2, 0, j); // [g, 1, j]
            r = r - l_row.matmul(done);
        }
        let diagonal = l.clone().narrow(1, j, 1).narrow(2, j, 1); // [g, 1, 1]
        rows.push(r / diagonal);
    }
    Tensor::cat(rows, 1)
}

/// A mixture prepared for energies: the inverse Cholesky factors and ln|2πΣ| per component.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) log_weights: Tensor<1>,
    pub(super) means: Tensor<2>,
    pub(super) inverse_factors: Tensor<3>,
    pub(super) log_dets: Tensor<1>,
}

/// Factorises the covariances once for [`energy`].
pub fn prepare(mixture: &Mixture) -> Prepared {
    let [g, k, _] = mixture.covariances.dims();
    let l = cholesky(mixture.covariances.clone());
    let diagonal = (l.clone() * Tensor::<2>::eye(k, &l.device()).reshape([1, k, k]))
        .sum_dim(2)
        .reshape([g, k]);
    // ln|2πΣ| = k ln 2π + 2 Σ ln diag(L).
    let log_dets = diagonal
        .log()
        .sum_dim(1)
        .reshape([g])
        .mul_scalar(2.0)
        .add_scalar(k as f64 * (2.0 * std::f64::consts::PI).ln());
    Prepared {
        log_weights: mixture.weights.clone().clamp_min(1e-12).log(),
        means: mixture.means.clone(),
        inverse_factors: invert_lower(l),
        log_dets,
    }
}

/// Sample energy −ln Σ_c φ_c N(z; μ_c, Σ_c) of each point `z` `[n, k]` (the paper's eq. 6): `[n]`.
pub fn energy(z: Tensor<2>, prepared: &Prepared) -> Tensor<1> {
    let n = z.dims()[0];
    let g = prepared.means.dims()[0];
    // Mahalanobis distances: ‖L⁻¹(z − μ)‖², as (z − μ) L⁻ᵀ row-wise.
    let y =
        centred(z, prepared.means.clone()).matmul(prepared.inverse_factors.clone().swap_dims(1, 2));
    let mahalanobis = y.square().sum_dim(2).reshape([g, n]).transpose(); // [n, g]
    let log_terms = (mahalanobis + prepared.log_dets.clone().reshape([1, g])).mul_scalar(-0.5)
        + prepared.log_weights.clone().reshape([1, g]);
    // −logsumexp over components, shifted by the (constant) row maximum for stability.
    let top = log_terms.clone().detach().max_dim(1); // [n, 1]
    let sum = (log_terms - top.clone()).exp().sum_dim(1).log();
    (sum + top).neg().reshape([n])
}

/// The paper's penalty on small variances: Σ_c Σ_j 1 / Σ_c,jj (a scalar).
pub fn inverse_diagonal_penalty(covariances: Tensor<3>) -> Tensor<1> {
    let [g, k, _] = covariances.dims();
    let eye = Tensor::<2>::eye(k, &covariances.device()).reshape([1, k, k]);
    let diagonal = (covariances * eye).sum_dim(2).reshape([g * k]);
    diagonal.recip().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t3(values: Vec<f32>, dims: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, dims), &crate::nn::device())
    }

    #[test]
    fn cholesky_and_inverse_reproduce_the_matrix() {
        // Two symmetric positive-definite 3x3 matrices.
        let a = t3(
            vec![
                4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0, //
                1.0, 0.2, 0.1, 0.2, 2.0, 0.3, 0.1, 0.3, 0.5,
            ],
            [2, 3, 3],
        );
        let l = cholesky(a.clone());
        let back = crate::nn::to_vec(l.clone().matmul(l.clone().swap_dims(1, 2)));
        for (x, y) in back.iter().zip(crate::nn::to_vec(a)) {
            assert!((x - y).abs() < 1e-5, "L Lᵀ {x} vs {y}");
        }
        let identity = crate::nn::to_vec(invert_lower(l.clone()).matmul(l));
        for (i, v) in identity.iter().enumerate() {
            let want = if (i % 9) % 4 == 0 { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-5, "L⁻¹ L [{i}] = {v}");
        }
    }

    #[test]
    fn energy_is_the_negative_log_density_of_the_mixture() {
        // One component, diagonal covariance: the energy is a sum of 1-D Gaussian terms.
        let device = crate::nn::device();
        let mixture = Mixture {
            weights: Tensor::from_data(TensorData::new(vec![1.0f32], [1]), &device),
            means: Tensor::from_data(TensorData::new(vec![0.5f32, -1.0], [1, 2]), &device),
            covariances: t3(vec![0.25, 0.0, 0.0, 4.0], [1, 2, 2]),
        };
        let z = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 1.0], [1, 2]), &device);
        let got = crate::nn::to_vec(energy(z, &prepare(&mixture)))[0] as f64;
        let nll = |x: f64, m: f64, var: f64| {
            0.5 * ((x - m).powi(2) / var + var.ln() + (2.0 * std::f64::consts::PI).ln())
        };
        let want = nll(1.0, 0.5, 0.25) + nll(1.0, -1.0, 4.0);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn energy_gradient_matches_finite_differences() {
        // Memberships and points both carry gradients; check d(Σ energy)/dz numerically.
        let device = crate::nn::device().autodiff();
        let n = 12;
        let zv: Vec<f32> = (0..n * 3).map(|i| ((i as f32) * 0.7).sin()).collect();
        let gv: Vec<f32> = (0..n * 2).map(|i| ((i as f32) * 1.3).cos()).collect();
        let total = |zv: &[f32]| -> (f64, Vec<f32>) {
            let z = Tensor::<2>::from_data(TensorData::new(zv.to_vec(), [n, 3]), &device)
                .require_grad();
            let logits = Tensor::<2>::from_data(TensorData::new(gv.clone(), [n, 2]), &device);
            let gamma = burn::tensor::activation::softmax(logits, 1);
            let mixture = fit(z.clone(), gamma, 1e-3);
            let e = energy(z.clone(), &prepare(&mixture)).sum()
                + inverse_diagonal_penalty(mixture.covariances).mul_scalar(0.01);
            let grads = e.clone().backward();
            (
                crate::nn::scalar(e),
                crate::nn::to_vec(z.grad(&grads).unwrap()),
            )
        };
        let (_, grad) = total(&zv);
        let h = 1e-2f32;
        for i in [0, 5, 17, 35] {
            let (mut up, mut down) = (zv.clone(), zv.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (total(&up).0 - total(&down).0) / (2.0 * h as f64);
            assert!(
                (grad[i] as f64 - numeric).abs() < 2e-2 * (1.0 + numeric.abs()),
                "d/dz[{i}]: {} vs {numeric}",
                grad[i]
            );
        }
    }
}
