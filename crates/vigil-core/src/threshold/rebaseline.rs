//! Recalibration along a stream: a shift that persists becomes the new normal after a stated
//! horizon. SPOT and DSPOT learn only from scores they do not alarm, which keeps anomalies out
//! of what they call normal but also means a lasting change of level (a deploy, a new load
//! pattern) is alarmed forever. With a horizon of h steps, once nearly all of the last h scores
//! were alarmed, the rule is fitted again on those h scores and goes on from there.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The share of the last `horizon` scores that must have been alarmed for the rule to take
/// them as the new normal. Not 1: a shifted level with noise dips below the threshold now and
/// then, and those few scores must not restart the count.
pub const REBASELINE_SHARE: f64 = 0.9;

/// The smallest horizon that can be refitted on: POT's initial level (the 98th percentile)
/// needs a few peaks above it for a tail.
pub const MIN_HORIZON: usize = 50;

/// What a streaming rule keeps to recalibrate: the last `horizon` scores and whether each was
/// alarmed. A horizon of 0 turns recalibration off (the default, as in the papers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rebaseline {
    /// Steps a shift must persist before it becomes the new normal (0: never).
    pub horizon: usize,
    /// The last `horizon` scores, oldest first, with whether each was alarmed.
    recent: VecDeque<(f64, bool)>,
    /// How many of `recent` were alarmed.
    alarmed: usize,
    /// How many times the rule was fitted again (for reports).
    #[serde(default)]
    pub refits: usize,
}

impl Rebaseline {
    /// Recalibration after `horizon` steps (0: off).
    pub fn new(horizon: usize) -> Rebaseline {
        Rebaseline {
            horizon,
            ..Rebaseline::default()
        }
    }

    /// Whether recalibration is off (nothing to keep or save).
    pub fn is_off(&self) -> bool {
        self.horizon == 0
    }

    /// Records the verdict on the newest score. Returns the scores to fit the rule on again
    /// when the last `horizon` scores were nearly all alarmed (the window then starts afresh).
    pub fn observe(&mut self, score: f64, alarmed: bool) -> Option<Vec<f64>> {
        if self.is_off() || !score.is_finite() {
            return None;
        }
        self.recent.push_back((score, alarmed));
        self.alarmed += usize::from(alarmed);
        if self.recent.len() > self.horizon {
            let (_, was_alarmed) = self.recent.pop_front().expect("longer than the horizon");
            self.alarmed -= usize::from(was_alarmed);
        }
        let full = self.recent.len() == self.horizon;
        if full && self.alarmed as f64 >= REBASELINE_SHARE * self.horizon as f64 {
            let scores = self.recent.drain(..).map(|(s, _)| s).collect();
            self.alarmed = 0;
            self.refits += 1;
            return Some(scores);
        }
        None
    }
}

/// Checks a horizon before use.
pub fn validate_horizon(horizon: usize) -> crate::error::Result<()> {
    if horizon != 0 && horizon < MIN_HORIZON {
        return Err(crate::error::CoreError::invalid(format!(
            "the recalibration horizon must be 0 (off) or at least {MIN_HORIZON} steps, got {horizon}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_alarms_as_long_as_the_horizon_is_handed_back_once() {
        let mut r = Rebaseline::new(50);
        for i in 0..49 {
            assert!(r.observe(i as f64, true).is_none());
        }
        let refit = r.observe(49.0, true).expect("50 alarms in a row");
        assert_eq!(refit.len(), 50);
        assert_eq!(refit[0], 0.0);
        assert!(r.observe(50.0, true).is_none(), "the window starts afresh");
        assert_eq!(r.refits, 1);
    }

    #[test]
    fn scattered_alarms_never_recalibrate_and_off_keeps_nothing() {
        let mut r = Rebaseline::new(50);
        for i in 0..1000 {
            assert!(r.observe(1.0, i % 5 == 0).is_none());
        }
        let mut off = Rebaseline::new(0);
        assert!(off.observe(1.0, true).is_none());
        assert!(off.recent.is_empty());
        assert!(validate_horizon(10).is_err());
        assert!(validate_horizon(0).is_ok() && validate_horizon(50).is_ok());
    }
}
