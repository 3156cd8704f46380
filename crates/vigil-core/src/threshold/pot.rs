//! POT (peaks over threshold) and its streaming form SPOT (Siffer et al., KDD 2017).

use crate::error::{CoreError, Result};
use crate::threshold::gpd::{fit_gpd, quantile, Gpd};
use crate::threshold::rebaseline::{validate_horizon, Rebaseline};
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
    /// Defaults for POT fitted on the judged batch itself ([`super::ThresholdMethod::PotBatch`]):
    /// a risk of 1% above an initial level at the 95th percentile. Chosen on SMD between this and
    /// (1e-3, 0.98), then used unchanged on every other data set (docs/thresholds.md).
    pub fn batch() -> Self {
        PotConfig {
            q: 1e-2,
            level: 0.95,
        }
    }

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

/// SPOT's parameters: POT's, and how long a shift must persist to become the new normal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpotConfig {
    /// POT's risk and initial level.
    #[serde(flatten)]
    pub pot: PotConfig,
    /// Recalibration horizon in steps (0: off, as in the paper; [`super::rebaseline`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub horizon: usize,
}

impl SpotConfig {
    /// Checks the parameters before use.
    pub fn validate(&self) -> Result<()> {
        self.pot.validate()?;
        validate_horizon(self.horizon)
    }
}

/// For `skip_serializing_if`: a horizon of 0 is left out, so that configs and states written
/// before recalibration existed read and write the same.
pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// SPOT refits the tail once the peak set has grown by this fraction since the last fit, and in
/// between only moves z_q with the counts n and N_t. Siffer et al. refit at every new peak, which
/// is O(N_t²) likelihood evaluations over a stream: on an SMD test (thousands of peaks) that took
/// minutes per detector. A 2% larger sample moves the maximum-likelihood estimate far less than its
/// own standard error; `lazy_refit_stays_close_to_refitting_every_peak` measures the difference.
const REFIT_GROWTH: f64 = 0.02;
/// Below this many peaks every new peak triggers a refit (each fit is cheap and a peak matters).
const MIN_PEAKS_FOR_LAZY_REFIT: usize = 50;

/// A fitted POT model: initial threshold, the excesses over it, the GPD and the final threshold.
/// Under SPOT it is also the stream's state: it serialises (serde), and a stream scored in two
/// runs with the state saved between gets the thresholds of one run ([`Pot::stream`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pot {
    config: PotConfig,
    /// Initial threshold t (the `level` quantile of the calibration scores).
    pub init_threshold: f64,
    peaks: Vec<f64>,
    n: usize,
    /// How many peaks the current GPD was fitted on.
    fitted_peaks: usize,
    /// See [`REFIT_GROWTH`]; 0 refits at every peak, as in the paper.
    refit_growth: f64,
    /// The fitted tail.
    pub gpd: Gpd,
    /// The alarm threshold z_q.
    pub threshold: f64,
    /// Recalibration along the stream (off unless a horizon was given).
    #[serde(default, skip_serializing_if = "Rebaseline::is_off")]
    rebaseline: Rebaseline,
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
            fitted_peaks: 0,
            refit_growth: REFIT_GROWTH,
            gpd: Gpd {
                shape: 0.0,
                scale: 0.0,
            },
            threshold: init_threshold,
            rebaseline: Rebaseline::default(),
        };
        pot.refit();
        Ok(pot)
    }

    /// SPOT as `config` gives it: POT on `calibration`, recalibrated after `config.horizon`.
    pub fn spot(calibration: &[f64], config: SpotConfig) -> Result<Pot> {
        validate_horizon(config.horizon)?;
        let mut pot = Pot::fit(calibration, config.pot)?;
        pot.rebaseline = Rebaseline::new(config.horizon);
        Ok(pot)
    }

    /// From now on, recalibrate after `horizon` steps (0: never).
    pub fn recalibrate_after(&mut self, horizon: usize) {
        self.rebaseline = Rebaseline::new(horizon);
    }

    /// POT's parameters.
    pub fn config(&self) -> PotConfig {
        self.config
    }

    /// How many times recalibration fitted the tail again on a shifted level.
    pub fn recalibrations(&self) -> usize {
        self.rebaseline.refits
    }

    fn refit(&mut self) {
        self.fitted_peaks = self.peaks.len();
        match fit_gpd(&self.peaks) {
            Some(gpd) => {
                self.gpd = gpd;
                self.update_threshold();
            }
            // No tail (fewer than two peaks, e.g. constant scores): alarm strictly above the
            // largest value seen — alarms are `score >= threshold`, and a model trained on
            // constant data must not alarm on that data.
            None => {
                self.threshold = (self.init_threshold
                    + self.peaks.iter().copied().fold(0.0, f64::max))
                .next_up();
            }
        }
    }

    /// z_q from the current tail and the current counts n and N_t.
    fn update_threshold(&mut self) {
        self.threshold = quantile(
            self.gpd,
            self.init_threshold,
            self.config.q,
            self.n,
            self.peaks.len(),
        );
    }

    /// SPOT step: returns whether `x` is an alarm, and updates the tail with `x` when it is a
    /// peak but not an alarm (alarms never teach the model what normal looks like).
    pub fn step(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        // Alarms are `score >= threshold` (`threshold::decide`): such a score is not learnt.
        let alarmed = x >= self.threshold;
        if !alarmed {
            self.learn(x);
        }
        if let Some(shifted) = self.rebaseline.observe(x, alarmed) {
            self.refit_on(&shifted);
        }
        alarmed
    }

    /// Fits POT again on `scores` (a level that persisted for the horizon), keeping the
    /// recalibration settings and count.
    fn refit_on(&mut self, scores: &[f64]) {
        if let Ok(fresh) = Pot::fit(scores, self.config) {
            let rebaseline = std::mem::take(&mut self.rebaseline);
            let refit_growth = self.refit_growth;
            *self = fresh;
            self.rebaseline = rebaseline;
            self.refit_growth = refit_growth;
        }
    }

    /// Takes `x`, judged normal, into the counts and, when it is a peak, into the tail.
    pub fn learn(&mut self, x: f64) {
        self.n += 1;
        if x > self.init_threshold {
            self.peaks.push(x - self.init_threshold);
            let grown =
                self.peaks.len() as f64 >= self.fitted_peaks as f64 * (1.0 + self.refit_growth);
            if self.fitted_peaks < MIN_PEAKS_FOR_LAZY_REFIT || grown || self.gpd.scale <= 0.0 {
                self.refit();
            } else {
                self.update_threshold();
            }
        }
    }
}

impl Pot {
    /// SPOT over the next points of a stream: the threshold in force when each point arrived;
    /// the tail learns from every point that was not an alarm.
    pub fn stream(&mut self, points: &[f64]) -> Vec<f64> {
        points
            .iter()
            .map(|&x| {
                let t = self.threshold;
                self.step(x);
                t
            })
            .collect()
    }
}

/// Runs SPOT over `stream` after calibration on `calibration`: one threshold per stream point
/// (the threshold in force when that point arrived).
pub fn spot_thresholds(
    calibration: &[f64],
    stream: &[f64],
    config: SpotConfig,
) -> Result<Vec<f64>> {
    Ok(Pot::spot(calibration, config)?.stream(stream))
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
    fn lazy_refit_stays_close_to_refitting_every_peak() {
        // A stream whose tail is heavier than the calibration's, so that thousands of peaks arrive.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let calibration: Vec<f64> = (0..8_000)
            .map(|_| Exp::new(1.0).unwrap().sample(&mut rng))
            .collect();
        let stream: Vec<f64> = (0..8_000)
            .map(|_| Exp::new(0.8).unwrap().sample(&mut rng))
            .collect();
        let config = PotConfig::default();
        let run = |growth: f64| {
            let mut pot = Pot::fit(&calibration, config).unwrap();
            pot.refit_growth = growth;
            let mut refits = 0;
            let th: Vec<f64> = stream
                .iter()
                .map(|&x| {
                    let t = pot.threshold;
                    let before = pot.fitted_peaks;
                    pot.step(x);
                    refits += usize::from(pot.fitted_peaks != before);
                    t
                })
                .collect();
            (th, refits)
        };
        let (exact, exact_refits) = run(0.0);
        let (lazy, lazy_refits) = run(REFIT_GROWTH);
        let relative: Vec<f64> = exact
            .iter()
            .zip(&lazy)
            .map(|(a, b)| (a - b).abs() / a)
            .collect();
        let worst = relative.iter().copied().fold(0.0, f64::max);
        let mean = relative.iter().sum::<f64>() / relative.len() as f64;
        // The GPD fit's own sampling error on a few hundred peaks is several percent.
        assert!(
            worst < 0.05 && mean < 0.01,
            "lazy SPOT thresholds differ by {mean:.4} on average, {worst:.4} at worst (relative)"
        );
        assert!(
            lazy_refits * 5 < exact_refits,
            "{lazy_refits} lazy refits vs {exact_refits}"
        );
    }

    #[test]
    fn spot_flags_an_outlier_and_keeps_the_threshold_finite() {
        let calibration: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        let mut stream = vec![0.5; 50];
        stream[20] = 100.0;
        let th = spot_thresholds(&calibration, &stream, SpotConfig::default()).unwrap();
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
