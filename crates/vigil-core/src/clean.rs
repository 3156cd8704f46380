//! Missing and non-finite values: a policy, applied the same way at train and detect time.

use crate::error::{CoreError, Result};
use crate::series::Series;
use serde::{Deserialize, Serialize};

/// What to do with NaN, ±Inf and empty cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// Refuse the data, naming the first bad cell (the default: silent repair hides problems).
    #[default]
    Error,
    /// Fill each gap by linear interpolation between its neighbours (edges take the nearest value).
    Interpolate,
}

impl std::str::FromStr for MissingPolicy {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "error" => Ok(Self::Error),
            "interpolate" => Ok(Self::Interpolate),
            other => Err(CoreError::invalid(format!(
                "unknown missing-value policy `{other}`; use `error` or `interpolate`"
            ))),
        }
    }
}

/// What admitting new data found, for the report: what cleaning did, and the metrics whose
/// values left their training range (filled in by whoever holds the normaliser).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanReport {
    /// Non-finite cells found (and repaired, under `interpolate`).
    pub missing_values: usize,
    /// Metrics beyond their training range by more than the drift factor, furthest first.
    #[serde(default)]
    pub drifted: Vec<crate::normalise::MetricDrift>,
}

/// Applies `policy` to every non-finite cell of `series`, in place.
pub fn clean(series: &mut Series, policy: MissingPolicy) -> Result<CleanReport> {
    if series.is_empty() {
        return Err(CoreError::invalid(match &series.source {
            Some(s) => format!("{}: the series is empty", s.path.display()),
            None => "the series is empty".into(),
        }));
    }
    let m = series.n_metrics();
    let t_len = series.len();
    let missing = series.values.iter().filter(|v| !v.is_finite()).count();
    if missing == 0 {
        return Ok(CleanReport::default());
    }
    match policy {
        MissingPolicy::Error => {
            let idx = series
                .values
                .iter()
                .position(|v| !v.is_finite())
                .unwrap_or(0);
            let (t, j) = (idx / m, idx % m);
            let value = series.values[idx];
            let kind = if value.is_nan() {
                "a missing value (NaN or empty cell)"
            } else {
                "an infinite value"
            };
            let name = &series.metric_names[j];
            let place = match &series.source {
                Some(src) => src.locate(t, name),
                None => format!("time step {t}, metric `{name}`"),
            };
            Err(CoreError::invalid(format!(
                "{place}: {kind}; {missing} non-finite cell(s) in all. Fix the data or pass `--missing interpolate`"
            )))
        }
        MissingPolicy::Interpolate => {
            for j in 0..m {
                let column: Vec<f64> = (0..t_len).map(|t| series.values[t * m + j]).collect();
                let filled = interpolate_gaps(&column).ok_or_else(|| {
                    CoreError::invalid(format!(
                        "metric `{}` has no finite value at all, so it cannot be interpolated; drop the column",
                        series.metric_names[j]
                    ))
                })?;
                for (t, v) in filled.into_iter().enumerate() {
                    series.values[t * m + j] = v;
                }
            }
            Ok(CleanReport {
                missing_values: missing,
                drifted: Vec::new(),
            })
        }
    }
}

/// Linear interpolation over non-finite runs; `None` when nothing is finite.
pub fn interpolate_gaps(x: &[f64]) -> Option<Vec<f64>> {
    let known: Vec<usize> = (0..x.len()).filter(|&i| x[i].is_finite()).collect();
    let (&first, &last) = (known.first()?, known.last()?);
    let mut out = x.to_vec();
    out[..first].fill(x[first]);
    out[last + 1..].fill(x[last]);
    for pair in known.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for (i, slot) in out.iter_mut().enumerate().take(b).skip(a + 1) {
            let f = (i - a) as f64 / (b - a) as f64;
            *slot = x[a] + f * (x[b] - x[a]);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_fills_inner_and_edge_gaps() {
        let x = [f64::NAN, 1.0, f64::NAN, f64::INFINITY, 4.0, f64::NAN];
        assert_eq!(
            interpolate_gaps(&x).unwrap(),
            vec![1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
        );
        assert!(interpolate_gaps(&[f64::NAN]).is_none());
    }

    #[test]
    fn error_policy_names_the_cell() {
        let mut s =
            Series::new(vec!["a".into(), "b".into()], vec![1.0, 2.0, 3.0, f64::NAN]).unwrap();
        let e = clean(&mut s, MissingPolicy::Error).unwrap_err().to_string();
        assert!(e.contains("time step 1, metric `b`"), "{e}");
        let r = clean(&mut s, MissingPolicy::Interpolate).unwrap();
        assert_eq!(r.missing_values, 1);
        assert_eq!(s.values[3], 2.0);
    }
}
