//! Operators' feedback files: which stretches of an entity's data they judged anomalous or
//! normal (AnoTuner's false negatives and false positives), for `vigil tune --feedback`.
//!
//! CSV with a header `entity,start,end,label`, or JSON (one object per line, or an array of
//! them) with those keys. `start` and `end` are inclusive: timestamps (RFC 3339 or epoch
//! seconds) when the data has a timestamp column, step numbers (from 0) when it has none.
//! `label` is `anomaly` (also `anomalous`, `1`, `true`) or `normal` (also `not_anomaly`, `0`,
//! `false`) — `vigil serve`'s feedback labels and the plain ones.

use crate::error::{CoreError, Result};
use crate::series::Series;
use std::path::Path;

/// One judged stretch.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRange {
    /// The entity it is about.
    pub entity: String,
    /// First step (timestamp or step number, as the data's time axis), inclusive.
    pub start: i64,
    /// Last step, inclusive.
    pub end: i64,
    /// Judged anomalous (a missed anomaly) or normal (a false alarm).
    pub anomalous: bool,
    /// Where it was read: the 1-based line (CSV: counting the header; JSON: the record).
    pub line: usize,
}

/// Reads a feedback file; the extension chooses the format (`.csv`, or `.json`/`.jsonl`).
pub fn read_feedback(path: &Path) -> Result<Vec<FeedbackRange>> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::file(path, e.to_string()))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let ranges = match extension.as_deref() {
        Some("csv") => from_csv(path, &text)?,
        Some("json") | Some("jsonl") | Some("ndjson") => from_json(path, &text)?,
        _ => return Err(CoreError::file(
            path,
            "unknown feedback file type; use .csv (header entity,start,end,label) or .json/.jsonl",
        )),
    };
    if ranges.is_empty() {
        return Err(CoreError::file(
            path,
            "holds no feedback; add at least one row",
        ));
    }
    Ok(ranges)
}

fn parse_error(path: &Path, line: usize, column: Option<&str>, message: String) -> CoreError {
    CoreError::Parse {
        path: path.to_path_buf(),
        line,
        column: column.map(String::from),
        message,
    }
}

fn label_of(path: &Path, line: usize, cell: &str) -> Result<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "anomaly" | "anomalous" | "1" | "true" => Ok(true),
        "normal" | "not_anomaly" | "0" | "false" => Ok(false),
        other => Err(parse_error(
            path,
            line,
            Some("label"),
            format!("`{other}` is not a label; use `anomaly` or `normal`"),
        )),
    }
}

fn time_of(path: &Path, line: usize, column: &str, cell: &str) -> Result<i64> {
    super::csv::parse_timestamp(cell).ok_or_else(|| {
        parse_error(
            path,
            line,
            Some(column),
            format!(
                "`{cell}` is neither a step number nor a timestamp (RFC 3339 or epoch seconds)"
            ),
        )
    })
}

fn range(path: &Path, line: usize, cells: [&str; 4]) -> Result<FeedbackRange> {
    let [entity, start, end, label] = cells;
    let (start, end) = (
        time_of(path, line, "start", start)?,
        time_of(path, line, "end", end)?,
    );
    if end < start {
        return Err(parse_error(
            path,
            line,
            Some("end"),
            format!("ends ({end}) before it starts ({start})"),
        ));
    }
    Ok(FeedbackRange {
        entity: entity.trim().to_string(),
        start,
        end,
        anomalous: label_of(path, line, label)?,
        line,
    })
}

const KEYS: [&str; 4] = ["entity", "start", "end", "label"];

fn from_csv(path: &Path, text: &str) -> Result<Vec<FeedbackRange>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| parse_error(path, 1, None, e.to_string()))?
        .clone();
    let position = |key: &str| {
        header.iter().position(|h| h == key).ok_or_else(|| {
            parse_error(
                path,
                1,
                None,
                format!("the header has no `{key}` column; it needs entity,start,end,label"),
            )
        })
    };
    let columns = [
        position(KEYS[0])?,
        position(KEYS[1])?,
        position(KEYS[2])?,
        position(KEYS[3])?,
    ];
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| parse_error(path, line, None, e.to_string()))?;
        let cell = |c: usize| record.get(c).unwrap_or("");
        out.push(range(path, line, columns.map(cell))?);
    }
    Ok(out)
}

fn from_json(path: &Path, text: &str) -> Result<Vec<FeedbackRange>> {
    let records: Vec<serde_json::Value> = match serde_json::from_str(text) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(one @ serde_json::Value::Object(_)) => vec![one],
        _ => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| parse_error(path, i + 1, None, e.to_string()))
            })
            .collect::<Result<_>>()?,
    };
    records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let line = i + 1;
            let cell = |key: &str| -> Result<String> {
                match record.get(key) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        Ok(v.to_string())
                    }
                    _ => Err(parse_error(
                        path,
                        line,
                        Some(key),
                        format!(
                            "record {line} has no `{key}` (each needs entity, start, end, label)"
                        ),
                    )),
                }
            };
            let cells = [
                cell(KEYS[0])?,
                cell(KEYS[1])?,
                cell(KEYS[2])?,
                cell(KEYS[3])?,
            ];
            range(path, line, [&cells[0], &cells[1], &cells[2], &cells[3]])
        })
        .collect()
}

/// The entities a feedback file is about, in first-seen order.
pub fn entities_of(ranges: &[FeedbackRange]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for r in ranges {
        if !names.contains(&r.entity.as_str()) {
            names.push(&r.entity);
        }
    }
    names
}

/// Each step's label for `series` from the feedback about `entity` (1 where judged anomalous,
/// 0 elsewhere), matched on the series' timestamps, or on step numbers when it has none.
/// Refused: a range that covers no step of the series, and ranges that overlap with
/// different labels (the file would contradict itself).
pub fn labels_from_feedback(
    series: &Series,
    ranges: &[FeedbackRange],
    entity: &str,
    path: &Path,
) -> Result<Vec<u8>> {
    let time = |t: usize| -> i64 { series.timestamps.as_ref().map_or(t as i64, |ts| ts[t]) };
    let mut labels = vec![0u8; series.len()];
    // Which range judged each step, to name both rows of a contradiction.
    let mut judged_by: Vec<Option<&FeedbackRange>> = vec![None; series.len()];
    for r in ranges.iter().filter(|r| r.entity == entity) {
        let mut covered = false;
        for t in 0..series.len() {
            if (r.start..=r.end).contains(&time(t)) {
                covered = true;
                if let Some(other) = judged_by[t].filter(|o| o.anomalous != r.anomalous) {
                    return Err(parse_error(
                        path,
                        r.line,
                        None,
                        format!(
                            "judges step {} {} but line {} judged it {}; remove one of them",
                            time(t),
                            if r.anomalous { "anomalous" } else { "normal" },
                            other.line,
                            if other.anomalous {
                                "anomalous"
                            } else {
                                "normal"
                            },
                        ),
                    ));
                }
                judged_by[t] = Some(r);
                labels[t] = u8::from(r.anomalous);
            }
        }
        if !covered {
            let axis = if series.timestamps.is_some() {
                "timestamps"
            } else {
                "step numbers"
            };
            return Err(parse_error(
                path,
                r.line,
                None,
                format!(
                    "{}..{} covers no step of the data ({axis} {}..{}); check the range and its units",
                    r.start,
                    r.end,
                    time(0),
                    time(series.len().saturating_sub(1)),
                ),
            ));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn series(steps: usize, timestamps: Option<Vec<i64>>) -> Series {
        let mut s = Series::new(vec!["cpu".into()], vec![0.0; steps]).unwrap();
        s.timestamps = timestamps;
        s
    }

    #[test]
    fn csv_and_json_feedback_label_the_steps_they_cover() {
        let (_d, csv) = write(
            "f.csv",
            "entity,start,end,label\nweb-1,2,3,anomaly\nweb-1,6,6,normal\nweb-2,0,9,anomaly\n",
        );
        let ranges = read_feedback(&csv).unwrap();
        assert_eq!(entities_of(&ranges), ["web-1", "web-2"]);
        let labels = labels_from_feedback(&series(8, None), &ranges, "web-1", &csv).unwrap();
        assert_eq!(labels, [0, 0, 1, 1, 0, 0, 0, 0]);
        // The same in JSON lines, on a series with timestamps (minutes, as epoch seconds).
        let (_e, json) = write(
            "f.jsonl",
            "{\"entity\":\"web-1\",\"start\":\"1970-01-01T00:02:00Z\",\"end\":180,\"label\":\"anomaly\"}\n",
        );
        let ranges = read_feedback(&json).unwrap();
        let timed = series(5, Some(vec![0, 60, 120, 180, 240]));
        assert_eq!(
            labels_from_feedback(&timed, &ranges, "web-1", &json).unwrap(),
            [0, 0, 1, 1, 0]
        );
    }

    #[test]
    fn bad_feedback_is_refused_naming_the_line_and_what_to_do() {
        let err = |text: &str| {
            let (_d, path) = write("f.csv", text);
            match read_feedback(&path) {
                Err(e) => e.to_string(),
                Ok(ranges) => labels_from_feedback(&series(10, None), &ranges, "a", &path)
                    .unwrap_err()
                    .to_string(),
            }
        };
        assert!(err("entity,start,end\na,1,2\n").contains("no `label` column"));
        assert!(err("entity,start,end,label\na,1,2,maybe\n").contains("`maybe` is not a label"));
        assert!(err("entity,start,end,label\na,5,2,normal\n").contains("ends (2) before"));
        assert!(err("entity,start,end,label\na,x,2,normal\n").contains("f.csv:2: column start"));
        assert!(err("entity,start,end,label\na,20,30,normal\n").contains("covers no step"));
        let contradiction = err("entity,start,end,label\na,1,4,anomaly\na,4,6,normal\n");
        assert!(
            contradiction.contains("f.csv:3") && contradiction.contains("line 2"),
            "{contradiction}"
        );
        assert!(err("entity,start,end,label\n").contains("holds no feedback"));
    }
}
