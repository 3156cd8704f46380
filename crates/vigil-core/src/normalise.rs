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
    /// Subtract the training median, divide by the training interquartile range, and clip to
    /// ±[`ROBUST_CLIP`]: outliers in training move neither the centre nor the scale, and an
    /// extreme test value cannot blow up a model's input.
    Robust,
    /// Leave values as they are.
    None,
}

impl NormKind {
    /// The name `--normaliser` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::MinMax => "minmax",
            Self::ZScore => "zscore",
            Self::Robust => "robust",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for NormKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "minmax" => Ok(Self::MinMax),
            "zscore" => Ok(Self::ZScore),
            "robust" => Ok(Self::Robust),
            "none" => Ok(Self::None),
            other => Err(CoreError::invalid(format!(
                "unknown normaliser `{other}`; use minmax, zscore, robust or none"
            ))),
        }
    }
}

/// Spreads (range or standard deviation) at or below this are a constant metric: a metric
/// whose training values differ by at most `CONSTANT_SPREAD` in absolute terms, or by at most
/// `CONSTANT_SPREAD` times their magnitude, never moved — what is left is rounding noise, which
/// dividing by the spread would blow up into signal. Such a metric keeps scale 1: its normalised
/// value is its distance from the training level, in its own units. A metric at 10^6 moving by
/// 10^-4 (a relative spread of 10^-10) is not constant and is scaled.
pub const CONSTANT_SPREAD: f64 = 1e-12;

/// The robust normaliser's clip: normalised values lie in ±10 interquartile ranges of the
/// training median (a test value further out is still far beyond every training value).
pub const ROBUST_CLIP: f64 = 10.0;

/// The drift report's default: a metric is reported when its values leave the training range
/// by more than the range's own width.
pub const DEFAULT_DRIFT_FACTOR: f64 = 1.0;

/// A metric whose values left its training range: by `factor` times the range's width (the
/// distance of the furthest value outside the range, over the range).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDrift {
    /// The metric's name.
    pub metric: String,
    /// How far outside the training range, in training ranges.
    pub factor: f64,
}

/// A fitted per-metric affine map `x -> (x - offset) / scale`, computed in f64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normaliser {
    /// The kind that was fitted.
    pub kind: NormKind,
    /// Per-metric offset (min or mean).
    pub offset: Vec<f64>,
    /// Per-metric scale (range or standard deviation); 1 for constant metrics (see
    /// [`CONSTANT_SPREAD`]) so that a metric that never moved in training does not divide by
    /// zero or by rounding noise.
    pub scale: Vec<f64>,
    /// Per-metric training minimum and maximum, for the drift report (empty in models written
    /// before it: no report; and then not written, so that such a model's manifest and
    /// fingerprint stay as they were).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_min: Vec<f64>,
    /// See `train_min`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_max: Vec<f64>,
}

impl Normaliser {
    /// Fits on the training series (assumed clean: every value finite).
    pub fn fit(kind: NormKind, train: &Series) -> Normaliser {
        let m = train.n_metrics();
        let t_len = train.len().max(1);
        let mut offset = vec![0f64; m];
        let mut scale = vec![1f64; m];
        let (mut train_min, mut train_max) = (vec![0f64; m], vec![0f64; m]);
        for j in 0..m {
            let column = (0..train.len()).map(|t| train.values[t * m + j]);
            let (lo, hi) = column
                .clone()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            let magnitude = lo.abs().max(hi.abs());
            (train_min[j], train_max[j]) = (lo, hi);
            match kind {
                NormKind::MinMax => {
                    offset[j] = lo;
                    scale[j] = non_degenerate(hi - lo, magnitude);
                }
                NormKind::ZScore => {
                    // Summing v/n, not v: a sum of values near f64's limit would overflow.
                    let mean = column.clone().map(|v| v / t_len as f64).sum::<f64>();
                    let var = column.map(|v| (v - mean).powi(2)).sum::<f64>() / t_len as f64;
                    offset[j] = mean;
                    scale[j] = non_degenerate(var.sqrt(), magnitude);
                }
                NormKind::Robust => {
                    let mut sorted: Vec<f64> = column.clone().collect();
                    sorted.sort_by(f64::total_cmp);
                    offset[j] = quantile_sorted(&sorted, 0.5);
                    let iqr = quantile_sorted(&sorted, 0.75) - quantile_sorted(&sorted, 0.25);
                    // A metric constant on more than half its steps (a sparse counter) has no
                    // interquartile range: its standard deviation scales it instead.
                    let mean = column.clone().map(|v| v / t_len as f64).sum::<f64>();
                    let var = column.map(|v| (v - mean).powi(2)).sum::<f64>() / t_len as f64;
                    scale[j] = if is_degenerate(iqr, magnitude) {
                        non_degenerate(var.sqrt(), magnitude)
                    } else {
                        iqr
                    };
                }
                NormKind::None => {}
            }
        }
        Normaliser {
            kind,
            offset,
            scale,
            train_min,
            train_max,
        }
    }

    /// Widens the kept training ranges to cover the finite values of `series` (a fine-tune has
    /// learnt from them), leaving the map itself unchanged.
    pub fn widen_range(&mut self, series: &Series) {
        let m = series.n_metrics();
        if self.train_min.len() != m || self.train_max.len() != m {
            return;
        }
        for row in series.values.chunks_exact(m) {
            for (j, &v) in row.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                self.train_min[j] = self.train_min[j].min(v);
                self.train_max[j] = self.train_max[j].max(v);
            }
        }
    }

    /// The metrics of `series` whose values leave their training range by more than `factor`
    /// times its width ([`MetricDrift`]), furthest first. Empty for a normaliser from before
    /// training ranges were kept. Non-finite values are not counted.
    pub fn drift(&self, series: &Series, factor: f64) -> Vec<MetricDrift> {
        let m = series.n_metrics();
        if self.train_min.len() != m || self.train_max.len() != m {
            return Vec::new();
        }
        let mut drifted: Vec<MetricDrift> = (0..m)
            .filter_map(|j| {
                let (lo, hi) = (self.train_min[j], self.train_max[j]);
                let width = non_degenerate(hi - lo, lo.abs().max(hi.abs()));
                let beyond = (0..series.len())
                    .map(|t| series.values[t * m + j])
                    .filter(|v| v.is_finite())
                    .map(|v| (v - hi).max(lo - v))
                    .fold(0.0, f64::max);
                let ratio = beyond / width;
                (ratio > factor).then(|| MetricDrift {
                    metric: series.metric_names[j].clone(),
                    factor: ratio,
                })
            })
            .collect();
        drifted.sort_by(|a, b| b.factor.total_cmp(&a.factor));
        drifted
    }

    /// The normalised values of `series`, row-major, as the f32 that models compute in. The
    /// series must have the metrics the normaliser was fitted on. A finite value that leaves
    /// f32's range once normalised is an error naming its cell (it would reach the model as
    /// infinity); non-finite values stay non-finite for the cleaning policy to have handled.
    pub fn apply(&self, series: &Series) -> Result<Vec<f32>> {
        let m = series.n_metrics();
        if m != self.offset.len() {
            return Err(CoreError::invalid(format!(
                "the normaliser was fitted on {} metrics but the data has {m}",
                self.offset.len()
            )));
        }
        let mut out = Vec::with_capacity(series.values.len());
        for (t, row) in series.values.chunks_exact(m).enumerate() {
            for (j, ((&v, o), s)) in row.iter().zip(&self.offset).zip(&self.scale).enumerate() {
                let mut z = ((v - o) / s) as f32;
                if self.kind == NormKind::Robust {
                    z = z.clamp(-ROBUST_CLIP as f32, ROBUST_CLIP as f32);
                }
                if v.is_finite() && !z.is_finite() {
                    let name = &series.metric_names[j];
                    let place = match &series.source {
                        Some(src) => src.locate(t, name),
                        None => format!("time step {t}, metric `{name}`"),
                    };
                    return Err(CoreError::invalid(format!(
                        "{place}: the value {v:e} is {:e} once normalised (normaliser {}: offset {o:e}, scale {s:e}), beyond the f32 range (±3.4e38) that models compute in; check the value, or train with a normaliser that brings it into range",
                        (v - o) / s,
                        self.kind.name()
                    )));
                }
                out.push(z);
            }
        }
        Ok(out)
    }
}

/// The `level` quantile of sorted values, interpolating between neighbours.
fn quantile_sorted(sorted: &[f64], level: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = level * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    let share = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * share
}

/// Whether a spread is no more than rounding noise ([`CONSTANT_SPREAD`]).
fn is_degenerate(spread: f64, magnitude: f64) -> bool {
    spread.is_nan() || spread <= CONSTANT_SPREAD.max(CONSTANT_SPREAD * magnitude)
}

fn non_degenerate(spread: f64, magnitude: f64) -> f64 {
    if is_degenerate(spread, magnitude) {
        1.0
    } else {
        // A range wider than f64 holds (±1e308 in one metric) is scaled by the largest f64.
        spread.min(f64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_normaliser_ignores_training_outliers_and_clips() {
        // Median 3, quartiles 2 and 4 (IQR 2), whatever the outlier at 1000.
        let train = Series::from_rows(1, vec![1.0, 2.0, 3.0, 4.0, 1000.0]).unwrap();
        let n = Normaliser::fit(NormKind::Robust, &train);
        assert_eq!((n.offset[0], n.scale[0]), (3.0, 2.0));
        let test = Series::from_rows(1, vec![5.0, 1e9, -1e9]).unwrap();
        assert_eq!(n.apply(&test).unwrap(), vec![1.0, 10.0, -10.0]);
        assert_eq!("robust".parse::<NormKind>().unwrap(), NormKind::Robust);
        // Zero on most steps: no interquartile range, so the standard deviation scales it.
        let mut values = vec![0.0; 10];
        values.extend([6.0, 12.0]);
        let n = Normaliser::fit(NormKind::Robust, &Series::from_rows(1, values).unwrap());
        assert_eq!(n.offset[0], 0.0);
        // mean 1.5, variance (10 · 1.5² + 4.5² + 10.5²) / 12 = 12.75
        assert!(
            (n.scale[0] - 12.75f64.sqrt()).abs() < 1e-12,
            "{}",
            n.scale[0]
        );
    }

    /// The range of the steps seen, widened to cover `series` (fine-tuning has seen them).
    #[test]
    fn widening_the_training_range_covers_new_data() {
        let train = Series::from_rows(1, vec![0.0, 1.0]).unwrap();
        let mut n = Normaliser::fit(NormKind::MinMax, &train);
        let new = Series::from_rows(1, vec![-2.0, 0.5, f64::NAN]).unwrap();
        assert_eq!(n.drift(&new, 1.0).len(), 1);
        n.widen_range(&new);
        assert_eq!((n.train_min[0], n.train_max[0]), (-2.0, 1.0));
        assert!(n.drift(&new, 0.0).is_empty());
        assert_eq!((n.offset[0], n.scale[0]), (0.0, 1.0));
    }

    #[test]
    fn drift_names_each_metric_that_leaves_its_training_range_by_more_than_the_factor() {
        let names = vec!["cpu".to_string(), "disk".to_string(), "net".to_string()];
        // Training ranges: cpu [0, 10], disk [0, 1], net [5, 5] (constant: width 1).
        let train = Series::new(names.clone(), vec![0.0, 0.0, 5.0, 10.0, 1.0, 5.0]).unwrap();
        let n = Normaliser::fit(NormKind::ZScore, &train);
        // cpu reaches 15 (0.5 ranges beyond), disk −3 (3 ranges), net 5 (none).
        let test = Series::new(names, vec![15.0, -3.0, 5.0, 5.0, 0.5, f64::NAN]).unwrap();
        let drifted = n.drift(&test, DEFAULT_DRIFT_FACTOR);
        assert_eq!(
            drifted,
            [MetricDrift {
                metric: "disk".into(),
                factor: 3.0
            }]
        );
        assert_eq!(n.drift(&test, 0.25).len(), 2);
        // A normaliser stored before ranges were kept reports nothing.
        let old = Normaliser {
            train_min: Vec::new(),
            train_max: Vec::new(),
            ..n
        };
        assert!(old.drift(&test, 0.0).is_empty());
        // ... and is written as it was read, without the new keys (its fingerprint holds).
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("train_min"), "{text}");
    }

    #[test]
    fn constant_metric_does_not_divide_by_zero() {
        let train = Series::from_rows(2, vec![1.0, 5.0, 3.0, 5.0]).unwrap();
        let n = Normaliser::fit(NormKind::MinMax, &train);
        let test = Series::from_rows(2, vec![2.0, 6.0]).unwrap();
        assert_eq!(n.apply(&test).unwrap(), vec![0.5, 1.0]);
        let z = Normaliser::fit(NormKind::ZScore, &train);
        assert_eq!(z.scale[1], 1.0);
        assert_eq!(z.offset[0], 2.0);
    }

    #[test]
    fn a_tiny_move_on_a_large_level_is_kept_and_rounding_noise_is_not() {
        // f32 holds 1e6 to 1/16: this metric would have been constant.
        let moving = Series::from_rows(1, vec![1e6, 1e6 + 1e-4, 1e6 + 2e-4]).unwrap();
        let n = Normaliser::fit(NormKind::MinMax, &moving);
        let z = n.apply(&moving).unwrap();
        assert!(
            (z[1] - 0.5).abs() < 1e-6 && (z[2] - 1.0).abs() < 1e-6,
            "{z:?}"
        );
        let noisy = Series::from_rows(1, vec![0.3, 0.1 + 0.2]).unwrap();
        assert_eq!(Normaliser::fit(NormKind::MinMax, &noisy).scale, vec![1.0]);
    }

    #[test]
    fn a_value_beyond_f32_after_normalising_names_its_cell() {
        let train = Series::new(vec!["load".into()], vec![0.0, 1.0]).unwrap();
        let n = Normaliser::fit(NormKind::None, &train);
        let test = Series::new(vec!["load".into()], vec![0.5, 1e39]).unwrap();
        let err = n.apply(&test).unwrap_err().to_string();
        assert!(err.contains("time step 1, metric `load`"), "{err}");
        assert!(err.contains("1e39"), "{err}");
        // Min-max brings the same value into range when training saw it.
        let wide = Series::new(vec!["load".into()], vec![0.0, 1e39]).unwrap();
        let n = Normaliser::fit(NormKind::MinMax, &wide);
        let z = n.apply(&test).unwrap();
        assert!(z[0] >= 0.0 && z[0] < 1e-30 && z[1] == 1.0, "{z:?}");
    }
}
