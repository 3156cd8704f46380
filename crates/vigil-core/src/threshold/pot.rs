//! POT (peaks over threshold) and its streaming form SPOT (Siffer et al., KDD 2017).

use crate::error::{CoreError, Result};
use crate::threshold::gpd::{fit_gpd, quantile, Gpd};
use serde::{Deserialize, Serialize};

/// POT parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PotConfig {
    /// Risk: the probability of a normal score exceeding the threshold (paper: 1e-3 … 1e-5).
    pub q: f64,
    /// Quantile of the calibration scores used as the initial threshold t (paper: 0.98).
    pub level: f64,
}

impl Default for PotConfig {
    fn default() -> Self {
        PotConfig {
            q: 1e-4,
            level: 0.98,
        }
    }
}

impl PotConfig {
    /// Checks the parameters before use.
    pub fn validate(&self) -> Result<()> {
        if !(self.q > 0.0 && self.q < 1.0) {
            return Err(CoreError::invalid(format!(
                "POT q must be in (0, 1), got {}",
                self.q
            )));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(CoreError::invalid(format!(
                "POT level must be in (0, 1), got {}",
                self.level
            )));
        }
        if self.q >= 1.0 - self.level {
            return Err(CoreError::invalid(format!(
                "POT q ({}) must be below 1 - level ({}): the threshold sits above the initial level",
                self.q,
                1.0 - self.level
            )));
        }
        Ok(())
    }
}

/// A fitted POT model: initial threshold, the excesses over it, the GPD and the final threshold.
#[derive(Debug, Clone)]
pub struct Pot {
    config: PotConfig,
    /// Initial threshold t (the `level` quantile of the calibration scores).
    pub init_threshold: f64,
    peaks: Vec<f64>,
    n: usize,
    /// The fitted tail.
    pub gpd: Gpd,
    /// The alarm threshold z_q.
    pub threshold: f64,
}

impl Pot {
    /// Fits POT on calibration scores (typically the training scores).
    pub fn fit(scores: &[f64], config: PotConfig) -> Result<Pot> {
        config.validate()?;
        let finite: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
        if finite.len() < 10 {
            return Err(CoreError::invalid(format!(
                "POT needs at least 10 finite calibration scores, got {}",
                finite.len()
            )));
        }
        let init_threshold = empirical_quantile(&finite, config.level);
        let peaks: Vec<f64> = finite
            .iter()
            .filter(|&&s| s > init_threshold)
            .map(|s| s - init_threshold)
            .collect();
        let mut pot = Pot {
            config,
            init_threshold,
            peaks,
            n: finite.len(),
            gpd: Gpd {
                shape: 0.0,
                scale: 0.0,
            },
            threshold: init_threshold,
        };
        pot.refit();
        Ok(pot)
    }

    fn refit(&mut self) {
        match fit_gpd(&self.peaks) {
            Some(gpd) => {
                self.gpd = gpd;
                self.threshold = quantile(
                    gpd,
                    self.init_threshold,
                    self.config.q,
                    self.n,
                    self.peaks.len(),
                );
            }
            // No tail (fewer than two peaks, e.g. constant scores): alarm above the largest value.
            None => {
                self.threshold =
                    self.init_threshold + self.peaks.iter().copied().fold(0.0, f64::max);
            }
        }
    }

    /// SPOT step: returns whether `x` is an alarm, and updates the tail with `x` when it is a
    /// peak but not an alarm (alarms never teach the model what normal looks like).
    pub fn step(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        if x > self.threshold {
            return true;
        }
        self.n += 1;
        if x > self.init_threshold {
            self.peaks.push(x - self.init_threshold);
            self.refit();
        }
        false
    }
}

/// Runs SPOT over `stream` after calibration on `calibration`: one threshold per stream point
/// (the threshold in force when that point arrived).
pub fn spot_thresholds(calibration: &[f64], stream: &[f64], config: PotConfig) -> Result<Vec<f64>> {
    let mut pot = Pot::fit(calibration, config)?;
    Ok(stream
        .iter()
        .map(|&x| {
            let t = pot.threshold;
            pot.step(x);
            t
        })
        .collect())
}

/// The `level` quantile with linear interpolation (numpy's default).
pub fn empirical_quantile(values: &[f64], level: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = level.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp};

    #[test]
    fn threshold_matches_the_risk_on_exponential_scores() {
        // Exp(1) scores: P(X > z) = e^{-z}, so z_q for q = 1e-4 is ln(1e4) ≈ 9.21.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let scores: Vec<f64> = (0..200_000)
            .map(|_| Exp::new(1.0).unwrap().sample(&mut rng))
            .collect();
        let pot = Pot::fit(
            &scores,
            PotConfig {
                q: 1e-4,
                level: 0.98,
            },
        )
        .unwrap();
        assert!(
            (pot.threshold - 1e4f64.ln()).abs() < 0.4,
            "{}",
            pot.threshold
        );
    }

    #[test]
    fn spot_flags_an_outlier_and_keeps_the_threshold_finite() {
        let calibration: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        let mut stream = vec![0.5; 50];
        stream[20] = 100.0;
        let th = spot_thresholds(&calibration, &stream, PotConfig::default()).unwrap();
        assert!(th.iter().all(|t| t.is_finite()));
        assert!(stream[20] > th[20] && stream[19] < th[19]);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(PotConfig {
            q: 0.5,
            level: 0.98
        }
        .validate()
        .is_err());
        assert!(Pot::fit(&[1.0; 3], PotConfig::default()).is_err());
    }
}
