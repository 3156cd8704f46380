//! Wide CSV: a header row, one column per metric, optional `timestamp` and `label` columns. A
//! header of exactly `timestamp,component,metric,value` (and optionally `label`) is the long
//! layout instead, pivoted by `long.rs`.
//!
//! The delimiter (`,` or `;`) is detected from the header. Empty cells and `NaN`/`inf` literals
//! are read as non-finite values and left to the cleaning policy; anything else that is not a
//! number is an error naming the line and column.

use crate::error::{CoreError, Result};
use crate::series::{Series, Source};
use chrono::{DateTime, NaiveDateTime};
use std::path::Path;

/// Which columns of a wide CSV file are not metrics.
#[derive(Debug, Clone)]
pub struct CsvLayout {
    /// Names accepted for the timestamp column (first match wins).
    pub timestamp_columns: Vec<&'static str>,
    /// Names accepted for the 0/1 label column.
    pub label_columns: Vec<&'static str>,
    /// Columns to drop (e.g. SKAB's `changepoint`).
    pub ignored_columns: Vec<&'static str>,
}

impl Default for CsvLayout {
    fn default() -> Self {
        CsvLayout {
            timestamp_columns: vec!["timestamp"],
            label_columns: vec!["label"],
            ignored_columns: vec![],
        }
    }
}

enum Role {
    Timestamp,
    Label,
    Ignored,
    Metric,
}

/// Reads a wide CSV file with the default layout (`timestamp`, `label`).
pub fn read_csv(path: &Path) -> Result<Series> {
    read_csv_with(path, &CsvLayout::default())
}

/// Reads a wide CSV file whose non-metric columns are described by `layout`.
pub fn read_csv_with(path: &Path, layout: &CsvLayout) -> Result<Series> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(CoreError::file(
            path,
            "the file is empty; a CSV file needs a header row and at least one data row",
        ));
    }
    let delimiter = header_delimiter(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .map_err(|e| parse_error(path, 1, None, format!("unreadable header: {e}")))?
        .clone();
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    if super::long::is_long_header(&names) {
        return super::long::read_long_csv(path, &bytes, delimiter);
    }
    let roles: Vec<Role> = header
        .iter()
        .map(|name| {
            let name = name.trim();
            if layout.timestamp_columns.contains(&name) {
                Role::Timestamp
            } else if layout.label_columns.contains(&name) {
                Role::Label
            } else if layout.ignored_columns.contains(&name) {
                Role::Ignored
            } else {
                Role::Metric
            }
        })
        .collect();
    let metric_names: Vec<String> = header
        .iter()
        .zip(&roles)
        .filter(|(_, r)| matches!(r, Role::Metric))
        .map(|(n, _)| n.trim().to_string())
        .collect();
    if metric_names.is_empty() {
        return Err(CoreError::file(
            path,
            "the header names no metric column (only timestamp/label columns); add at least one metric",
        ));
    }
    if let Some(dup) = first_duplicate(&metric_names) {
        return Err(parse_error(
            path,
            1,
            Some(dup.clone()),
            "this column name appears twice in the header; metric names must be unique".into(),
        ));
    }
    let has_ts = roles.iter().any(|r| matches!(r, Role::Timestamp));
    let has_label = roles.iter().any(|r| matches!(r, Role::Label));
    let mut values = Vec::new();
    let mut timestamps = Vec::new();
    let mut labels = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            parse_error(path, line, None, format!("malformed CSV: {e}"))
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
            continue; // a blank line
        }
        if record.len() != header.len() {
            return Err(parse_error(
                path,
                line,
                None,
                format!(
                    "this row has {} fields but the header has {}; every row needs one value per column",
                    record.len(),
                    header.len()
                ),
            ));
        }
        for ((cell, role), name) in record.iter().zip(&roles).zip(header.iter()) {
            match role {
                Role::Metric => values.push(parse_value(cell).ok_or_else(|| {
                    parse_error(
                        path,
                        line,
                        Some(name.trim().to_string()),
                        format!("`{cell}` is not a number"),
                    )
                })?),
                Role::Timestamp => timestamps.push(parse_timestamp(cell).ok_or_else(|| {
                    parse_error(
                        path,
                        line,
                        Some(name.trim().to_string()),
                        format!("`{cell}` is not a timestamp (use RFC 3339 or epoch seconds)"),
                    )
                })?),
                Role::Label => labels.push(parse_label(cell).ok_or_else(|| {
                    parse_error(
                        path,
                        line,
                        Some(name.trim().to_string()),
                        format!("label `{cell}` is not 0 or 1"),
                    )
                })?),
                Role::Ignored => {}
            }
        }
    }
    if values.is_empty() {
        return Err(CoreError::file(
            path,
            "the file has a header but no data rows; add at least one row of values",
        ));
    }
    let mut series = Series::new(metric_names, values)?;
    series.timestamps = has_ts.then_some(timestamps);
    series.labels = has_label.then_some(labels);
    series.source = Some(Source {
        path: path.to_path_buf(),
        first_line: 2,
    });
    Ok(series)
}

/// `;` when the header row separates its names with semicolons at least as often as with
/// commas, else `,`. Separators inside quoted names (`"cpu;user"`, or a name with a line break) do not
/// count, so a quoted name cannot change how the file is split.
fn header_delimiter(bytes: &[u8]) -> u8 {
    let (mut quoted, mut commas, mut semicolons) = (false, 0usize, 0usize);
    for &b in bytes {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > 0 && semicolons >= commas {
        b';'
    } else {
        b','
    }
}

fn first_duplicate(names: &[String]) -> Option<&String> {
    let mut seen = std::collections::HashSet::new();
    names.iter().find(|n| !seen.insert(n.as_str()))
}

/// Parses a numeric cell; empty cells and NaN/inf literals become non-finite values that the
/// cleaning policy handles. Returns `None` for text that is not a number.
pub(crate) fn parse_value(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Some(f64::NAN);
    }
    cell.parse::<f64>().ok()
}

pub(crate) fn parse_label(cell: &str) -> Option<u8> {
    match cell.trim() {
        "0" | "0.0" | "false" => Some(0),
        "1" | "1.0" | "true" => Some(1),
        _ => None,
    }
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS` (taken as UTC) or epoch seconds.
pub(crate) fn parse_timestamp(cell: &str) -> Option<i64> {
    let cell = cell.trim();
    if let Ok(secs) = cell.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(secs) = cell.parse::<f64>() {
        return secs.is_finite().then_some(secs as i64);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(cell) {
        return Some(t.timestamp());
    }
    NaiveDateTime::parse_from_str(cell, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(cell, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|t| t.and_utc().timestamp())
}

fn parse_error(path: &Path, line: usize, column: Option<String>, message: String) -> CoreError {
    CoreError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_metrics_timestamps_and_labels() {
        let f = file("timestamp,cpu,mem,label\n2024-01-01T00:00:00Z,1,2,0\n60,3.5,,1\n");
        let s = read_csv(f.path()).unwrap();
        assert_eq!(s.metric_names, vec!["cpu", "mem"]);
        assert_eq!(s.timestamps, Some(vec![1704067200, 60]));
        assert_eq!(s.labels, Some(vec![0, 1]));
        assert_eq!(s.row(0), &[1.0, 2.0]);
        assert!(s.row(1)[1].is_nan(), "an empty cell is a missing value");
    }

    #[test]
    fn semicolons_and_ignored_columns() {
        let f = file("datetime;a;anomaly;changepoint\n2020-03-09 10:14:33;0.5;0;0\n");
        let layout = CsvLayout {
            timestamp_columns: vec!["datetime"],
            label_columns: vec!["anomaly"],
            ignored_columns: vec!["changepoint"],
        };
        let s = read_csv_with(f.path(), &layout).unwrap();
        assert_eq!(s.metric_names, vec!["a"]);
        assert_eq!(s.labels, Some(vec![0]));
    }

    #[test]
    fn errors_name_line_and_column() {
        let f = file("a,b\n1,2\n3,x\n");
        let e = read_csv(f.path()).unwrap_err().to_string();
        assert!(e.contains(":3: column b: `x` is not a number"), "{e}");
        let f = file("a,b\n1,2\n3\n");
        let e = read_csv(f.path()).unwrap_err().to_string();
        assert!(
            e.contains(":3:") && e.contains("1 fields but the header has 2"),
            "{e}"
        );
        let f = file("a,b\n");
        assert!(read_csv(f.path())
            .unwrap_err()
            .to_string()
            .contains("no data rows"));
        let f = file("");
        assert!(read_csv(f.path())
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
