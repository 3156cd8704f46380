//! The non-parametric dynamic threshold (NDT) of LSTM-NDT (Hundman et al., KDD 2018, §3.2),
//! offered for any detector's scores.
//!
//! Scores are smoothed with an exponentially weighted moving average. Then, batch by batch, a
//! threshold ε = μ + zσ is chosen on the window of the latest `history_batches` batches of
//! smoothed scores: the z whose alarms most reduce the window's mean and standard deviation per
//! alarmed point and per (squared) alarmed sequence. Points of the newest batch above ε raise
//! alarms, widened by `error_buffer` points each side; finally alarmed sequences whose peak is
//! not clearly above the next lower peak — ending with the highest unalarmed score of the window
//! — are pruned back to nominal (the minimum relative separation `min_separation`, p).
//!
//! Written by hand: no crate implements NDT. Where it departs from the authors' telemanom code,
//! and why:
//! - Only high scores alarm. Telemanom also flags unusually *low* prediction errors; a detector's
//!   score is an error, energy or negative likelihood where low means normal.
//! - No channel-scale guard. Telemanom ignores errors below 5% of the telemetry's own 5–95%
//!   range; a threshold over any detector's score does not see the raw values.
//! - Every point is judged once: windows end at `h, h + b, h + 2b, …` and at the last point, and
//!   each judges the points since the previous end (telemanom's last window skips up to one
//!   batch of points before its final batch).
//! - Scores below zero (log-likelihood scores) are shifted so their minimum is zero: the rule's
//!   relative decreases (Δμ/μ, peak separations) need a non-negative error.

use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// NDT parameters; the defaults are the paper's (and telemanom's `config.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NdtConfig {
    /// Points judged per step (paper: 70).
    pub batch: usize,
    /// Batches of history each threshold is chosen on (paper: 30, so h = 2,100 points).
    pub history_batches: usize,
    /// EWMA span as a fraction of the history h (paper: 5%, a span of 105 points).
    pub smoothing_fraction: f64,
    /// Points added on each side of a point above the threshold (telemanom: 100).
    pub error_buffer: usize,
    /// Minimum relative drop between successive sequence peaks that keeps a sequence (p = 0.13).
    pub min_separation: f64,
    /// The candidate z: `z_min, z_min + z_step, …` below `z_max`; also the fallback z when no
    /// candidate qualifies (telemanom: 2.5 to 12 by 0.5).
    pub z_min: f64,
    /// Upper end (exclusive) of the candidates and the fallback z.
    pub z_max: f64,
    /// Step between candidates.
    pub z_step: f64,
}

impl Default for NdtConfig {
    fn default() -> Self {
        NdtConfig {
            batch: 70,
            history_batches: 30,
            smoothing_fraction: 0.05,
            error_buffer: 100,
            min_separation: 0.13,
            z_min: 2.5,
            z_max: 12.0,
            z_step: 0.5,
        }
    }
}

impl NdtConfig {
    /// Checks the parameters before use.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.history_batches == 0 {
            return Err(CoreError::invalid(
                "NDT batch and history_batches must be at least 1",
            ));
        }
        if !(self.smoothing_fraction > 0.0 && self.smoothing_fraction <= 1.0) {
            return Err(CoreError::invalid(format!(
                "NDT smoothing_fraction must be in (0, 1], got {}",
                self.smoothing_fraction
            )));
        }
        if !(0.0..1.0).contains(&self.min_separation) {
            return Err(CoreError::invalid(format!(
                "NDT min_separation must be in [0, 1), got {}",
                self.min_separation
            )));
        }
        if !(self.z_min > 0.0 && self.z_step > 0.0 && self.z_max > self.z_min) {
            return Err(CoreError::invalid(format!(
                "NDT needs 0 < z_min < z_max and z_step > 0, got z_min {}, z_max {}, z_step {}",
                self.z_min, self.z_max, self.z_step
            )));
        }
        Ok(())
    }

    fn history(&self) -> usize {
        self.batch * self.history_batches
    }

    fn candidates(&self) -> impl Iterator<Item = f64> + '_ {
        (0..)
            .map(|k| self.z_min + k as f64 * self.z_step)
            .take_while(|&z| z < self.z_max)
    }
}

/// NDT's verdict on a series: per point, the threshold ε of the window that judged it (in the
/// units of the smoothed score) and whether it is alarmed.
#[derive(Debug, Clone, PartialEq)]
pub struct NdtVerdict {
    /// EWMA-smoothed scores (shifted to a minimum of zero when the scores go below zero).
    pub smoothed: Vec<f64>,
    /// ε in force at each point.
    pub thresholds: Vec<f64>,
    /// 1 where the point lies in an alarmed sequence that survived pruning.
    pub alarms: Vec<u8>,
}

/// Runs NDT over a whole score series (label-free, judged batch by batch in time order).
pub fn ndt(scores: &[f64], cfg: NdtConfig) -> Result<NdtVerdict> {
    cfg.validate()?;
    if scores.is_empty() {
        return Err(CoreError::invalid(
            "the ndt threshold needs at least one score",
        ));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(CoreError::invalid(format!(
            "the ndt threshold needs finite scores; score {i} is {}",
            scores[i]
        )));
    }
    let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let shift = if min < 0.0 { -min } else { 0.0 };
    let span = (cfg.history() as f64 * cfg.smoothing_fraction).max(1.0);
    let smoothed = ewma(scores.iter().map(|s| s + shift), span);

    let n = smoothed.len();
    let mut thresholds = vec![0.0; n];
    let mut alarms = vec![0u8; n];
    let mut judged_from = 0;
    while judged_from < n {
        // The first window judges its whole history; each later one its newest batch.
        let end = if judged_from == 0 {
            cfg.history().min(n)
        } else {
            (judged_from + cfg.batch).min(n)
        };
        let start = end.saturating_sub(cfg.history());
        judge_window(
            &smoothed[start..end],
            judged_from - start,
            &cfg,
            &mut thresholds[start..end],
            &mut alarms[start..end],
        );
        judged_from = end;
    }
    Ok(NdtVerdict {
        smoothed,
        thresholds,
        alarms,
    })
}

/// pandas' `ewm(span).mean()` with `adjust=True`: each point is the weighted mean of all points so
/// far with weights (1 − α)^age, α = 2 / (span + 1) — so the first points are not dragged toward 0.
fn ewma(values: impl Iterator<Item = f64>, span: f64) -> Vec<f64> {
    let keep = 1.0 - 2.0 / (span + 1.0);
    let (mut weighted, mut weight) = (0.0, 0.0);
    values
        .map(|v| {
            weighted = v + keep * weighted;
            weight = 1.0 + keep * weight;
            weighted / weight
        })
        .collect()
}

/// Chooses ε on `window` and alarms the points from `judged_from` on (window coordinates).
/// `thresholds` and `alarms` are the window's slices of the series' outputs; alarms raised by
/// earlier windows are kept and do not count as nominal when pruning.
fn judge_window(
    window: &[f64],
    judged_from: usize,
    cfg: &NdtConfig,
    thresholds: &mut [f64],
    alarms: &mut [u8],
) {
    let (mean, sd) = mean_sd(window);
    let z = choose_z(window, mean, sd, cfg);
    let epsilon = mean + z * sd;
    thresholds[judged_from..].fill(epsilon);
    if sd == 0.0 {
        return;
    }
    // Points above ε in the judged part, widened by the buffer but kept inside the judged part.
    let mut raised = vec![false; window.len()];
    let reach = cfg.error_buffer.saturating_sub(1);
    for i in judged_from..window.len() {
        if window[i] > epsilon {
            let lo = i.saturating_sub(reach).max(judged_from);
            let hi = (i + reach).min(window.len() - 1);
            raised[lo..=hi].fill(true);
        }
    }
    let sequences = runs(&raised);
    if sequences.is_empty() {
        return;
    }
    let highest_nominal = window
        .iter()
        .zip(&raised)
        .zip(alarms.iter())
        .filter(|((_, &r), &a)| !r && a == 0)
        .map(|((&e, _), _)| e)
        .fold(0.0, f64::max);
    let peaks: Vec<f64> = sequences
        .iter()
        .map(|&(a, b)| window[a..=b].iter().copied().fold(0.0, f64::max))
        .collect();
    let Some(floor) = pruning_floor(&peaks, highest_nominal, cfg.min_separation) else {
        return;
    };
    for (&(a, b), &peak) in sequences.iter().zip(&peaks) {
        if peak >= floor {
            alarms[a..=b].fill(1);
        }
    }
}

/// Telemanom's z: the candidate maximising (Δμ/μ + Δσ/σ) / (sequences² + alarmed points), where
/// Δ compares the window with and without its points above ε, and alarmed points include the
/// buffer. Candidates with more than 5 sequences, or alarming half the window, do not qualify;
/// ties go to the larger z; with no qualifying candidate the fallback is `z_max`.
fn choose_z(window: &[f64], mean: f64, sd: f64, cfg: &NdtConfig) -> f64 {
    if sd == 0.0 || mean <= 0.0 {
        return cfg.z_max;
    }
    let reach = cfg.error_buffer.saturating_sub(1);
    let (mut best_z, mut best_score) = (cfg.z_max, 0.0);
    for z in cfg.candidates() {
        let epsilon = mean + z * sd;
        // Merged buffer intervals of the points above ε, in order: count points and sequences.
        let (mut alarmed, mut sequences) = (0usize, 0usize);
        let mut covered_to: Option<usize> = None; // inclusive end of the current interval
        let (mut below_sum, mut below_sq, mut below_n) = (0.0, 0.0, 0usize);
        for (i, &e) in window.iter().enumerate() {
            if e < epsilon {
                below_sum += e;
                below_sq += e * e;
                below_n += 1;
            }
            if e > epsilon {
                let lo = i.saturating_sub(reach);
                let hi = (i + reach).min(window.len() - 1);
                match covered_to {
                    Some(end) if lo <= end + 1 => {
                        alarmed += hi.saturating_sub(end);
                        covered_to = Some(end.max(hi));
                    }
                    _ => {
                        alarmed += hi - lo + 1;
                        sequences += 1;
                        covered_to = Some(hi);
                    }
                }
            }
        }
        if alarmed == 0 || below_n == 0 {
            continue;
        }
        let below_mean = below_sum / below_n as f64;
        let below_sd = (below_sq / below_n as f64 - below_mean * below_mean)
            .max(0.0)
            .sqrt();
        let score = ((mean - below_mean) / mean + (sd - below_sd) / sd)
            / (sequences * sequences + alarmed) as f64;
        if score >= best_score && sequences <= 5 && 2 * alarmed < window.len() {
            best_z = z;
            best_score = score;
        }
    }
    best_z
}

/// Pruning: peaks sorted high to low, then the highest nominal score. Everything after the last
/// relative drop of at least `p` between consecutive entries is too close to nominal to trust;
/// returns the lowest peak that stays (a sequence survives when its peak is at least this), or
/// `None` when no drop is that large and every sequence is pruned.
fn pruning_floor(peaks: &[f64], highest_nominal: f64, p: f64) -> Option<f64> {
    let mut ladder: Vec<f64> = peaks.to_vec();
    ladder.sort_by(|a, b| b.total_cmp(a));
    // With nothing nominal (or a nominal zero) the last drop is to 0: a full 100%.
    ladder.push(highest_nominal);
    (0..ladder.len().saturating_sub(1))
        .rev()
        .find(|&i| ladder[i] > 0.0 && (ladder[i] - ladder[i + 1]) / ladder[i] >= p)
        .map(|i| ladder[i])
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Inclusive (start, end) of each run of `true`.
fn runs(flags: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &f) in flags.iter().enumerate() {
        match (f, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, flags.len() - 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(1.0f64, 0.1).unwrap();
        (0..n).map(|_| normal.sample(&mut rng).abs()).collect()
    }

    fn alarmed(v: &NdtVerdict, range: std::ops::Range<usize>) -> usize {
        v.alarms[range].iter().filter(|&&a| a == 1).count()
    }

    #[test]
    fn a_sustained_burst_is_alarmed_and_the_quiet_rest_is_not() {
        let mut scores = noise(6000, 1);
        for s in &mut scores[4000..4150] {
            *s += 5.0;
        }
        let v = ndt(&scores, NdtConfig::default()).unwrap();
        assert!(
            alarmed(&v, 4000..4150) > 140,
            "burst alarmed at {} of 150 points",
            alarmed(&v, 4000..4150)
        );
        let elsewhere = alarmed(&v, 0..3800) + alarmed(&v, 4500..6000);
        assert_eq!(elsewhere, 0, "alarms away from the burst");
        // ε is the judging window's μ + zσ on the smoothed scores: it sits above the noise and
        // below the smoothed burst.
        let peak = v.smoothed[4000..4150].iter().copied().fold(0.0, f64::max);
        assert!(v.thresholds[4100] > 1.2 && v.thresholds[4100] < peak);
    }

    #[test]
    fn noise_alone_raises_no_alarm() {
        let v = ndt(&noise(5000, 2), NdtConfig::default()).unwrap();
        assert_eq!(alarmed(&v, 0..5000), 0);
    }

    #[test]
    fn a_constant_series_gets_no_alarm_and_a_finite_threshold() {
        let v = ndt(&[3.0; 500], NdtConfig::default()).unwrap();
        assert!(v.alarms.iter().all(|&a| a == 0));
        assert!(v.thresholds.iter().all(|t| t.is_finite()));
    }

    fn survives_pruning(peaks: &[f64], k: usize, highest_nominal: f64, p: f64) -> bool {
        pruning_floor(peaks, highest_nominal, p).is_some_and(|floor| peaks[k] >= floor)
    }

    #[test]
    fn pruning_keeps_peaks_above_the_last_clear_drop() {
        // Peaks 10, 9.5 and 5 over a highest nominal score of 4.8: 10 → 9.5 is a 5% drop,
        // 9.5 → 5 a 47% drop, 5 → 4.8 only 4%. The two high sequences stay, the third is pruned.
        let peaks = [9.5, 5.0, 10.0];
        let kept: Vec<bool> = (0..3)
            .map(|k| survives_pruning(&peaks, k, 4.8, 0.13))
            .collect();
        assert_eq!(kept, vec![true, false, true]);
        // With no clear drop anywhere every sequence is pruned.
        assert!(!survives_pruning(&[5.0], 0, 4.8, 0.13));
        // A lone sequence well above nominal stays, and so does one over a window with nothing
        // nominal above zero.
        assert!(survives_pruning(&[5.0], 0, 1.0, 0.13));
        assert!(survives_pruning(&[5.0, 4.9], 1, 0.0, 0.13));
    }

    #[test]
    fn a_sequence_barely_above_the_highest_nominal_score_is_pruned() {
        // No smoothing, no buffer, one z (8): ε = μ + 8σ ≈ 1.81 on this window. Spikes of 10 and
        // 2.0 cross it, one of 1.8 stays nominal. 2.0 is only 10% above 1.8 (< p = 13%), so its
        // alarm is pruned; 10 is far above 2.0 and stays.
        let mut scores = vec![0.0; 2100];
        scores[100] = 10.0;
        scores[500] = 2.0;
        scores[900] = 1.8;
        let cfg = NdtConfig {
            smoothing_fraction: 1.0 / 2100.0,
            error_buffer: 1,
            z_min: 8.0,
            z_max: 8.5,
            z_step: 1.0,
            ..NdtConfig::default()
        };
        let v = ndt(&scores, cfg).unwrap();
        assert!(
            v.thresholds[0] > 1.8 && v.thresholds[0] < 2.0,
            "{}",
            v.thresholds[0]
        );
        let flagged: Vec<usize> = (0..2100).filter(|&i| v.alarms[i] == 1).collect();
        assert_eq!(flagged, vec![100]);
    }

    #[test]
    fn negative_scores_are_shifted_not_refused() {
        let mut scores: Vec<f64> = noise(3000, 4).iter().map(|s| s - 50.0).collect();
        for s in &mut scores[2000..2100] {
            *s += 6.0;
        }
        let v = ndt(&scores, NdtConfig::default()).unwrap();
        assert!(alarmed(&v, 2000..2100) > 90);
        assert!(v.smoothed.iter().all(|&s| s >= 0.0));
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        let err = ndt(&[], NdtConfig::default()).unwrap_err().to_string();
        assert!(err.contains("at least one score"), "{err}");
        let err = ndt(&[1.0, f64::NAN], NdtConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("score 1 is NaN"), "{err}");
        let cfg = NdtConfig {
            batch: 0,
            ..NdtConfig::default()
        };
        assert!(ndt(&[1.0], cfg).is_err());
    }

    #[test]
    fn ewma_matches_pandas_adjusted_form() {
        // pandas: pd.Series([1, 2, 3]).ewm(span=3).mean() = [1.0, 1.666667, 2.428571].
        let e = ewma([1.0, 2.0, 3.0].into_iter(), 3.0);
        assert!((e[0] - 1.0).abs() < 1e-9);
        assert!((e[1] - 5.0 / 3.0).abs() < 1e-6);
        assert!((e[2] - 17.0 / 7.0).abs() < 1e-6);
    }
}
