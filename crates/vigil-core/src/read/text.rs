//! Headerless numeric text: one time step a line, comma-separated (SMD's layout).

use crate::error::{CoreError, Result};
use crate::read::csv::parse_value;
use crate::series::{default_metric_names, Series, Source};
use std::path::Path;

/// Reads a headerless comma-separated numeric file; metrics are named `m0, m1, ...`.
pub fn read_headerless(path: &Path) -> Result<Series> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    let mut values = Vec::new();
    let mut width = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut n = 0;
        for (j, cell) in line.split(',').enumerate() {
            let v = parse_value(cell).ok_or_else(|| CoreError::Parse {
                path: path.to_path_buf(),
                line: line_no,
                column: Some((j + 1).to_string()),
                message: format!("`{}` is not a number", cell.trim()),
            })?;
            values.push(v);
            n += 1;
        }
        match width {
            None => width = Some(n),
            Some(w) if w != n => {
                return Err(CoreError::Parse {
                    path: path.to_path_buf(),
                    line: line_no,
                    column: None,
                    message: format!("this row has {n} values but the first row has {w}; every row needs the same number"),
                })
            }
            _ => {}
        }
    }
    let width = width.ok_or_else(|| {
        CoreError::file(
            path,
            "the file is empty; it needs at least one row of values",
        )
    })?;
    let mut series = Series::new(default_metric_names(width), values)?;
    series.source = Some(Source {
        path: path.to_path_buf(),
        first_line: 1,
    });
    Ok(series)
}

/// Reads a file of one 0/1 label a line.
pub fn read_label_lines(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| match l.trim() {
            "0" | "0.0" => Ok(0),
            "1" | "1.0" => Ok(1),
            other => Err(CoreError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                column: None,
                message: format!("label `{other}` is not 0 or 1"),
            }),
        })
        .collect()
}
