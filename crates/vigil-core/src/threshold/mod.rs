//! Turning scores into alarms — a separate step from scoring, so any detector can use any rule.

pub mod auto;
pub mod compare;
pub mod dspot;
pub mod gpd;
pub mod ndt;
pub mod pot;
pub mod rebaseline;
pub mod saved;

use crate::error::{CoreError, Result};
use crate::metrics::best::{best_f1_adjusted, best_f1_pointwise};
use auto::{Auto, AutoChoice, AutoConfig};
use dspot::{Dspot, DspotConfig};
use ndt::{ndt, NdtConfig};
use pot::{empirical_quantile, spot_thresholds, Pot, PotConfig, SpotConfig};
pub use saved::SavedScores;
use serde::{Deserialize, Serialize};

/// A rule that maps scores to alarms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum ThresholdMethod {
    /// POT fitted on the calibration (training) scores; one fixed threshold.
    Pot(PotConfig),
    /// SPOT: POT calibrated on training scores, then updated along the test stream (label-free).
    Spot(SpotConfig),
    /// DSPOT: SPOT on each score's residual from the mean of the last `depth` normal scores, so
    /// that the threshold follows a drifting level (label-free, streaming; [`dspot`]).
    Dspot(DspotConfig),
    /// The default: calibrated SPOT, or SPOT fitted on the stream's first scores when those sit
    /// above what calibration saw; chosen once from label-free evidence ([`auto`]).
    Auto(AutoConfig),
    /// POT fitted on the scores being judged (a whole batch, offline; label-free). Robust to a
    /// test period whose normal scores sit above every training score, which defeats POT and SPOT
    /// calibrated on training scores (SMD machines 2-8 and 3-4: docs/thresholds.md).
    PotBatch(PotConfig),
    /// LSTM-NDT's non-parametric dynamic threshold (Hundman et al., KDD 2018) on the scores being
    /// judged: EWMA-smoothed, a threshold per batch of 70 chosen on the last 2,100 points,
    /// alarmed sequences close to the nominal peak pruned (label-free; [`ndt`]).
    Ndt(NdtConfig),
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
            "auto" => Ok(Self::Auto(AutoConfig::default())),
            "spot" => Ok(Self::Spot(SpotConfig::default())),
            "dspot" => Ok(Self::Dspot(DspotConfig::default())),
            "pot-batch" => Ok(Self::PotBatch(PotConfig::batch())),
            "ndt" => Ok(Self::Ndt(NdtConfig::default())),
            "quantile" => Ok(Self::Quantile { level: 0.99 }),
            "best-f1" => Ok(Self::BestF1 { adjusted: false }),
            "best-f1-adjusted" => Ok(Self::BestF1 { adjusted: true }),
            other => Err(CoreError::invalid(format!(
                "unknown threshold `{other}`; use auto, pot, spot, dspot, pot-batch, ndt, quantile, best-f1 or best-f1-adjusted"
            ))),
        }
    }
}

/// A rule's verdict on a test series: the threshold in force at each point and the alarms.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Per-point thresholds (constant except under SPOT, DSPOT and NDT). Under NDT the threshold applies
    /// to the EWMA-smoothed score and pruned sequences stay quiet, so there an alarm is not
    /// simply `score >= threshold`.
    pub thresholds: Vec<f64>,
    /// 1 where the point is alarmed.
    pub alarms: Vec<u8>,
    /// Under `auto`: what it chose and why (`None` before its warm-up is over, and for the
    /// other rules).
    pub choice: Option<AutoChoice>,
}

/// Applies `method` to `test` (calibrated on `calibration`; `labels` only for the oracle).
pub fn decide(
    method: ThresholdMethod,
    calibration: &[f64],
    test: &[f64],
    labels: Option<&[u8]>,
) -> Result<Decision> {
    let constant = |t: f64| vec![t; test.len()];
    // Every rule but NDT alarms `score >= threshold`.
    let thresholds = match method {
        ThresholdMethod::Ndt(cfg) => {
            let verdict = ndt(test, cfg)?;
            return Ok(Decision {
                thresholds: verdict.thresholds,
                alarms: verdict.alarms,
                choice: None,
            });
        }
        ThresholdMethod::Pot(cfg) => constant(Pot::fit(calibration, cfg)?.threshold),
        ThresholdMethod::Spot(cfg) => spot_thresholds(calibration, test, cfg)?,
        ThresholdMethod::Dspot(cfg) => Dspot::fit(calibration, cfg)?.stream(test),
        ThresholdMethod::Auto(cfg) => {
            let mut auto = Auto::fit(calibration, cfg)?;
            let thresholds = auto.stream(test);
            let alarms = alarms(test, &thresholds);
            return Ok(Decision {
                thresholds,
                alarms,
                choice: auto.choice,
            });
        }
        ThresholdMethod::PotBatch(cfg) => constant(Pot::fit(test, cfg)?.threshold),
        ThresholdMethod::Quantile { level } => {
            if calibration.is_empty() || !(0.0..=1.0).contains(&level) {
                return Err(CoreError::invalid(
                    "quantile threshold needs calibration scores and a level in [0, 1]",
                ));
            }
            constant(quantile_threshold(calibration, level))
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
            constant(best.threshold)
        }
    };
    let alarms = alarms(test, &thresholds);
    Ok(Decision {
        thresholds,
        alarms,
        choice: None,
    })
}

/// What a streaming rule has learnt of a stream so far, to carry from one run to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Untagged: state files written before DSPOT hold a bare SPOT state, which still reads.
#[serde(untagged)]
pub enum StreamRuleState {
    /// SPOT's tail.
    Spot(Pot),
    /// DSPOT's local level and tail.
    Dspot(Dspot),
    /// `auto`'s warm-up or choice, and the chosen rule's state.
    Auto(Auto),
}

/// Applies `method` to the next points of a stream whose earlier points were judged in other
/// runs: `state` is what [`ThresholdMethod::Spot`] or [`ThresholdMethod::Dspot`] learnt so far (`None` on the first run:
/// calibrated on `calibration`), updated here, to be saved for the next run. Judged in two runs
/// with the state carried between, a stream gets the same thresholds and alarms as in one.
/// The fixed rules (`pot`, `quantile`) keep no state and are applied as by [`decide`]; the rules
/// that need the whole batch (`pot-batch`, `ndt`, `best-f1`) cannot judge a stream in parts.
pub fn decide_stream(
    method: ThresholdMethod,
    calibration: &[f64],
    points: &[f64],
    state: &mut Option<StreamRuleState>,
) -> Result<Decision> {
    match method {
        ThresholdMethod::Spot(_) | ThresholdMethod::Dspot(_) | ThresholdMethod::Auto(_) => {}
        ThresholdMethod::Pot(_) | ThresholdMethod::Quantile { .. } => {
            return decide(method, calibration, points, None)
        }
        ThresholdMethod::PotBatch(_) | ThresholdMethod::Ndt(_) | ThresholdMethod::BestF1 { .. } => {
            return Err(method.refuse_stream())
        }
    }
    let mut rule = match state.take() {
        None => StreamRuleState::fit(method, calibration)?,
        Some(saved) => {
            // A refused state is put back as it was: the caller keeps its file.
            let problem = saved.problem_under(method);
            if let Some(problem) = problem {
                *state = Some(saved);
                return Err(CoreError::invalid(problem));
            }
            saved
        }
    };
    let thresholds = rule.stream(points);
    let choice = rule.auto_choice();
    *state = Some(rule);
    let alarms = alarms(points, &thresholds);
    Ok(Decision {
        thresholds,
        alarms,
        choice,
    })
}

impl StreamRuleState {
    /// A streaming rule calibrated on `calibration`.
    /// The state a stream starts from under `method`: fitted on the calibration scores, as
    /// [`decide_stream`] fits it for a stream without one. A service judging many streams with
    /// one model fits it once and gives each new stream a copy.
    pub fn fit(method: ThresholdMethod, calibration: &[f64]) -> Result<StreamRuleState> {
        match method {
            ThresholdMethod::Spot(cfg) => Pot::spot(calibration, cfg).map(Self::Spot),
            ThresholdMethod::Dspot(cfg) => Dspot::fit(calibration, cfg).map(Self::Dspot),
            ThresholdMethod::Auto(cfg) => Auto::fit(calibration, cfg).map(Self::Auto),
            _ => Err(method.refuse_stream()),
        }
    }

    /// The thresholds in force at each of the next points, learning from those not alarmed.
    fn stream(&mut self, points: &[f64]) -> Vec<f64> {
        match self {
            StreamRuleState::Spot(pot) => pot.stream(points),
            StreamRuleState::Dspot(dspot) => dspot.stream(points),
            StreamRuleState::Auto(auto) => auto.stream(points),
        }
    }

    /// Under `auto`: what it chose and why, once its warm-up is over.
    pub fn auto_choice(&self) -> Option<AutoChoice> {
        match self {
            StreamRuleState::Auto(auto) => auto.choice,
            _ => None,
        }
    }

    /// How many times recalibration fitted the rule again on a level that persisted.
    pub fn recalibrations(&self) -> usize {
        match self {
            StreamRuleState::Spot(pot) => pot.recalibrations(),
            StreamRuleState::Dspot(dspot) => dspot.recalibrations(),
            StreamRuleState::Auto(auto) => auto.recalibrations(),
        }
    }

    /// Why this saved state cannot continue under `method`, if it cannot.
    fn problem_under(&self, method: ThresholdMethod) -> Option<&'static str> {
        match (self, method) {
            (StreamRuleState::Spot(_), ThresholdMethod::Spot(_)) => None,
            (StreamRuleState::Auto(auto), ThresholdMethod::Auto(cfg)) => (!auto.is_usable(&cfg)).then_some(
                "the saved auto state was learnt with other auto parameters (or was edited); start a new state file",
            ),
            (StreamRuleState::Dspot(dspot), ThresholdMethod::Dspot(_)) => (!dspot.is_usable()).then_some(
                "the saved DSPOT state holds no recent scores (or a non-finite one); start a new state file",
            ),
            _ => Some(
                "the saved stream state belongs to another threshold rule; start a new state file",
            ),
        }
    }
}

impl ThresholdMethod {
    /// The same rule recalibrating along the stream after `horizon` steps ([`rebaseline`]);
    /// 0 leaves any rule as it is. Only the streaming rules that learn (`spot`, `dspot`,
    /// `auto`) recalibrate.
    pub fn with_horizon(self, horizon: usize) -> Result<Self> {
        let method = match self {
            Self::Spot(cfg) => Self::Spot(SpotConfig { horizon, ..cfg }),
            Self::Dspot(cfg) => Self::Dspot(DspotConfig { horizon, ..cfg }),
            Self::Auto(cfg) => Self::Auto(AutoConfig { horizon, ..cfg }),
            other if horizon == 0 => other,
            _ => {
                return Err(CoreError::invalid(format!(
                    "a recalibration horizon ({horizon}) is for the rules that learn along a stream: auto, spot or dspot"
                )))
            }
        };
        method.validate()?;
        Ok(method)
    }

    /// Checks the rule's parameters.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Spot(cfg) => cfg.validate(),
            Self::Dspot(cfg) => cfg.validate(),
            Self::Auto(cfg) => cfg.validate(),
            Self::Pot(cfg) | Self::PotBatch(cfg) => cfg.validate(),
            Self::Quantile { level } if !(0.0..=1.0).contains(level) => Err(CoreError::invalid(
                format!("the quantile threshold's level must be in [0, 1], got {level}"),
            )),
            Self::Ndt(_) | Self::Quantile { .. } | Self::BestF1 { .. } => Ok(()),
        }
    }

    /// Whether the rule can judge a stream in parts ([`decide_stream`]): every rule but those
    /// fitted on the whole batch they judge.
    pub fn judges_streams(&self) -> bool {
        matches!(
            self,
            Self::Spot(_) | Self::Dspot(_) | Self::Auto(_) | Self::Pot(_) | Self::Quantile { .. }
        )
    }

    /// The error for a rule that cannot judge a stream in parts.
    pub fn refuse_stream(&self) -> CoreError {
        CoreError::invalid(
            "this threshold is fitted on the whole batch it judges, so it cannot carry over from one run to the next; use auto, spot, dspot, pot or quantile for a stream",
        )
    }
}

/// The `level` quantile of the calibration scores as an alarm threshold: at most a share
/// `1 - level` of calibration scores may reach it. Where ties make the quantile itself too
/// common (constant scores: every one equals it), the threshold moves just above it.
fn quantile_threshold(calibration: &[f64], level: f64) -> f64 {
    let t = empirical_quantile(calibration, level);
    let reaching = calibration.iter().filter(|&&s| s >= t).count();
    if reaching as f64 > (1.0 - level) * calibration.len() as f64 + 1.0 {
        t.next_up()
    } else {
        t
    }
}

/// Each score relative to the threshold in force, so that 1.0 is the alarm boundary whatever the
/// detector or rule (the convention of operations tools that alert on `anomaly_score > 1`):
/// score / threshold where the threshold is positive; where it is zero or negative (scores
/// that are log-likelihoods can be), 1 + score − threshold, which is 1 at the boundary too and
/// rises with the score. Under NDT the threshold applies to the smoothed score, so there a
/// point may pass 1 without an alarm (a pruned sequence) or alarm below it.
pub fn anomaly_scores(scores: &[f64], thresholds: &[f64]) -> Vec<f64> {
    scores
        .iter()
        .zip(thresholds)
        .map(|(&s, &t)| if t > 0.0 { s / t } else { 1.0 + s - t })
        .collect()
}

/// Alarms: points whose score is at least the threshold in force.
fn alarms(scores: &[f64], thresholds: &[f64]) -> Vec<u8> {
    scores
        .iter()
        .zip(thresholds)
        .map(|(s, t)| u8::from(s >= t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_and_dspot_streams_judged_in_two_runs_with_the_state_saved_equal_one_run() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let calibration: Vec<f64> = (0..2000).map(|_| rng.gen::<f64>().powi(3)).collect();
        // A stream with a level shift and a few spikes, long enough for many refits.
        let stream: Vec<f64> = (0..3000)
            .map(|t| {
                let x = rng.gen::<f64>().powi(3) + if t > 1500 { 0.2 } else { 0.0 };
                if rng.gen::<f64>() < 0.01 {
                    x + 3.0
                } else {
                    x
                }
            })
            .collect();
        for method in ["spot", "dspot", "auto"].map(|m| m.parse::<ThresholdMethod>().unwrap()) {
            judged_in_two_runs_equals_one(method, &calibration, &stream);
            // Recalibrating along the way too (the shift at 1500 lasts well past 200 steps).
            let recalibrating = method.with_horizon(200).unwrap();
            judged_in_two_runs_equals_one(recalibrating, &calibration, &stream);
        }
        let batch = decide_stream(
            ThresholdMethod::PotBatch(PotConfig::batch()),
            &calibration,
            &stream,
            &mut None,
        );
        assert!(batch.unwrap_err().to_string().contains("whole batch"));
        // A state learnt under one rule is not taken for another's.
        let mut spot_state = None;
        let spot = ThresholdMethod::Spot(SpotConfig::default());
        decide_stream(spot, &calibration, &stream[..100], &mut spot_state).unwrap();
        let dspot = ThresholdMethod::Dspot(DspotConfig::default());
        let refused = decide_stream(dspot, &calibration, &stream[100..], &mut spot_state);
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("another threshold rule"));
        assert!(
            matches!(spot_state, Some(StreamRuleState::Spot(_))),
            "kept as it was"
        );
        // A DSPOT state emptied of its recent scores (a hand-edited file) is refused and kept.
        let mut dspot_state = None;
        decide_stream(dspot, &calibration, &stream[..100], &mut dspot_state).unwrap();
        let saved = serde_json::to_string(&dspot_state).unwrap();
        let mut dspot_state: Option<StreamRuleState> =
            serde_json::from_str(&without_recent_scores(&saved)).unwrap();
        let kept = dspot_state.clone();
        let refused = decide_stream(dspot, &calibration, &stream[100..], &mut dspot_state);
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("no recent scores"));
        assert_eq!(dspot_state, kept);
    }

    #[test]
    fn auto_switching_then_recalibrating_carries_across_runs() {
        // Calibration ~ Exp(1); the stream ~ 10 + Exp(1) (auto switches to SPOT on the stream),
        // then ~ 15 + Exp(1) from step 1500 for good (recalibrated after 200 steps), with spikes.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let exp = Exp::new(1.0).unwrap();
        let calibration: Vec<f64> = (0..3000).map(|_| exp.sample(&mut rng)).collect();
        let mut stream: Vec<f64> = (0..3000)
            .map(|t| exp.sample(&mut rng) + if t >= 1500 { 15.0 } else { 10.0 })
            .collect();
        for i in [1200, 2600] {
            stream[i] += 30.0;
        }
        let method = "auto"
            .parse::<ThresholdMethod>()
            .unwrap()
            .with_horizon(200)
            .unwrap();
        judged_in_two_runs_equals_one(method, &calibration, &stream);
        let mut state = None;
        let whole = decide_stream(method, &calibration, &stream, &mut state).unwrap();
        let state = state.unwrap();
        assert_eq!(
            state.auto_choice().unwrap().rule,
            auto::AutoRule::StreamSpot
        );
        assert!(state.recalibrations() > 0);
        assert_eq!((whole.alarms[1200], whole.alarms[2600]), (1, 1));
    }

    /// A saved DSPOT state with its `recent` array emptied.
    fn without_recent_scores(saved: &str) -> String {
        let start = saved.find("\"recent\":[").unwrap() + "\"recent\":[".len();
        let end = start + saved[start..].find(']').unwrap();
        format!("{}{}", &saved[..start], &saved[end..])
    }

    fn judged_in_two_runs_equals_one(method: ThresholdMethod, calibration: &[f64], stream: &[f64]) {
        let whole = decide(method, calibration, stream, None).unwrap();
        for cut in [1, 777, 1501, 2999] {
            let mut state = None;
            let first = decide_stream(method, calibration, &stream[..cut], &mut state).unwrap();
            // The state leaves the process as text and comes back.
            let saved = serde_json::to_string(&state).unwrap();
            let mut state: Option<StreamRuleState> = serde_json::from_str(&saved).unwrap();
            let second = decide_stream(method, calibration, &stream[cut..], &mut state).unwrap();
            let thresholds: Vec<f64> = first
                .thresholds
                .iter()
                .chain(&second.thresholds)
                .copied()
                .collect();
            let alarms: Vec<u8> = first.alarms.iter().chain(&second.alarms).copied().collect();
            assert_eq!(thresholds, whole.thresholds, "{method:?} cut at {cut}");
            assert_eq!(alarms, whole.alarms, "{method:?} cut at {cut}");
        }
        assert!(whole.alarms.contains(&1), "{method:?}");
    }
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp};

    #[test]
    fn a_shift_that_persists_for_the_horizon_becomes_the_new_normal() {
        // Scores ~ Exp(1), then from step 1000 on ~ 20 + Exp(1) for good, with a spike of +40
        // at 2600. Without recalibration SPOT, DSPOT and auto alarm the whole new level; with a
        // horizon of 300 they stop within about that many steps and still catch the spike.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let exp = Exp::new(1.0).unwrap();
        let calibration: Vec<f64> = (0..3000).map(|_| exp.sample(&mut rng)).collect();
        let mut stream: Vec<f64> = (0..3000)
            .map(|t| exp.sample(&mut rng) + if t >= 1000 { 20.0 } else { 0.0 })
            .collect();
        stream[2600] += 40.0;
        let count = |alarms: &[u8], range: std::ops::Range<usize>| {
            alarms[range].iter().filter(|&&a| a == 1).count()
        };
        for name in ["spot", "dspot", "auto"] {
            let method: ThresholdMethod = name.parse().unwrap();
            let plain = decide(method, &calibration, &stream, None).unwrap().alarms;
            assert!(count(&plain, 1400..3000) > 1500, "{name} without a horizon");
            let method = method.with_horizon(300).unwrap();
            let alarms = decide(method, &calibration, &stream, None).unwrap().alarms;
            assert!(
                count(&alarms, 1000..1300) > 250,
                "{name}: the shift is alarmed at first"
            );
            assert!(
                count(&alarms, 1400..3000) < 40,
                "{name}: {} alarms once the shift is the new normal",
                count(&alarms, 1400..3000)
            );
            assert_eq!(alarms[2600], 1, "{name} missed the spike on the new level");
        }
        // Only rules that learn along a stream take a horizon.
        let batch: ThresholdMethod = "pot-batch".parse().unwrap();
        assert!(batch.with_horizon(300).is_err());
        assert!(batch.with_horizon(0).is_ok());
        let spot: ThresholdMethod = "spot".parse().unwrap();
        assert!(spot
            .with_horizon(20)
            .unwrap_err()
            .to_string()
            .contains("at least 50"));
    }

    #[test]
    fn anomaly_score_is_one_at_the_boundary_and_rises_with_the_score() {
        let scores = [0.0, 2.0, 4.0, -3.0, -2.0, 5.0];
        let thresholds = [2.0, 2.0, 2.0, -2.0, -2.0, 0.0];
        assert_eq!(
            anomaly_scores(&scores, &thresholds),
            [0.0, 1.0, 2.0, 0.0, 1.0, 6.0]
        );
    }

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
            let flagged = decide(method, &train, &test, None).unwrap().alarms;
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
