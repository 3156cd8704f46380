//! [`Series`]: one multivariate time series, the unit every other part of vigil works on.

use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// A labelled anomalous segment with the metrics operators named as its cause
/// (SMD's interpretation labels). Indices are 0-based; `end` is inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interpretation {
    /// First time step of the segment (0-based).
    pub start: usize,
    /// Last time step of the segment (0-based, inclusive).
    pub end: usize,
    /// 0-based metric indices named as the cause.
    pub metrics: Vec<usize>,
}

/// A multivariate time series: `T` time steps by `M` metrics, stored row-major as f64 — the
/// values as read, exact to the file's precision. Models see f32 only after normalising
/// ([`crate::normalise::Normaliser::apply`]), where every value is near 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric (column) names, `M` of them.
    pub metric_names: Vec<String>,
    /// Optional timestamps in epoch seconds, `T` of them.
    pub timestamps: Option<Vec<i64>>,
    /// Values, row-major: `values[t * M + m]`.
    pub values: Vec<f64>,
    /// Optional point labels (0 normal, 1 anomalous), `T` of them.
    pub labels: Option<Vec<u8>>,
    /// Optional per-segment root-cause metrics (SMD interpretation labels).
    pub interpretation: Option<Vec<Interpretation>>,
    /// Where the rows came from, so that later steps (cleaning) can name file and line.
    pub source: Option<Source>,
}

/// The file a series was read from and the line its first row sits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub path: std::path::PathBuf,
    /// 1-based line number of time step 0 (2 for a CSV file with a header).
    pub first_line: usize,
}

impl Source {
    /// Describes time step `t`, metric `m` of a series read from this source.
    pub fn locate(&self, t: usize, column: &str) -> String {
        format!(
            "{}:{}: column `{column}`",
            self.path.display(),
            self.first_line + t
        )
    }
}

impl Series {
    /// Builds a series from row-major values, checking the shape.
    pub fn new(metric_names: Vec<String>, values: Vec<f64>) -> Result<Self> {
        if metric_names.is_empty() {
            return Err(CoreError::invalid("a series needs at least one metric"));
        }
        if !values.len().is_multiple_of(metric_names.len()) {
            return Err(CoreError::invalid(format!(
                "{} values do not divide into rows of {} metrics",
                values.len(),
                metric_names.len()
            )));
        }
        Ok(Series {
            metric_names,
            timestamps: None,
            values,
            labels: None,
            interpretation: None,
            source: None,
        })
    }

    /// Builds a series with default metric names `m0, m1, ...`.
    pub fn from_rows(n_metrics: usize, values: Vec<f64>) -> Result<Self> {
        Series::new(default_metric_names(n_metrics), values)
    }

    /// Number of time steps `T`.
    pub fn len(&self) -> usize {
        self.values.len() / self.n_metrics().max(1)
    }

    /// True when the series has no time step.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of metrics `M`.
    pub fn n_metrics(&self) -> usize {
        self.metric_names.len()
    }

    /// The values of time step `t`.
    pub fn row(&self, t: usize) -> &[f64] {
        let m = self.n_metrics();
        &self.values[t * m..(t + 1) * m]
    }

    /// A copy of time steps `start..end` (labels, timestamps and interpretations follow).
    pub fn slice(&self, start: usize, end: usize) -> Series {
        let m = self.n_metrics();
        let end = end.min(self.len());
        let start = start.min(end);
        Series {
            metric_names: self.metric_names.clone(),
            timestamps: self.timestamps.as_ref().map(|t| t[start..end].to_vec()),
            values: self.values[start * m..end * m].to_vec(),
            labels: self.labels.as_ref().map(|l| l[start..end].to_vec()),
            interpretation: self.interpretation.as_ref().map(|segs| {
                segs.iter()
                    .filter(|s| s.end >= start && s.start < end)
                    .map(|s| Interpretation {
                        start: s.start.max(start) - start,
                        end: s.end.min(end - 1) - start,
                        metrics: s.metrics.clone(),
                    })
                    .collect()
            }),
            source: self.source.as_ref().map(|src| Source {
                path: src.path.clone(),
                first_line: src.first_line + start,
            }),
        }
    }

    /// Removes the metric column `name` and returns its values, one per step (a column that is
    /// not a metric, such as per-step weights read with the data). Refused when there is no
    /// such column, naming the columns there are, or when it is the only one.
    pub fn take_column(&mut self, name: &str) -> Result<Vec<f64>> {
        let Some(index) = self.metric_names.iter().position(|n| n == name) else {
            return Err(CoreError::Invalid(format!(
                "no column `{name}`; the data's columns are: {}",
                self.metric_names.join(", ")
            )));
        };
        if self.metric_names.len() == 1 {
            return Err(CoreError::Invalid(format!(
                "`{name}` is the data's only column; the metrics must remain"
            )));
        }
        let m = self.n_metrics();
        let column = self.values.iter().skip(index).step_by(m).copied().collect();
        let mut position = 0;
        self.values.retain(|_| {
            let keep = position % m != index;
            position += 1;
            keep
        });
        self.metric_names.remove(index);
        // Interpretation labels name metrics by index: the column's own go, later ones move up.
        for segment in self.interpretation.iter_mut().flatten() {
            segment.metrics.retain(|&j| j != index);
            segment
                .metrics
                .iter_mut()
                .filter(|j| **j > index)
                .for_each(|j| *j -= 1);
        }
        Ok(column)
    }

    /// Checks that `other` has the same metrics, in the same order, as `self`
    /// (the test series of a model must match its training series).
    pub fn check_same_metrics(&self, other: &Series, what: &str) -> Result<()> {
        if self.metric_names != other.metric_names {
            let n_self = self.n_metrics();
            let n_other = other.n_metrics();
            let detail = if n_self != n_other {
                format!("{n_self} metrics were expected but {what} has {n_other}")
            } else {
                let (i, (a, b)) = self
                    .metric_names
                    .iter()
                    .zip(&other.metric_names)
                    .enumerate()
                    .find(|(_, (a, b))| a != b)
                    .unwrap_or((0, (&self.metric_names[0], &other.metric_names[0])));
                format!("column {} is `{b}` in {what} but `{a}` was expected", i + 1)
            };
            return Err(CoreError::invalid(format!(
                "metrics do not match the model: {detail}; score data with the same columns, in the same order, as the training data"
            )));
        }
        Ok(())
    }
}

/// `m0, m1, ...` for files without a header.
pub fn default_metric_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

/// One monitored entity (a server, a base station, ...) with its training and test series.
#[derive(Debug, Clone)]
pub struct Entity {
    /// Entity name (e.g. `machine-1-6`).
    pub name: String,
    /// Training series (assumed mostly normal; labels, when present, are used for fitting only
    /// by supervised detectors, which learn to classify them).
    pub train: Series,
    /// Test series, usually with labels.
    pub test: Series,
}

/// A named collection of entities, as a benchmark data set is.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Data set name (`smd`, `skab`, ...).
    pub name: String,
    /// Its entities, in a stable order.
    pub entities: Vec<Entity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_column_removes_one_metric_and_returns_its_values() {
        let names = ["a", "weight", "b"].map(String::from).to_vec();
        let mut s = Series::new(names, (0..6).map(f64::from).collect()).unwrap();
        s.interpretation = Some(vec![Interpretation {
            start: 0,
            end: 1,
            metrics: vec![0, 1, 2],
        }]);
        assert_eq!(s.take_column("weight").unwrap(), [1.0, 4.0]);
        assert_eq!(s.interpretation.as_ref().unwrap()[0].metrics, [0, 1]);
        assert_eq!(s.metric_names, ["a", "b"]);
        assert_eq!(s.values, [0.0, 2.0, 3.0, 5.0]);
        let why = s.take_column("wieght").unwrap_err().to_string();
        assert!(
            why.contains("no column `wieght`") && why.contains("a, b"),
            "{why}"
        );
        s.take_column("a").unwrap();
        assert!(s
            .take_column("b")
            .unwrap_err()
            .to_string()
            .contains("only column"));
    }

    #[test]
    fn slice_keeps_labels_and_interpretations_aligned() {
        let mut s = Series::from_rows(2, (0..20).map(f64::from).collect()).unwrap();
        s.labels = Some(vec![0, 0, 1, 1, 0, 0, 0, 1, 1, 1]);
        s.interpretation = Some(vec![
            Interpretation {
                start: 2,
                end: 3,
                metrics: vec![0],
            },
            Interpretation {
                start: 7,
                end: 9,
                metrics: vec![1],
            },
        ]);
        let part = s.slice(3, 8);
        assert_eq!(part.len(), 5);
        assert_eq!(part.row(0), &[6.0, 7.0]);
        assert_eq!(part.labels.unwrap(), vec![1, 0, 0, 0, 1]);
        let segs = part.interpretation.unwrap();
        assert_eq!(
            segs[0],
            Interpretation {
                start: 0,
                end: 0,
                metrics: vec![0]
            }
        );
        assert_eq!(
            segs[1],
            Interpretation {
                start: 4,
                end: 4,
                metrics: vec![1]
            }
        );
    }

    #[test]
    fn metric_mismatch_names_the_column() {
        let a = Series::new(vec!["cpu".into(), "mem".into()], vec![0.0; 4]).unwrap();
        let b = Series::new(vec!["cpu".into(), "disk".into()], vec![0.0; 4]).unwrap();
        let err = a
            .check_same_metrics(&b, "test.csv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("column 2 is `disk`"), "{err}");
        let c = Series::new(vec!["cpu".into()], vec![0.0; 2]).unwrap();
        let err = a
            .check_same_metrics(&c, "test.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2 metrics were expected but test.csv has 1"),
            "{err}"
        );
    }
}
