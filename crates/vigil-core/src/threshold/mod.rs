//! Turning scores into alarms — a separate step from scoring, so any detector can use any rule.

pub mod gpd;
pub mod pot;

use crate::error::{CoreError, Result};
use crate::metrics::best::{best_f1_adjusted, best_f1_pointwise};
use pot::{empirical_quantile, spot_thresholds, Pot, PotConfig};
use serde::{Deserialize, Serialize};

/// A rule that maps scores to alarms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum ThresholdMethod {
    /// POT fitted on the calibration (training) scores; one fixed threshold.
    Pot(PotConfig),
    /// SPOT: POT calibrated on training scores, then updated along the test stream (label-free).
    Spot(PotConfig),
    /// POT fitted on the scores being judged (a whole batch, offline; label-free). Robust to a
    /// test period whose normal scores sit above every training score, which defeats POT and SPOT
    /// calibrated on training scores (SMD machines 2-8 and 3-4: docs/thresholds.md).
    PotBatch(PotConfig),
    /// A fixed quantile of the calibration scores.
    Quantile {
        /// The quantile, e.g. 0.99.
        level: f64,
    },
    /// The threshold that maximises F1 on the test labels — an oracle, for reference only.
    BestF1 {
        /// Maximise point-adjusted F1 instead of point-wise F1.
        adjusted: bool,
    },
}

impl std::str::FromStr for ThresholdMethod {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pot" => Ok(Self::Pot(PotConfig::default())),
            "spot" => Ok(Self::Spot(PotConfig::default())),
            "pot-batch" => Ok(Self::PotBatch(PotConfig::batch())),
            "quantile" => Ok(Self::Quantile { level: 0.99 }),
            "best-f1" => Ok(Self::BestF1 { adjusted: false }),
            "best-f1-adjusted" => Ok(Self::BestF1 { adjusted: true }),
            other => Err(CoreError::invalid(format!(
                "unknown threshold `{other}`; use pot, spot, pot-batch, quantile, best-f1 or best-f1-adjusted"
            ))),
        }
    }
}

/// One threshold per test point (constant except under SPOT).
pub fn thresholds(
    method: ThresholdMethod,
    calibration: &[f64],
    test: &[f64],
    labels: Option<&[u8]>,
) -> Result<Vec<f64>> {
    let constant = |t: f64| vec![t; test.len()];
    match method {
        ThresholdMethod::Pot(cfg) => Ok(constant(Pot::fit(calibration, cfg)?.threshold)),
        ThresholdMethod::Spot(cfg) => spot_thresholds(calibration, test, cfg),
        ThresholdMethod::PotBatch(cfg) => Ok(constant(Pot::fit(test, cfg)?.threshold)),
        ThresholdMethod::Quantile { level } => {
            if calibration.is_empty() || !(0.0..=1.0).contains(&level) {
                return Err(CoreError::invalid(
                    "quantile threshold needs calibration scores and a level in [0, 1]",
                ));
            }
            Ok(constant(empirical_quantile(calibration, level)))
        }
        ThresholdMethod::BestF1 { adjusted } => {
            let labels = labels
                .ok_or_else(|| CoreError::invalid("the best-F1 threshold needs test labels"))?;
            let best = if adjusted {
                best_f1_adjusted(test, labels)
            } else {
                best_f1_pointwise(test, labels)
            };
            let best = best.ok_or_else(|| {
                CoreError::invalid("the best-F1 threshold needs at least one anomalous label")
            })?;
            Ok(constant(best.threshold))
        }
    }
}

/// Alarms: points whose score is at least the threshold in force.
pub fn alarms(scores: &[f64], thresholds: &[f64]) -> Vec<u8> {
    scores
        .iter()
        .zip(thresholds)
        .map(|(s, t)| u8::from(s >= t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp};

    #[test]
    fn pot_batch_follows_a_shifted_test_period_that_train_calibration_misses() {
        // Training scores ~ Exp(1); the test period's normal scores ~ 10 + Exp(1) (a new regime),
        // with five anomalies at 40. Train-calibrated POT alarms every test point; POT fitted on
        // the batch alarms the anomalies and at most a few percent of the rest.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let exp = Exp::new(1.0).unwrap();
        let train: Vec<f64> = (0..5000).map(|_| exp.sample(&mut rng)).collect();
        let mut test: Vec<f64> = (0..5000).map(|_| 10.0 + exp.sample(&mut rng)).collect();
        for i in [100, 1200, 2500, 3700, 4900] {
            test[i] = 40.0;
        }
        let rate = |method: ThresholdMethod| {
            let th = thresholds(method, &train, &test, None).unwrap();
            let flagged = alarms(&test, &th);
            let caught = [100, 1200, 2500, 3700, 4900]
                .iter()
                .all(|&i| flagged[i] == 1);
            (
                flagged.iter().map(|&a| a as f64).sum::<f64>() / test.len() as f64,
                caught,
            )
        };
        let (train_rate, _) = rate("pot".parse().unwrap());
        let (batch_rate, caught) = rate("pot-batch".parse().unwrap());
        assert!(
            train_rate > 0.99,
            "train-calibrated alarm rate {train_rate}"
        );
        assert!(caught, "pot-batch missed an anomaly");
        assert!(batch_rate < 0.03, "pot-batch alarm rate {batch_rate}");
    }
}
