//! PCA reconstruction: the classical baseline. Fits principal components of the (flattened)
//! training windows; a point's score is the squared error of reconstructing its newest time step
//! from the top components, per metric.
//!
//! Closed form via nalgebra's symmetric eigendecomposition of the covariance — no crate offers a
//! PCA that keeps the per-feature reconstruction error we need for contributions.

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::weights::{get_json, put_json, WeightFiles};
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// PCA configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcaConfig {
    /// Window length (1 = classic point-wise PCA).
    pub window: usize,
    /// Fraction of the training variance the kept components explain.
    pub explained_variance: f64,
}

impl Default for PcaConfig {
    fn default() -> Self {
        PcaConfig {
            window: 1,
            explained_variance: 0.95,
        }
    }
}

detector_config! {
    PcaConfig = "pca";
    counts: window;
    shares_above_zero: explained_variance;
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PcaWeights {
    mean: Vec<f64>,
    /// Kept components, one per row, each of length `window * M`.
    components: Vec<Vec<f64>>,
}

/// The PCA detector.
#[derive(Debug, Clone)]
pub struct Pca {
    config: PcaConfig,
    weights: Option<PcaWeights>,
}

const WEIGHTS: &str = "pca.json";

impl Pca {
    /// Builds an unfitted PCA detector.
    pub fn new(config: PcaConfig) -> Result<Pca> {
        config.validate()?;
        Ok(Pca {
            config,
            weights: None,
        })
    }

    fn fitted(&self) -> Result<&PcaWeights> {
        crate::error::fitted(&self.weights, self.kind())
    }
}

impl Detector for Pca {
    crate::config::config_methods!(window);

    fn fit(&mut self, input: &MtsInput, _options: &FitOptions) -> Result<FitSummary> {
        let (m, w) = (input.n_metrics, self.config.window);
        check_window(w, input.len(), "training series")?;
        let d = w * m;
        let n = input.n_full_windows(w);
        let mut mean = vec![0f64; d];
        for row in input.full_windows(w) {
            for (acc, &v) in mean.iter_mut().zip(row) {
                *acc += v as f64;
            }
        }
        mean.iter_mut().for_each(|v| *v /= n as f64);
        let mut cov = DMatrix::<f64>::zeros(d, d);
        let mut centred = vec![0f64; d];
        for row in input.full_windows(w) {
            for (c, (&v, mu)) in centred.iter_mut().zip(row.iter().zip(&mean)) {
                *c = v as f64 - mu;
            }
            let x = nalgebra::DVectorView::from_slice(&centred, d);
            cov.ger(1.0 / n.max(2) as f64, &x, &x, 1.0);
        }
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        let mut kept = Vec::new();
        let mut explained = 0.0;
        for &k in &order {
            if total > 0.0 && explained / total >= self.config.explained_variance {
                break;
            }
            explained += eig.eigenvalues[k].max(0.0);
            kept.push(
                eig.eigenvectors
                    .column(k)
                    .iter()
                    .copied()
                    .collect::<Vec<f64>>(),
            );
        }
        self.weights = Some(PcaWeights {
            mean,
            components: kept,
        });
        Ok(FitSummary {
            epochs: 1,
            final_loss: Some((total - explained).max(0.0) / d as f64),
            windows: n,
        })
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let weights = self.fitted()?;
        let (m, w) = (input.n_metrics, self.config.window);
        let d = w * m;
        if weights.mean.len() != d {
            return Err(ModelError::Shape(format!(
                "the PCA model was fitted on {} features per window, the data gives {d}",
                weights.mean.len()
            )));
        }
        let mut contributions = Vec::with_capacity(input.len() * m);
        let mut window = Vec::new();
        let mut centred = vec![0f64; d];
        let mut residual = vec![0f64; d];
        for t in 0..input.len() {
            windows_ending_at(input.values, m, w, [t], &mut window);
            for (c, (&v, mu)) in centred.iter_mut().zip(window.iter().zip(&weights.mean)) {
                *c = v as f64 - mu;
            }
            // Residual = x - Σ (x·v) v over kept components; score the newest step's metrics.
            residual.copy_from_slice(&centred);
            for comp in &weights.components {
                let proj: f64 = comp.iter().zip(&centred).map(|(a, b)| a * b).sum();
                for (r, c) in residual.iter_mut().zip(comp) {
                    *r -= proj * c;
                }
            }
            contributions.extend(residual[(w - 1) * m..].iter().map(|r| (r * r) as f32));
        }
        Ok(Scores::from_contributions(contributions, m))
    }

    fn save_weights(&self) -> Result<WeightFiles> {
        let mut files = WeightFiles::new();
        put_json(&mut files, WEIGHTS, self.fitted()?)?;
        Ok(files)
    }

    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let weights: PcaWeights = get_json(files, WEIGHTS)?;
        if weights.mean.len() != self.config.window * n_metrics {
            return Err(ModelError::Weights(format!(
                "{WEIGHTS} does not fit {n_metrics} metrics"
            )));
        }
        self.weights = Some(weights);
        Ok(())
    }
}
