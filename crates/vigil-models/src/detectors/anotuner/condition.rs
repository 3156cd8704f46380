//! AnoTuner's condition: the seasonal-trend decomposition (STL, Cleveland et al. 1990) of each
//! window, metric by metric. The CVAE's encoder and decoder both see it, so the latent code only
//! has to carry what trend and seasonality do not explain, and a generated window (false-negative
//! augmentation) keeps the trend and season of the window it was generated from.
//!
//! The decomposition is of the window alone, not of the whole series: a stream scores its newest
//! step from its last `window` steps ([`crate::Detector::score_newest`]), so a condition that
//! looked further back would differ between training, batch scoring and the stream. STL is the
//! `stlrs` crate (a port of the authors' Fortran). Plain STL by default: on windows this short
//! its robustness iterations do the opposite of their purpose — a spike of 4 above a constant
//! 24-step window (period 6) left 1.6 of itself in trend + season with plain STL, 3.8 after two
//! robustness iterations, 3.8 after five, 1.2 after fifteen (`stl_robust_loops` sets them).

use crate::error::{ModelError, Result};
use rayon::prelude::*;

/// How each window is decomposed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decomposer {
    /// Steps of one seasonal cycle (at least 2; a window holds at least two cycles).
    pub period: usize,
    /// STL's outer (robustness) iterations; 0 for the plain, non-robust decomposition.
    pub robust_loops: usize,
}

impl Decomposer {
    /// Values of the condition of one window of `window` steps and `m` metrics: its trend, then
    /// its seasonal part, each `window × m` in the window's own (step-major) layout.
    pub fn width(window: usize, m: usize) -> usize {
        2 * window * m
    }

    /// Appends the condition of `values` (one window, `window × m` step-major) to `out`.
    pub fn condition_into(&self, values: &[f32], m: usize, out: &mut Vec<f32>) -> Result<()> {
        let window = values.len() / m.max(1);
        let start = out.len();
        out.resize(start + Self::width(window, m), 0.0);
        self.condition_of(values, m, &mut out[start..])
    }

    /// Writes the condition of `values` (one window) into `out` ([`Self::width`] values).
    fn condition_of(&self, values: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        let window = values.len() / m.max(1);
        // stlrs sorts residuals with `partial_cmp().unwrap()`: a NaN would panic inside it.
        // The pipeline cleans data first; a caller of the bare detector may not have.
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(ModelError::Shape(format!(
                "anotuner: a window holds the value {bad}; clean missing and infinite values first"
            )));
        }
        let (trend, seasonal) = out.split_at_mut(window * m);
        let mut params = stlrs::params();
        params
            .robust(self.robust_loops > 0)
            .outer_loops(self.robust_loops);
        let mut column = vec![0.0f32; window];
        for metric in 0..m {
            column
                .iter_mut()
                .enumerate()
                .for_each(|(t, v)| *v = values[t * m + metric]);
            let parts = params.fit(&column, self.period).map_err(|e| {
                ModelError::Training(format!(
                    "anotuner: STL of a {window}-step window with period {}: {e} \
                     (the window must hold at least two periods)",
                    self.period
                ))
            })?;
            for t in 0..window {
                trend[t * m + metric] = parts.trend()[t];
                seasonal[t * m + metric] = parts.seasonal()[t];
            }
        }
        Ok(())
    }

    /// The conditions of `n` windows laid end to end in `windows` (each `window × m`), in order,
    /// decomposed in parallel.
    pub fn conditions(&self, windows: &[f32], n: usize, m: usize) -> Result<Vec<f32>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let d = windows.len() / n;
        let mut out = vec![0.0f32; n * 2 * d];
        // Each window's condition straight into its place: no per-window buffer to join.
        out.par_chunks_exact_mut(2 * d)
            .zip(windows.par_chunks_exact(d))
            .try_for_each(|(condition, one)| self.condition_of(one, m, condition))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_plus_season_follows_a_seasonal_window_and_leaves_most_of_a_spike_out() {
        // Two metrics over 24 steps: a ramp with a period-6 wave, and a constant with one spike.
        let (w, m, period) = (24, 2, 6);
        let mut values = Vec::new();
        for t in 0..w {
            let wave = (2.0 * std::f32::consts::PI * t as f32 / period as f32).sin();
            values.push(0.05 * t as f32 + wave);
            values.push(if t == 13 { 5.0 } else { 1.0 });
        }
        let stl = Decomposer {
            period,
            robust_loops: 0,
        };
        let mut c = Vec::new();
        stl.condition_into(&values, m, &mut c).unwrap();
        assert_eq!(c.len(), Decomposer::width(w, m));
        let (trend, seasonal) = c.split_at(w * m);
        for t in 2..w - 2 {
            let explained = trend[t * m] + seasonal[t * m];
            assert!((explained - values[t * m]).abs() < 0.2, "step {t}");
        }
        // Most of a spike (4 above a constant) stays in the remainder, where the CVAE sees it.
        let smooth = trend[13 * m + 1] + seasonal[13 * m + 1];
        assert!(smooth - 1.0 < 2.0, "{smooth}");
        // Batch and one-by-one agree, in order.
        let two = [values.clone(), values.iter().map(|v| -v).collect()].concat();
        let both = stl.conditions(&two, 2, m).unwrap();
        assert_eq!(&both[..c.len()], &c[..]);
    }

    #[test]
    fn a_window_shorter_than_two_periods_is_an_error_that_says_so() {
        let stl = Decomposer {
            period: 6,
            robust_loops: 0,
        };
        let err = stl
            .condition_into(&[0.0; 10], 1, &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("two periods"), "{err}");
    }
}
