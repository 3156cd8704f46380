//! CSV as vigil writes it: through the `csv` crate, so that a metric name holding a comma, a
//! quote or a line break is quoted and reads back as itself. Numbers are written with Rust's
//! shortest round-trip formatting, so every f64 reads back bit for bit.

use super::atomic::write_atomically;
use crate::error::{CoreError, Result};
use crate::series::Series;
use std::io::Write;
use std::path::Path;

/// A CSV writer over `w` with vigil's settings (`,` separated, quoting where needed).
pub fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new().has_headers(false).from_writer(w)
}

/// Writes a header row, quoting where the `csv` crate needs it — and every name when one holds
/// a `;`: the `csv` crate leaves `cpu;user` bare, and a reader that guesses the separator from
/// the header (vigil's does, for SKAB's `;` files) would split it.
pub fn write_csv_header<W: Write>(w: W, names: &[&str]) -> csv::Result<()> {
    let style = if names.iter().any(|n| n.contains(';')) {
        csv::QuoteStyle::NonNumeric
    } else {
        csv::QuoteStyle::Necessary
    };
    let mut header = csv::WriterBuilder::new()
        .has_headers(false)
        .quote_style(style)
        .from_writer(w);
    header.write_record(names)?;
    header.flush()?;
    Ok(())
}

/// Writes `series` to `path` as wide CSV that `read_series` reads back: a header row, a
/// `timestamp` column (epoch seconds) when the series has timestamps, one column per metric,
/// a `label` column when it has labels. Written atomically (never a half-written file).
pub fn write_series_csv(series: &Series, path: &Path) -> Result<()> {
    check_names_read_back(series, path)?;
    write_atomically(path, |w| {
        write_rows(series, w).map_err(|e| CoreError::write(path, e.into()))
    })
}

/// Refuses metric names that a wide CSV file cannot give back as they are: the reader trims
/// names (hand-written headers say `a, b`), takes `timestamp` and `label` as those columns, and
/// needs each name once. Anything else — commas, quotes, line breaks, any Unicode — is quoted.
fn check_names_read_back(series: &Series, path: &Path) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for name in &series.metric_names {
        let problem = if name.trim().is_empty() {
            Some("is empty or only whitespace")
        } else if name.trim() != name || name.starts_with('\u{feff}') {
            Some("starts or ends with whitespace, which a CSV reader trims")
        } else if name == "timestamp" || name == "label" {
            Some("is the name of the timestamp or label column")
        } else if !seen.insert(name.as_str()) {
            Some("appears twice")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(CoreError::file(
                path,
                format!("cannot write metric {name:?} as a CSV column: the name {problem}; rename the metric"),
            ));
        }
    }
    Ok(())
}

fn write_rows(series: &Series, mut w: &mut dyn Write) -> csv::Result<()> {
    let mut header: Vec<&str> = Vec::new();
    if series.timestamps.is_some() {
        header.push("timestamp");
    }
    header.extend(series.metric_names.iter().map(String::as_str));
    if series.labels.is_some() {
        header.push("label");
    }
    write_csv_header(&mut w, &header)?;
    let mut out = csv_writer(w);
    let mut row: Vec<String> = Vec::with_capacity(header.len());
    for t in 0..series.len() {
        row.clear();
        if let Some(ts) = &series.timestamps {
            row.push(ts[t].to_string());
        }
        row.extend(series.row(t).iter().map(f64::to_string));
        if let Some(labels) = &series.labels {
            row.push(labels[t].to_string());
        }
        out.write_record(&row)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_says_so_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, "not a folder").unwrap();
        let s = Series::new(vec!["a".into()], vec![1.0]).unwrap();
        let err = write_series_csv(&s, &blocker.join("s.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is a file, so it cannot hold the output"),
            "{err}"
        );
        // A fill that fails leaves no file behind.
        let target = dir.path().join("t.csv");
        let failed: Result<()> = write_atomically(&target, |_| Err(CoreError::invalid("stop")));
        assert!(failed.is_err() && !target.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_written_series_reads_back_the_same() {
        let mut s = Series::new(
            vec![
                "a,b".into(),
                "say \"hi\"".into(),
                "two\nlines".into(),
                "x;y".into(),
            ],
            vec![
                1.5,
                -2.0,
                0.25,
                1e-7,
                1e39,
                1e6 + 1e-4,
                f64::MIN_POSITIVE,
                -0.0,
            ],
        )
        .unwrap();
        s.timestamps = Some(vec![1_700_000_000, 1_700_000_300]);
        s.labels = Some(vec![0, 1]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        write_series_csv(&s, &path).unwrap();
        let back = crate::read::read_series(&path).unwrap();
        assert_eq!(back.metric_names, s.metric_names);
        assert_eq!(back.values, s.values);
        assert_eq!(back.timestamps, s.timestamps);
        assert_eq!(back.labels, s.labels);
    }
}
