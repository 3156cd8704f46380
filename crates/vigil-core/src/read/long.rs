//! Long CSV: one value a row — `timestamp,component,metric,value`, optionally `label` — as
//! metric stores export per-component series, pivoted into a wide series with one column per
//! `component.metric` (the layout a topology reads) and one row per timestamp, in time order.
//!
//! Columns come in the order of their first row; a timestamp at which a component did not report
//! a metric leaves that cell missing (NaN, for the cleaning policy); a step's label is the
//! largest of its rows' labels. A `(timestamp, component, metric)` given twice is an error
//! naming both lines.

use super::csv::{parse_label, parse_timestamp, parse_value};
use crate::error::{CoreError, Result};
use crate::series::Series;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The columns a long file's header must hold.
pub const LONG_COLUMNS: [&str; 4] = ["timestamp", "component", "metric", "value"];

/// Whether a header (trimmed names) is the long layout's.
pub fn is_long_header(names: &[&str]) -> bool {
    LONG_COLUMNS.iter().all(|c| names.contains(c))
        && names
            .iter()
            .all(|n| LONG_COLUMNS.contains(n) || *n == "label")
}

fn parse_error(path: &Path, line: usize, column: &str, message: String) -> CoreError {
    CoreError::Parse {
        path: path.to_path_buf(),
        line,
        column: Some(column.to_string()),
        message,
    }
}

/// Reads the long file at `path` (its bytes and delimiter already found by the CSV reader).
pub fn read_long_csv(path: &Path, bytes: &[u8], delimiter: u8) -> Result<Series> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| CoreError::file(path, format!("unreadable header: {e}")))?
        .clone();
    let at = |name: &str| header.iter().position(|h| h == name);
    let (ts, component, metric, value) = (
        at("timestamp").expect("checked by is_long_header"),
        at("component").expect("checked by is_long_header"),
        at("metric").expect("checked by is_long_header"),
        at("value").expect("checked by is_long_header"),
    );
    let label = at("label");
    let mut columns: Vec<String> = Vec::new();
    let mut column_of: HashMap<String, usize> = HashMap::new();
    // (timestamp, column) -> (value, line); a label per timestamp.
    let mut cells: BTreeMap<(i64, usize), (f64, usize)> = BTreeMap::new();
    let mut labels: BTreeMap<i64, u8> = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| CoreError::Parse {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line() as usize),
            column: None,
            message: format!("malformed CSV: {e}"),
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cell = |k: usize| record.get(k).unwrap_or("");
        let stamp = parse_timestamp(cell(ts)).ok_or_else(|| {
            parse_error(
                path,
                line,
                "timestamp",
                format!(
                    "`{}` is not a timestamp (use RFC 3339 or epoch seconds)",
                    cell(ts)
                ),
            )
        })?;
        let (c, m) = (cell(component), cell(metric));
        if c.is_empty() || m.is_empty() || c.contains('.') {
            return Err(parse_error(
                path,
                line,
                "component",
                format!(
                "component `{c}` and metric `{m}` must be non-empty, and a component name holds \
                 no dot (the wide column is `component.metric`)"
            ),
            ));
        }
        let v = parse_value(cell(value)).ok_or_else(|| {
            parse_error(
                path,
                line,
                "value",
                format!("`{}` is not a number", cell(value)),
            )
        })?;
        let name = format!("{c}.{m}");
        let next = columns.len();
        let column = *column_of.entry(name.clone()).or_insert_with(|| {
            columns.push(name.clone());
            next
        });
        if let Some((_, first)) = cells.insert((stamp, column), (v, line)) {
            return Err(parse_error(
                path,
                line,
                "value",
                format!(
                    "`{name}` at timestamp {} is given twice (first on line {first}); give each \
                 component's metric one value per timestamp",
                    cell(ts)
                ),
            ));
        }
        if let Some(k) = label {
            let l = parse_label(cell(k)).ok_or_else(|| {
                parse_error(
                    path,
                    line,
                    "label",
                    format!("label `{}` is not 0 or 1", cell(k)),
                )
            })?;
            let slot = labels.entry(stamp).or_insert(0);
            *slot = (*slot).max(l);
        }
    }
    if cells.is_empty() {
        return Err(CoreError::file(
            path,
            "the file has a header but no data rows; add at least one row of values",
        ));
    }
    let stamps: Vec<i64> = {
        let mut s: Vec<i64> = cells.keys().map(|&(t, _)| t).collect();
        s.dedup();
        s
    };
    let row_of: HashMap<i64, usize> = stamps.iter().enumerate().map(|(r, &t)| (t, r)).collect();
    let m = columns.len();
    let mut values = vec![f64::NAN; stamps.len() * m];
    for (&(t, column), &(v, _)) in &cells {
        values[row_of[&t] * m + column] = v;
    }
    let mut series = Series::new(columns, values)?;
    if label.is_some() {
        series.labels = Some(stamps.iter().map(|t| labels[t]).collect());
    }
    series.timestamps = Some(stamps);
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Series> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.csv");
        std::fs::write(&path, text).unwrap();
        crate::read::read_series(&path)
    }

    #[test]
    fn pivots_to_one_column_per_component_metric_in_time_order() {
        let s = read(
            "timestamp,component,metric,value,label\n\
             20,web,cpu,3,0\n10,web,cpu,1,0\n10,db,cpu,2,0\n20,db,cpu,4,1\n30,web,cpu,5,0\n",
        )
        .unwrap();
        assert_eq!(s.metric_names, ["web.cpu", "db.cpu"]);
        assert_eq!(s.timestamps.as_deref(), Some(&[10, 20, 30][..]));
        assert_eq!(&s.values[..4], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.values[4], 5.0);
        assert!(s.values[5].is_nan(), "db did not report at 30");
        assert_eq!(s.labels.as_deref(), Some(&[0, 1, 0][..]));
    }

    #[test]
    fn a_value_given_twice_names_both_lines() {
        let err = read("timestamp,component,metric,value\n1,web,cpu,1\n1,web,cpu,2\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                ":3: column value: `web.cpu` at timestamp 1 is given twice (first on line 2)"
            ),
            "{err}"
        );
        let err = read("timestamp,component,metric,value\n1,w.b,cpu,1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2: column component"), "{err}");
    }
}
