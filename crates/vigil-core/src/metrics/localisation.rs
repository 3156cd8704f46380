//! Fault localisation: which component of a system a detector's per-metric contributions point
//! at, and how often the labelled faulty component is ranked first or among the first three
//! (top-k accuracy, as root-cause localisation papers report it).
//!
//! A component's share of a stretch of steps is the sum of its columns' contributions over those
//! steps; the ranking orders components by it, largest first (ties keep component order, so
//! rankings are deterministic). A fault is ranked over its labelled interval: localisation is
//! judged given when the fault happened, apart from whether the threshold caught it. In the
//! accuracy, the faulty component's rank counts every other component whose share is at least
//! its own: a tie is not a hit, so a model that puts nothing on any component gains nothing from
//! the component order.

use crate::error::{CoreError, Result};
use std::path::Path;

/// Components named by the columns' prefixes (`component.metric`): the component names in
/// order of first appearance and each column's component.
pub fn components_of_columns(metric_names: &[String]) -> Result<(Vec<String>, Vec<usize>)> {
    let mut names: Vec<String> = Vec::new();
    let mut of = Vec::with_capacity(metric_names.len());
    for column in metric_names {
        let Some((component, _)) = column
            .split_once('.')
            .filter(|(c, m)| !c.is_empty() && !m.is_empty())
        else {
            return Err(CoreError::invalid(format!(
                "column `{column}` does not name a component; localising faults needs every \
                 metric column named `component.metric`"
            )));
        };
        let index = match names.iter().position(|n| n == component) {
            Some(i) => i,
            None => {
                names.push(component.to_string());
                names.len() - 1
            }
        };
        of.push(index);
    }
    Ok((names, of))
}

/// Each component's summed contribution over `steps` (`per_metric` is `T x M` row-major,
/// `component_of[j]` the component of column `j`).
pub fn component_scores(
    per_metric: &[f32],
    component_of: &[usize],
    n_components: usize,
    steps: impl IntoIterator<Item = usize>,
) -> Vec<f64> {
    let m = component_of.len();
    let mut sums = vec![0.0f64; n_components];
    for t in steps {
        for (v, &j) in per_metric[t * m..(t + 1) * m].iter().zip(component_of) {
            // A NaN or infinite contribution says nothing about where the fault is.
            if v.is_finite() {
                sums[j] += *v as f64;
            }
        }
    }
    sums
}

/// Component indices ordered by score, largest first (ties in component order).
pub fn ranking(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// A labelled fault: steps `start..=end` at component `component`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledFault {
    /// First step.
    pub start: usize,
    /// Last step (inclusive).
    pub end: usize,
    /// The faulty component's name.
    pub component: String,
    /// Where it was read: the 1-based line of its file (0 when it was not read from one).
    pub line: usize,
}

/// Reads a faults file: CSV with a header holding `start`, `end` and `component` (other columns,
/// such as `kind`, are kept out); steps are rows of the scored series, from 0.
pub fn read_faults(path: &Path) -> Result<Vec<LabelledFault>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| CoreError::file(path, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| CoreError::file(path, e.to_string()))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            CoreError::file(
                path,
                format!("has no `{name}` column; a faults file has the header start,end,component"),
            )
        })
    };
    let (start, end, component) = (column("start")?, column("end")?, column("component")?);
    let mut faults = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| CoreError::Parse {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line() as usize),
            column: None,
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let step = |k: usize, name: &str| -> Result<usize> {
            record
                .get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| CoreError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column: Some(name.into()),
                    message: format!(
                        "`{}` is not a step number (a row of the series, from 0)",
                        record.get(k).unwrap_or("")
                    ),
                })
        };
        let fault = LabelledFault {
            start: step(start, "start")?,
            end: step(end, "end")?,
            component: record.get(component).unwrap_or("").to_string(),
            line,
        };
        if fault.end < fault.start {
            return Err(CoreError::Parse {
                path: path.to_path_buf(),
                line,
                column: Some("end".into()),
                message: format!("end {} is before start {}", fault.end, fault.start),
            });
        }
        faults.push(fault);
    }
    if faults.is_empty() {
        return Err(CoreError::file(
            path,
            "holds no fault; add at least one row",
        ));
    }
    Ok(faults)
}

/// Checks faults read from `path` against the data before anything is scored: each must name
/// one of `components` and end within the `steps` steps.
pub fn check_faults(
    path: &Path,
    faults: &[LabelledFault],
    components: &[String],
    steps: usize,
) -> Result<()> {
    for fault in faults {
        let problem = if !components.contains(&fault.component) {
            Some((
                "component",
                format!(
                    "names component `{}`, which the data does not have (components: {})",
                    fault.component,
                    components.join(", ")
                ),
            ))
        } else if fault.end >= steps {
            Some((
                "end",
                format!("ends at step {}, past the data's {steps} steps", fault.end),
            ))
        } else {
            None
        };
        if let Some((column, message)) = problem {
            return Err(CoreError::Parse {
                path: path.to_path_buf(),
                line: fault.line,
                column: Some(column.into()),
                message,
            });
        }
    }
    Ok(())
}

/// Top-1 and top-3 localisation accuracy.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Localisation {
    /// Share of faults whose component is ranked first.
    pub top1: f64,
    /// Share of faults whose component is among the first three.
    pub top3: f64,
    /// Faults judged.
    pub faults: usize,
}

/// Ranks the components over each fault's interval and counts the faulty one's rank.
/// `components` names the components in `component_of`'s numbering; a fault naming another
/// component, or reaching past the scores, is an error.
pub fn localisation(
    per_metric: &[f32],
    component_of: &[usize],
    components: &[String],
    faults: &[LabelledFault],
) -> Result<Localisation> {
    let steps = per_metric.len() / component_of.len().max(1);
    let (mut top1, mut top3) = (0usize, 0usize);
    for fault in faults {
        let truth = components
            .iter()
            .position(|c| *c == fault.component)
            .ok_or_else(|| {
                CoreError::invalid(format!(
                    "fault at steps {}..={} names component `{}`, which the data does not have \
                     (components: {})",
                    fault.start,
                    fault.end,
                    fault.component,
                    components.join(", ")
                ))
            })?;
        if fault.end >= steps {
            return Err(CoreError::invalid(format!(
                "fault at steps {}..={} reaches past the {steps} scored steps",
                fault.start, fault.end
            )));
        }
        let scores = component_scores(
            per_metric,
            component_of,
            components.len(),
            fault.start..=fault.end,
        );
        // Pessimistic about ties: every other component scoring at least as much ranks above.
        let rank = (0..scores.len())
            .filter(|&c| c != truth && scores[c] >= scores[truth])
            .count();
        top1 += usize::from(rank == 0);
        top3 += usize::from(rank < 3);
    }
    let n = faults.len().max(1) as f64;
    Ok(Localisation {
        top1: top1 as f64 / n,
        top3: top3 as f64 / n,
        faults: faults.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_components_by_their_columns_over_the_fault() {
        let names: Vec<String> = ["a.x", "a.y", "b.x", "b.y", "c.x", "c.y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (components, of) = components_of_columns(&names).unwrap();
        assert_eq!(components, ["a", "b", "c"]);
        assert_eq!(of, [0, 0, 1, 1, 2, 2]);
        // Step 0: b largest; step 1: c largest.
        let per_metric = [
            0.1, 0.1, 0.5, 0.4, 0.2, 0.2, //
            0.0, 0.1, 0.1, 0.1, 0.9, 0.9,
        ];
        let fault = |start, end, c: &str| LabelledFault {
            start,
            end,
            component: c.into(),
            line: 0,
        };
        let l = localisation(&per_metric, &of, &components, &[fault(0, 0, "b")]).unwrap();
        assert_eq!((l.top1, l.top3), (1.0, 1.0));
        let l = localisation(&per_metric, &of, &components, &[fault(0, 1, "a")]).unwrap();
        assert_eq!((l.top1, l.top3), (0.0, 1.0));
        let err = localisation(&per_metric, &of, &components, &[fault(0, 1, "z")]).unwrap_err();
        assert!(err.to_string().contains("`z`"));
        assert!(components_of_columns(&["cpu".to_string()]).is_err());
        // All-equal shares: a tie is not a hit.
        let flat = [0.0f32; 6];
        let l = localisation(&flat, &of, &components, &[fault(0, 0, "a")]).unwrap();
        assert_eq!((l.top1, l.top3), (0.0, 1.0));
    }

    #[test]
    fn reads_faults_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.csv");
        std::fs::write(&path, "start,end,component,kind\n3,9,db,cpu-hog\n").unwrap();
        let faults = read_faults(&path).unwrap();
        assert_eq!(
            faults,
            [LabelledFault {
                start: 3,
                end: 9,
                component: "db".into(),
                line: 2,
            }]
        );
        std::fs::write(&path, "start,end,component\n9,3,db\n").unwrap();
        let err = read_faults(&path).unwrap_err().to_string();
        assert!(
            err.contains(":2: column end: end 3 is before start 9"),
            "{err}"
        );
    }
}
