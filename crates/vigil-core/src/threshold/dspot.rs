//! DSPOT, SPOT with drift (Siffer et al., KDD 2017, §4.4): SPOT on the residual of each score
//! from a moving local level — the mean of the last `depth` scores that were not alarms — so
//! that a level that drifts slowly moves the threshold with it, where SPOT on the raw scores
//! would alarm on all of them (or on none).

use crate::error::{CoreError, Result};
use crate::threshold::pot::{is_zero, Pot, PotConfig};
use crate::threshold::rebaseline::{validate_horizon, Rebaseline};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// DSPOT parameters: POT's risk and initial level, on residuals, and the depth of the local level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DspotConfig {
    /// POT's parameters, applied to the residuals.
    #[serde(flatten)]
    pub pot: PotConfig,
    /// How many recent normal scores the local level averages (the authors' libspot: 10).
    pub depth: usize,
    /// Recalibration horizon in steps (0: off, as in the paper; [`super::rebaseline`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub horizon: usize,
}

impl Default for DspotConfig {
    fn default() -> Self {
        DspotConfig {
            pot: PotConfig::default(),
            depth: 10,
            horizon: 0,
        }
    }
}

impl DspotConfig {
    /// Checks the parameters before use.
    pub fn validate(&self) -> Result<()> {
        self.pot.validate()?;
        if self.depth == 0 {
            return Err(CoreError::invalid("DSPOT depth must be at least 1, got 0"));
        }
        validate_horizon(self.horizon)?;
        if self.horizon != 0 && self.horizon < self.depth + 10 {
            return Err(CoreError::invalid(format!(
                "the DSPOT recalibration horizon must be at least depth + 10 = {} steps, got {}",
                self.depth + 10,
                self.horizon
            )));
        }
        Ok(())
    }
}

/// A DSPOT model, which is also the state of a stream it judges: the last `depth` normal
/// scores and POT on the residuals. It serialises (serde), and a stream judged in two runs
/// with the state saved between gets the thresholds of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dspot {
    /// The last `depth` scores that were not alarms, oldest first.
    recent: VecDeque<f64>,
    /// POT on the residuals (score minus local level).
    residuals: Pot,
    /// Recalibration along the stream (off unless a horizon was given).
    #[serde(default, skip_serializing_if = "Rebaseline::is_off")]
    rebaseline: Rebaseline,
}

impl Dspot {
    /// Fits on calibration scores (typically the training scores, all taken as normal): the
    /// first `depth` start the local level, and the residuals of the rest fit POT.
    pub fn fit(calibration: &[f64], config: DspotConfig) -> Result<Dspot> {
        config.validate()?;
        let finite: Vec<f64> = calibration
            .iter()
            .copied()
            .filter(|s| s.is_finite())
            .collect();
        if finite.len() < config.depth + 10 {
            return Err(CoreError::invalid(format!(
                "DSPOT needs at least depth + 10 = {} finite calibration scores, got {}",
                config.depth + 10,
                finite.len()
            )));
        }
        let (first, rest) = finite.split_at(config.depth);
        let mut recent: VecDeque<f64> = first.iter().copied().collect();
        let mut residuals = Vec::with_capacity(rest.len());
        for &x in rest {
            residuals.push(x - mean(&recent));
            slide(&mut recent, x);
        }
        Ok(Dspot {
            recent,
            residuals: Pot::fit(&residuals, config.pot)?,
            rebaseline: Rebaseline::new(config.horizon),
        })
    }

    /// The threshold in force for the next score, in score units: local level plus POT's
    /// threshold on residuals.
    pub fn threshold(&self) -> f64 {
        mean(&self.recent) + self.residuals.threshold
    }

    /// Judges the next score: returns the threshold it was judged by. A score below it (not an
    /// alarm: alarms are `score >= threshold`) joins the local level and, when a peak, the
    /// residuals' tail; an alarm changes neither (alarms never teach the model what normal
    /// looks like).
    pub fn step(&mut self, x: f64) -> f64 {
        let level = mean(&self.recent);
        let threshold = level + self.residuals.threshold;
        let alarmed = !(x.is_finite() && x < threshold);
        if !alarmed {
            self.residuals.learn(x - level);
            slide(&mut self.recent, x);
        }
        if let Some(shifted) = self.rebaseline.observe(x, alarmed) {
            self.refit_on(&shifted);
        }
        threshold
    }

    /// Fits again on `scores` (a level that persisted for the horizon), with the same
    /// parameters, keeping the recalibration settings and count.
    fn refit_on(&mut self, scores: &[f64]) {
        let config = DspotConfig {
            pot: self.residuals.config(),
            depth: self.recent.len(),
            horizon: self.rebaseline.horizon,
        };
        if let Ok(fresh) = Dspot::fit(scores, config) {
            let rebaseline = std::mem::take(&mut self.rebaseline);
            *self = fresh;
            self.rebaseline = rebaseline;
        }
    }

    /// How many times recalibration fitted the rule again on a shifted level.
    pub fn recalibrations(&self) -> usize {
        self.rebaseline.refits
    }

    /// Whether a state read back from a file can go on: it holds recent scores (a state
    /// edited down to none would give a level of NaN, which never alarms).
    pub fn is_usable(&self) -> bool {
        !self.recent.is_empty() && self.recent.iter().all(|x| x.is_finite())
    }

    /// DSPOT over the next points of a stream: the threshold in force when each point arrived.
    pub fn stream(&mut self, points: &[f64]) -> Vec<f64> {
        points.iter().map(|&x| self.step(x)).collect()
    }
}

/// The mean of the recent scores, added in order (so that a state carried between runs gives
/// the same sum bit for bit).
fn mean(recent: &VecDeque<f64>) -> f64 {
    recent.iter().sum::<f64>() / recent.len() as f64
}

/// Drops the oldest recent score and appends `x`.
fn slide(recent: &mut VecDeque<f64>, x: f64) {
    recent.pop_front();
    recent.push_back(x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp};

    /// Scores whose normal level climbs from 0 to 20 over the stream (a drift SPOT calibrated
    /// at level 0 cannot follow), with spikes of +15 at known points.
    fn drifting(n: usize, spikes: &[usize], seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let noise = Exp::new(2.0).unwrap();
        (0..n)
            .map(|t| {
                let level = 20.0 * t as f64 / n as f64;
                let spike = if spikes.contains(&t) { 15.0 } else { 0.0 };
                level + noise.sample(&mut rng) + spike
            })
            .collect()
    }

    #[test]
    fn dspot_follows_a_drifting_level_that_spot_cannot() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let noise = Exp::new(2.0).unwrap();
        let calibration: Vec<f64> = (0..3000).map(|_| noise.sample(&mut rng)).collect();
        let spikes = [700, 1900, 3300, 4600];
        let stream = drifting(5000, &spikes, 2);
        let alarms = |thresholds: &[f64]| -> Vec<usize> {
            (0..stream.len())
                .filter(|&t| stream[t] >= thresholds[t])
                .collect()
        };
        let mut dspot = Dspot::fit(&calibration, DspotConfig::default()).unwrap();
        let flagged = alarms(&dspot.stream(&stream));
        assert!(spikes.iter().all(|s| flagged.contains(s)), "{flagged:?}");
        assert!(
            flagged.len() <= spikes.len() + 25,
            "{} alarms",
            flagged.len()
        );
        let mut spot = Pot::fit(&calibration, PotConfig::default()).unwrap();
        let spot_flagged = alarms(&spot.stream(&stream));
        assert!(
            spot_flagged.len() > 1000,
            "{} SPOT alarms",
            spot_flagged.len()
        );
    }

    #[test]
    fn too_few_calibration_scores_or_a_zero_depth_are_refused() {
        let short = Dspot::fit(&[1.0; 15], DspotConfig::default()).unwrap_err();
        assert!(short.to_string().contains("depth + 10 = 20"), "{short}");
        let zero = DspotConfig {
            depth: 0,
            ..DspotConfig::default()
        };
        assert!(Dspot::fit(&[1.0; 100], zero)
            .unwrap_err()
            .to_string()
            .contains("depth must be at least 1"));
    }
}
