//! One entity's stream: the steps that arrived and wait to be scored, and what it carries from
//! its last scored step (the threshold rule's state, the model's context window, each metric's
//! last value). Which steps are ready is decided here, from the data alone, so that a restarted
//! service decides as the one that stopped.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;
use vigil_core::threshold::StreamRuleState;

/// What a stream carries from its last scored step (kept in the store with that step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamMemory {
    /// The threshold rule's state (SPOT's tail, `auto`'s choice); `None` before the first step.
    pub rule: Option<StreamRuleState>,
    /// The last cleaned steps, fewer than the model's window (row-major).
    pub context: Vec<f64>,
    /// Each metric's last value, which fills it in a step that lacks it.
    pub last_values: Vec<Option<f64>>,
}

impl StreamMemory {
    /// The memory a stream carries into another model of the same metrics: the threshold state
    /// is the old model's (its tail was learnt from the old model's scores) and starts afresh,
    /// the cleaned steps and last values are the data's and are kept, as many as the new
    /// model's window takes.
    pub fn for_another_model(mut self, window: usize, n_metrics: usize) -> StreamMemory {
        self.rule = None;
        let keep_rows = (self.context.len() / n_metrics.max(1)).min(window.saturating_sub(1));
        self.context = self
            .context
            .split_off(self.context.len() - keep_rows * n_metrics);
        self
    }
}

/// What to do with one arriving sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admit {
    /// A value for a step not scored yet.
    New,
    /// The value the step already has (a sender's retry).
    Duplicate,
    /// Another value than the one the step has.
    Conflict(f64),
    /// For a step already scored or being scored: only an equal stored value is accepted.
    Late,
}

/// A step handed to the scorer.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub ts: i64,
    pub values: Vec<f64>,
    /// How many metrics were missing and took their last value.
    pub filled: i64,
}

/// The steps a stream hands to the scorer at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub steps: Vec<Step>,
    /// Steps left unscored: a metric was missing and had no earlier value to fill it.
    pub dropped: Vec<i64>,
    /// The memory to score from, with each metric's last value after these steps.
    pub memory: StreamMemory,
}

#[derive(Debug)]
pub struct Stream {
    /// Labels the output series carry.
    pub labels: Vec<(String, String)>,
    /// Steps not scored yet; NaN where a metric has not arrived.
    pending: BTreeMap<i64, Vec<f64>>,
    /// When each pending step first arrived (for the ingest-to-score latency).
    arrived: BTreeMap<i64, Instant>,
    pub memory: StreamMemory,
    /// The model (`name@version`) whose threshold state `memory` holds.
    pub model: String,
    /// The newest scored (and stored) step.
    pub last_ts: Option<i64>,
    /// The newest step handed to the scorer (at or after `last_ts`).
    claimed_ts: Option<i64>,
}

impl Stream {
    pub fn new(
        labels: Vec<(String, String)>,
        memory: StreamMemory,
        model: String,
        last_ts: Option<i64>,
    ) -> Stream {
        Stream {
            labels,
            pending: BTreeMap::new(),
            arrived: BTreeMap::new(),
            memory,
            model,
            last_ts,
            claimed_ts: last_ts,
        }
    }

    pub fn pending_steps(&self) -> usize {
        self.pending.len()
    }

    fn taken(&self, ts: i64) -> bool {
        self.claimed_ts.is_some_and(|c| ts <= c)
    }

    pub fn admit(&self, ts: i64, metric: usize, value: f64) -> Admit {
        match self.pending.get(&ts).map(|row| row[metric]) {
            Some(have) if !have.is_nan() && have == value => Admit::Duplicate,
            Some(have) if !have.is_nan() => Admit::Conflict(have),
            _ if self.taken(ts) => Admit::Late,
            _ => Admit::New,
        }
    }

    /// Adds a value admitted as [`Admit::New`]; returns whether the step is new.
    pub fn insert(
        &mut self,
        ts: i64,
        metric: usize,
        value: f64,
        n_metrics: usize,
        now: Instant,
    ) -> bool {
        let mut fresh = false;
        let row = self.pending.entry(ts).or_insert_with(|| {
            fresh = true;
            vec![f64::NAN; n_metrics]
        });
        row[metric] = value;
        self.arrived.entry(ts).or_insert(now);
        fresh
    }

    /// The steps ready to score, in time order, claimed so that no sample can join them after:
    /// a step is ready when all its metrics arrived, or when a step `grace_ms` later has
    /// arrived (then a missing metric takes its last value). The first step not ready stops the
    /// claim (steps are scored in order). A claim holds at least a whole `window` with the
    /// context the stream carries.
    pub fn claim(&mut self, grace_ms: i64, window: usize, n_metrics: usize) -> Option<Claim> {
        let newest = *self.pending.keys().next_back()?;
        let mut fill = self.memory.last_values.clone();
        fill.resize(n_metrics, None);
        let (mut steps, mut dropped) = (Vec::new(), Vec::new());
        let after = self.claimed_ts.map_or(i64::MIN, |c| c.saturating_add(1));
        for (&ts, row) in self.pending.range(after..) {
            let complete = row.iter().all(|v| !v.is_nan());
            if !complete && newest - ts < grace_ms {
                break;
            }
            let mut values = row.clone();
            let mut filled = 0;
            for (value, last) in values.iter_mut().zip(&fill) {
                if value.is_nan() {
                    if let Some(last) = last {
                        *value = *last;
                        filled += 1;
                    }
                }
            }
            if values.iter().any(|v| v.is_nan()) {
                dropped.push(ts);
                continue;
            }
            for (last, value) in fill.iter_mut().zip(&values) {
                *last = Some(*value);
            }
            steps.push(Step { ts, values, filled });
        }
        // The model scores a step with the `window - 1` steps before it: a stream's first steps
        // (or its first under a model of a longer window) wait until there are enough; dropped
        // steps are dropped now all the same.
        let context_rows = self.memory.context.len() / n_metrics.max(1);
        if context_rows + steps.len() < window {
            steps.clear();
        }
        if steps.is_empty() && dropped.is_empty() {
            return None;
        }
        self.discard(&dropped);
        self.claimed_ts = steps.last().map(|s| s.ts).max(self.claimed_ts);
        let mut memory = self.memory.clone();
        memory.last_values = fill;
        Some(Claim {
            steps,
            dropped,
            memory,
        })
    }

    fn discard(&mut self, dropped: &[i64]) {
        for ts in dropped {
            self.pending.remove(ts);
            self.arrived.remove(ts);
        }
    }

    /// The claimed steps up to `last_ts` were scored and stored: they leave the stream, which
    /// continues from `memory`. Returns when each of them arrived.
    pub fn commit(&mut self, last_ts: i64, memory: StreamMemory) -> Vec<Instant> {
        let later = self.pending.split_off(&(last_ts + 1));
        self.pending = later;
        let later = self.arrived.split_off(&(last_ts + 1));
        let arrived = std::mem::replace(&mut self.arrived, later);
        self.last_ts = Some(last_ts);
        self.memory = memory;
        arrived.into_values().collect()
    }

    /// The claimed steps could not be stored: they are claimable again.
    pub fn release(&mut self) {
        self.claimed_ts = self.last_ts;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_with(steps: &[(i64, [f64; 2])]) -> Stream {
        let mut s = Stream::new(vec![], StreamMemory::default(), "m@1".into(), None);
        let now = Instant::now();
        for (ts, row) in steps {
            for (m, v) in row.iter().enumerate() {
                if !v.is_nan() {
                    s.insert(*ts, m, *v, 2, now);
                }
            }
        }
        s
    }

    #[test]
    fn a_first_claim_waits_for_a_window_of_complete_steps() {
        let mut s = stream_with(&[(1, [1.0, 2.0]), (2, [3.0, 4.0])]);
        assert_eq!(s.claim(10, 3, 2), None);
        s.insert(3, 0, 5.0, 2, Instant::now());
        // Step 3 lacks a metric and its grace has not passed: still not a window.
        assert_eq!(s.claim(10, 3, 2), None);
        s.insert(3, 1, 6.0, 2, Instant::now());
        let claim = s.claim(10, 3, 2).unwrap();
        assert_eq!(
            claim.steps.iter().map(|s| s.ts).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(claim.memory.last_values, vec![Some(5.0), Some(6.0)]);
        // Claimed steps take no more samples and are not claimed twice.
        assert_eq!(s.admit(2, 0, 3.0), Admit::Duplicate);
        assert_eq!(s.admit(2, 0, 9.0), Admit::Conflict(3.0));
        assert_eq!(s.admit(1, 0, 1.0), Admit::Duplicate);
        assert_eq!(s.claim(10, 3, 2), None);
        let arrived = s.commit(3, claim.memory);
        assert_eq!(arrived.len(), 3);
        assert_eq!(s.admit(2, 0, 3.0), Admit::Late);
        assert_eq!(s.admit(4, 0, 3.0), Admit::New);
    }

    #[test]
    fn a_missing_metric_waits_for_the_grace_period_then_takes_its_last_value() {
        let mut s = stream_with(&[(0, [1.0, 2.0])]);
        s.commit(
            0,
            StreamMemory {
                last_values: vec![Some(1.0), Some(2.0)],
                context: vec![0.0],
                rule: None,
            },
        );
        s.insert(10, 0, 7.0, 2, Instant::now());
        s.insert(20, 0, 8.0, 2, Instant::now());
        assert_eq!(
            s.claim(15, 1, 2),
            None,
            "step 10 waits: only 10 ms have passed"
        );
        s.insert(30, 0, 9.0, 2, Instant::now());
        let claim = s.claim(15, 1, 2).unwrap();
        assert_eq!(
            claim.steps,
            vec![Step {
                ts: 10,
                values: vec![7.0, 2.0],
                filled: 1
            }]
        );
        // A late sample for the claimed, filled step is refused; one for step 20 is taken.
        assert_eq!(s.admit(10, 1, 2.5), Admit::Late);
        assert_eq!(s.admit(20, 1, 2.5), Admit::New);
    }

    #[test]
    fn another_model_keeps_the_data_but_not_the_threshold_state() {
        let memory = StreamMemory {
            rule: None,
            context: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            last_values: vec![Some(5.0), Some(6.0)],
        };
        let next = memory.clone().for_another_model(2, 2);
        assert_eq!(next.context, vec![5.0, 6.0]);
        assert_eq!(next.last_values, memory.last_values);
        assert_eq!(
            memory.clone().for_another_model(10, 2).context,
            memory.context
        );
        assert!(memory.for_another_model(1, 2).context.is_empty());
    }

    #[test]
    fn a_first_step_dropped_while_waiting_for_a_window_is_reported() {
        let mut s = stream_with(&[(1, [1.0, f64::NAN]), (100, [1.0, 2.0])]);
        let claim = s.claim(50, 5, 2).unwrap();
        assert_eq!((claim.steps.len(), claim.dropped.clone()), (0, vec![1]));
        assert_eq!(s.pending_steps(), 1);
        assert_eq!(s.claim(50, 5, 2), None);
    }

    #[test]
    fn a_metric_never_seen_drops_its_step_after_the_grace_period() {
        let mut s = stream_with(&[(1, [1.0, f64::NAN]), (100, [1.0, 2.0])]);
        let claim = s.claim(50, 1, 2).unwrap();
        assert_eq!(claim.dropped, vec![1]);
        assert_eq!(claim.steps.len(), 1);
        assert_eq!(s.pending_steps(), 1);
        s.release();
        assert_eq!(s.claim(50, 1, 2).unwrap().steps[0].ts, 100);
    }
}
