//! One-class SVM (Schölkopf et al., *Estimating the Support of a High-Dimensional
//! Distribution*, Neural Computation 2001) with a Gaussian (RBF) kernel — the OC-SVM baseline of
//! MTAD-FL and GON. It finds the smallest region of kernel space holding a share 1 − ν of the
//! training windows; the score of a point is ρ − Σᵢ αᵢ K(xᵢ, x), the negated decision function,
//! so that points outside the learned support score above zero.
//!
//! The dual (0 ≤ αᵢ ≤ 1, Σ αᵢ = ν·n, libsvm's scaling, so that scores equal scikit-learn's
//! `-decision_function`) is solved by SMO with libsvm's second-order working-set selection.
//! Why by hand: the Rust SVM crates either lack one-class training or hold the kernel and
//! training data in forms we could not save, load and score on slices without copying them
//! around; SMO on a precomputed kernel is short. The kernel matrix is n² floats, so training
//! uses at most `max_train` windows (a seeded random sample) — as scikit-learn users do.
//!
//! Defaults are scikit-learn's: ν 0.5, γ = 1 / (features · variance of the training values).
//!
//! Per-metric contributions: the score is shared out by gradient x deviation, as Deep SVDD's
//! (|∂score/∂x · (x − training mean)| per metric, summed over the window, normalised).

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{share_out, Detector, FitOptions, FitSummary, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::nn::gemm::{matmul_serial, Strided};
use crate::nn::infer::{par_rows, CHUNK_ROWS};
use crate::weights::{get_json, put_json, WeightFiles};
use rand::seq::index::sample;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, full_window_ends, windows_ending_at};

/// One-class SVM configuration (scikit-learn's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcsvmConfig {
    /// Window length (1 = each time step on its own, as the MTS papers use it as a baseline).
    pub window: usize,
    /// ν: an upper bound on the share of training windows outside the support, a lower bound
    /// on the share of support vectors.
    pub nu: f64,
    /// RBF width γ in exp(−γ‖x − y‖²); `null` means 1 / (features · variance), scikit-learn's "scale".
    pub gamma: Option<f64>,
    /// Most training windows used (a seeded random sample beyond this; the kernel is n²).
    pub max_train: usize,
    /// Stopping tolerance on the KKT violation (libsvm's and scikit-learn's 1e-3).
    pub tolerance: f64,
}

impl Default for OcsvmConfig {
    fn default() -> Self {
        OcsvmConfig {
            window: 1,
            nu: 0.5,
            gamma: None,
            max_train: 4000,
            tolerance: 1e-3,
        }
    }
}

detector_config! {
    OcsvmConfig = "ocsvm";
    counts: window;
    shares_above_zero: nu;
    positive: tolerance;
    |c, checks| {
        checks.at_least("max_train", c.max_train, 2);
        if let Some(gamma) = c.gamma {
            checks.positive(&[("gamma", gamma)]);
        }
    }
}

/// What a fit keeps: the support vectors with their coefficients, ρ, γ and the metric means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Support {
    features: usize,
    gamma: f32,
    rho: f32,
    alphas: Vec<f32>,
    /// Support vectors, `alphas.len() x features` row-major.
    vectors: Vec<f32>,
    metric_means: Vec<f32>,
}

/// The one-class SVM detector.
#[derive(Debug)]
pub struct Ocsvm {
    config: OcsvmConfig,
    support: Option<Support>,
}

const STATE: &str = "ocsvm.json";

impl Ocsvm {
    /// Builds an unfitted detector.
    pub fn new(config: OcsvmConfig) -> Result<Ocsvm> {
        config.validate()?;
        Ok(Ocsvm {
            config,
            support: None,
        })
    }
}

/// RBF kernel values between the rows of `a` (`na x d`) and `b` (`nb x d`), into `out`
/// (`na x nb`), from ‖x − y‖² = ‖x‖² + ‖y‖² − 2 x·y with one matrix product.
fn rbf_block(a: &[f32], b: &[f32], b_norms: &[f32], d: usize, gamma: f32, out: &mut Vec<f32>) {
    let (na, nb) = (a.len() / d, b.len() / d);
    out.clear();
    out.resize(na * nb, 0.0);
    matmul_serial(
        na,
        nb,
        d,
        out,
        Strided::rows(0, nb),
        a,
        Strided::rows(0, d),
        b,
        Strided::transposed(d),
        false,
    );
    for (row, x) in out.chunks_exact_mut(nb).zip(a.chunks_exact(d)) {
        let x_norm: f32 = x.iter().map(|v| v * v).sum();
        for (k, y_norm) in row.iter_mut().zip(b_norms) {
            let squared = (x_norm + y_norm - 2.0 * *k).max(0.0);
            *k = (-gamma * squared).exp();
        }
    }
}

fn row_norms(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// The full kernel matrix of `x` (`n x d`), rows computed in parallel.
fn kernel_matrix(x: &[f32], d: usize, gamma: f32) -> Vec<f32> {
    let n = x.len() / d;
    let norms = row_norms(x, d);
    par_rows(n, n, 64, |rows, out| {
        let mut block = Vec::new();
        rbf_block(
            &x[rows.start * d..rows.end * d],
            x,
            &norms,
            d,
            gamma,
            &mut block,
        );
        out.copy_from_slice(&block);
    })
}

/// Solves min ½ αᵀKα s.t. 0 ≤ α ≤ 1, Σα = ν·n by SMO (libsvm's `Solver` with all labels +1 and
/// its second-order working-set selection); returns α and ρ.
fn solve(kernel: &[f32], n: usize, nu: f64, tolerance: f64) -> (Vec<f64>, f64) {
    // libsvm's start: the first ⌊νn⌋ coefficients at the bound, the next one fractional.
    let total = nu * n as f64;
    let mut alpha: Vec<f64> = (0..n).map(|i| (total - i as f64).clamp(0.0, 1.0)).collect();
    // Gradient of the objective: G = Kα.
    let mut gradient = vec![0.0f64; n];
    for (i, a) in alpha.iter().enumerate() {
        if *a != 0.0 {
            let column = &kernel[i * n..(i + 1) * n];
            gradient
                .iter_mut()
                .zip(column)
                .for_each(|(g, k)| *g += a * *k as f64);
        }
    }
    const TAU: f64 = 1e-12;
    let max_iterations = (100 * n).max(10_000_000);
    for _ in 0..max_iterations {
        // i: the coefficient that can grow with the steepest descent (largest −G).
        let (mut i, mut g_max) = (usize::MAX, f64::NEG_INFINITY);
        for t in 0..n {
            if alpha[t] < 1.0 && -gradient[t] >= g_max {
                g_max = -gradient[t];
                i = t;
            }
        }
        if i == usize::MAX {
            break;
        }
        // j: among coefficients that can shrink, the one whose pair step lowers the objective most.
        let k_i = &kernel[i * n..(i + 1) * n];
        let (mut j, mut best, mut g_min) = (usize::MAX, f64::INFINITY, f64::INFINITY);
        for t in 0..n {
            if alpha[t] > 0.0 {
                g_min = g_min.min(-gradient[t]);
                let b = g_max + gradient[t];
                if b > 0.0 {
                    let a =
                        (k_i[i] as f64 + kernel[t * n + t] as f64 - 2.0 * k_i[t] as f64).max(TAU);
                    let gain = -(b * b) / a;
                    if gain <= best {
                        best = gain;
                        j = t;
                    }
                }
            }
        }
        if g_max - g_min < tolerance || j == usize::MAX {
            break;
        }
        // Move along αᵢ + αⱼ = const, clipped to the box.
        let k_j = &kernel[j * n..(j + 1) * n];
        let a = (k_i[i] as f64 + k_j[j] as f64 - 2.0 * k_i[j] as f64).max(TAU);
        let sum = alpha[i] + alpha[j];
        let mut new_i = alpha[i] + (gradient[j] - gradient[i]) / a;
        new_i = new_i.clamp((sum - 1.0).max(0.0), sum.min(1.0));
        let new_j = sum - new_i;
        let (delta_i, delta_j) = (new_i - alpha[i], new_j - alpha[j]);
        alpha[i] = new_i;
        alpha[j] = new_j;
        gradient
            .par_iter_mut()
            .zip(k_i.par_iter().zip(k_j.par_iter()))
            .with_min_len(4096)
            .for_each(|(g, (ki, kj))| *g += delta_i * *ki as f64 + delta_j * *kj as f64);
    }
    // ρ: the decision function is zero on free support vectors; without any, the midpoint of
    // the interval the bounded ones leave (libsvm's rule).
    let free: Vec<f64> = (0..n)
        .filter(|&t| alpha[t] > 0.0 && alpha[t] < 1.0)
        .map(|t| gradient[t])
        .collect();
    let rho = if free.is_empty() {
        let upper = (0..n)
            .filter(|&t| alpha[t] == 0.0)
            .map(|t| gradient[t])
            .fold(f64::INFINITY, f64::min);
        let lower = (0..n)
            .filter(|&t| alpha[t] == 1.0)
            .map(|t| gradient[t])
            .fold(f64::NEG_INFINITY, f64::max);
        match (upper.is_finite(), lower.is_finite()) {
            (true, true) => (upper + lower) / 2.0,
            (true, false) => upper,
            _ => lower,
        }
    } else {
        free.iter().sum::<f64>() / free.len() as f64
    };
    (alpha, rho)
}

impl Detector for Ocsvm {
    crate::config::config_methods!(window);

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let c = &self.config;
        let (m, w) = (input.n_metrics, c.window);
        check_window(w, input.len(), "training series")?;
        let d = w * m;
        let ends: Vec<usize> = full_window_ends(input.len(), w).collect();
        let chosen: Vec<usize> = if ends.len() > c.max_train {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed);
            let mut picked = sample(&mut rng, ends.len(), c.max_train).into_vec();
            picked.sort_unstable();
            picked.iter().map(|&i| ends[i]).collect()
        } else {
            ends
        };
        let mut x = Vec::new();
        windows_ending_at(input.values, m, w, chosen.iter().copied(), &mut x);
        let n = chosen.len();
        let gamma = match c.gamma {
            Some(g) => g as f32,
            None => {
                let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
                let variance =
                    x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64;
                // A constant series has no spread to scale by: fall back to 1 / features.
                (1.0 / (d as f64 * if variance > 0.0 { variance } else { 1.0 })) as f32
            }
        };
        let kernel = kernel_matrix(&x, d, gamma);
        let (alpha, rho) = solve(&kernel, n, c.nu, c.tolerance);
        let (mut alphas, mut vectors) = (Vec::new(), Vec::new());
        for (t, a) in alpha.iter().enumerate() {
            if *a > 0.0 {
                alphas.push(*a as f32);
                vectors.extend_from_slice(&x[t * d..(t + 1) * d]);
            }
        }
        self.support = Some(Support {
            features: d,
            gamma,
            rho: rho as f32,
            alphas,
            vectors,
            metric_means: input.metric_means(),
        });
        if let Some(report) = &options.on_epoch {
            report(1, 1, rho);
        }
        Ok(FitSummary {
            epochs: 1,
            final_loss: None,
            windows: n,
        })
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let s = crate::error::fitted(&self.support, self.kind())?;
        let (m, w) = (input.n_metrics, self.config.window);
        if s.features != w * m || s.metric_means.len() != m {
            return Err(ModelError::Shape(format!(
                "the ocsvm model was trained on {} features per window ({} metrics), the data has {m} metrics",
                s.features,
                s.metric_means.len()
            )));
        }
        let d = s.features;
        let norms = row_norms(&s.vectors, d);
        let contributions = par_rows(input.len(), m, CHUNK_ROWS, |rows, out| {
            let n = rows.len();
            let (mut x, mut k) = (Vec::new(), Vec::new());
            windows_ending_at(input.values, m, w, rows, &mut x);
            rbf_block(&x, &s.vectors, &norms, d, s.gamma, &mut k);
            // Scale each kernel value by its coefficient: then the score is ρ − Σ row and the
            // gradient 2γ Σ αᵢK(xᵢ, x)(x − xᵢ) is one more product with the support vectors.
            let nv = s.alphas.len();
            for row in k.chunks_exact_mut(nv) {
                row.iter_mut().zip(&s.alphas).for_each(|(v, a)| *v *= a);
            }
            let mut weighted = vec![0.0f32; n * d];
            matmul_serial(
                n,
                d,
                nv,
                &mut weighted,
                Strided::rows(0, d),
                &k,
                Strided::rows(0, nv),
                &s.vectors,
                Strided::rows(0, d),
                false,
            );
            for r in 0..n {
                let row = &k[r * nv..(r + 1) * nv];
                let mass: f32 = row.iter().sum();
                let score = s.rho - mass;
                let share = &mut out[r * m..(r + 1) * m];
                share.fill(0.0);
                let window = &x[r * d..(r + 1) * d];
                for (t, value) in window.iter().enumerate() {
                    let gradient = 2.0 * s.gamma * (mass * value - weighted[r * d + t]);
                    share[t % m] += (gradient * (value - s.metric_means[t % m])).abs();
                }
                share_out(score, share);
            }
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    fn save_weights(&self) -> Result<WeightFiles> {
        let s = crate::error::fitted(&self.support, self.kind())?;
        let mut files = WeightFiles::new();
        put_json(&mut files, STATE, s)?;
        Ok(files)
    }

    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let s: Support = get_json(files, STATE)?;
        let d = self.config.window * n_metrics;
        if s.features != d
            || s.vectors.len() != s.alphas.len() * d
            || s.metric_means.len() != n_metrics
            || s.alphas.is_empty()
        {
            return Err(ModelError::Weights(format!(
                "{STATE} does not hold support vectors of {d} features; retrain the model"
            )));
        }
        self.support = Some(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 points on two blobs plus their scores from scikit-learn 1.9.1
    /// (`OneClassSVM(nu=0.5, gamma=0.5).fit(train).decision_function(test)`, negated), made by
    /// `bench/reference/ocsvm_fixture.py`.
    #[test]
    fn scores_match_scikit_learn() {
        let train: Vec<f32> = (0..40)
            .flat_map(|i| {
                let t = i as f32 * 0.61;
                let centre = if i % 2 == 0 { 0.0 } else { 2.0 };
                [centre + t.sin() * 0.5, centre + (t * 1.7).cos() * 0.5]
            })
            .collect();
        let test = [0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0, 4.0, -1.0, 0.3, 0.2];
        let mut det = Ocsvm::new(OcsvmConfig {
            gamma: Some(0.5),
            tolerance: 1e-6,
            ..OcsvmConfig::default()
        })
        .unwrap();
        det.fit(&MtsInput::new(&train, 2), &FitOptions::default())
            .unwrap();
        let got = det.score(&MtsInput::new(&test, 2)).unwrap().total;
        let want = SKLEARN_SCORES;
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn contributions_follow_the_score_gradient() {
        let train: Vec<f32> = (0..300)
            .flat_map(|i| {
                let t = i as f32 * 0.3;
                [t.sin() * 0.4 + 0.5, t.cos() * 0.2 + 0.5, 0.5]
            })
            .collect();
        let mut det = Ocsvm::new(OcsvmConfig::default()).unwrap();
        det.fit(&MtsInput::new(&train, 3), &FitOptions::default())
            .unwrap();
        let point = [0.9f32, 0.1, 0.7];
        let score = |p: &[f32]| det.score(&MtsInput::new(p, 3)).unwrap();
        let at = score(&point);
        let means = &det.support.as_ref().unwrap().metric_means;
        let h = 1e-3f32;
        let mut want = [0.0f64; 3];
        for c in 0..3 {
            let (mut up, mut down) = (point, point);
            up[c] += h;
            down[c] -= h;
            let gradient = (score(&up).total[0] - score(&down).total[0]) / (2.0 * h as f64);
            want[c] = (gradient * (point[c] - means[c]) as f64).abs();
        }
        let sum: f64 = want.iter().sum();
        for (c, w) in want.iter().enumerate() {
            let expected = w / sum * at.total[0];
            let got = at.per_metric[c] as f64;
            assert!(
                (got - expected).abs() < 1e-2 * (1.0 + expected.abs()),
                "metric {c}: {got} vs {expected}"
            );
        }
    }

    const SKLEARN_SCORES: [f64; 5] = [-0.736135, 1.125965, -0.695201, 7.975877, -0.506038];
}
