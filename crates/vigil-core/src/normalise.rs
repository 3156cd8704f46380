//! Normalisers: fitted on training data only, stored with the model, applied unchanged at detect time.

use crate::error::{CoreError, Result};
use crate::series::Series;
use serde::{Deserialize, Serialize};

/// Which normalisation to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// Scale each metric to [0, 1] over the training data.
    #[default]
    MinMax,
    /// Subtract the training mean, divide by the training standard deviation.
    ZScore,
    /// Leave values as they are.
    None,
}

impl std::str::FromStr for NormKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "minmax" => Ok(Self::MinMax),
            "zscore" => Ok(Self::ZScore),
            "none" => Ok(Self::None),
            other => Err(CoreError::invalid(format!(
                "unknown normaliser `{other}`; use minmax, zscore or none"
            ))),
        }
    }
}

/// A fitted per-metric affine map `x -> (x - offset) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normaliser {
    /// The kind that was fitted.
    pub kind: NormKind,
    /// Per-metric offset (min or mean).
    pub offset: Vec<f32>,
    /// Per-metric scale (range or standard deviation); 1 for constant metrics so that
    /// a metric that never moved in training does not divide by zero.
    pub scale: Vec<f32>,
}

impl Normaliser {
    /// Fits on the training series (assumed clean: every value finite).
    pub fn fit(kind: NormKind, train: &Series) -> Normaliser {
        let m = train.n_metrics();
        let t_len = train.len().max(1);
        let mut offset = vec![0f32; m];
        let mut scale = vec![1f32; m];
        for j in 0..m {
            let column = (0..train.len()).map(|t| train.values[t * m + j] as f64);
            match kind {
                NormKind::MinMax => {
                    let (lo, hi) = column
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                            (lo.min(v), hi.max(v))
                        });
                    offset[j] = lo as f32;
                    scale[j] = non_degenerate(hi - lo);
                }
                NormKind::ZScore => {
                    let values: Vec<f64> = column.collect();
                    let mean = values.iter().sum::<f64>() / t_len as f64;
                    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / t_len as f64;
                    offset[j] = mean as f32;
                    scale[j] = non_degenerate(var.sqrt());
                }
                NormKind::None => {}
            }
        }
        Normaliser {
            kind,
            offset,
            scale,
        }
    }

    /// Applies the map in place. The series must have the metrics the normaliser was fitted on.
    pub fn apply(&self, series: &mut Series) -> Result<()> {
        let m = series.n_metrics();
        if m != self.offset.len() {
            return Err(CoreError::invalid(format!(
                "the normaliser was fitted on {} metrics but the data has {m}",
                self.offset.len()
            )));
        }
        for row in series.values.chunks_exact_mut(m) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = (*v - o) / s;
            }
        }
        Ok(())
    }
}

fn non_degenerate(spread: f64) -> f32 {
    if spread.is_finite() && spread > 1e-12 {
        spread as f32
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_metric_does_not_divide_by_zero() {
        let train = Series::from_rows(2, vec![1.0, 5.0, 3.0, 5.0]).unwrap();
        let n = Normaliser::fit(NormKind::MinMax, &train);
        let mut test = Series::from_rows(2, vec![2.0, 6.0]).unwrap();
        n.apply(&mut test).unwrap();
        assert_eq!(test.values, vec![0.5, 1.0]);
        let z = Normaliser::fit(NormKind::ZScore, &train);
        assert_eq!(z.scale[1], 1.0);
        assert_eq!(z.offset[0], 2.0);
    }
}
