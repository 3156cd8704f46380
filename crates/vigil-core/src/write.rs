//! Writing series: wide CSV that `read_series` reads back (header; `timestamp` in epoch
//! seconds when the series has them; a `label` column when it has labels).

use crate::error::{CoreError, Result};
use crate::series::Series;
use std::io::Write;
use std::path::Path;

/// Writes `series` to `path` as wide CSV, through a temporary file and a rename (never a
/// half-written file).
pub fn write_series_csv(series: &Series, path: &Path) -> Result<()> {
    write_atomically(path, |w| {
        write_rows(series, w).map_err(|e| CoreError::write(path, e))
    })
}

/// Writes `path` through a temporary file in the same folder and a rename, so that a reader
/// never sees a half-written file: `fill` streams the content (buffered), and when it fails
/// nothing reaches `path`. Every file vigil writes goes through here.
pub fn write_atomically<E: From<CoreError>>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| CoreError::write(dir, e))?;
    let mut builder = tempfile::Builder::new();
    // A temporary file is private (0600) by default; the result is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| CoreError::write(dir, e))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w)?;
        w.flush().map_err(|e| CoreError::write(path, e))?;
    }
    tmp.persist(path)
        .map_err(|e| CoreError::write(path, e.error))?;
    Ok(())
}

fn write_rows(series: &Series, w: &mut dyn Write) -> std::io::Result<()> {
    let m = series.n_metrics();
    let mut header: Vec<&str> = Vec::new();
    if series.timestamps.is_some() {
        header.push("timestamp");
    }
    header.extend(series.metric_names.iter().map(String::as_str));
    if series.labels.is_some() {
        header.push("label");
    }
    writeln!(w, "{}", header.join(","))?;
    for t in 0..series.len() {
        let mut first = true;
        let mut cell = |w: &mut dyn Write, text: &dyn std::fmt::Display| -> std::io::Result<()> {
            if !first {
                w.write_all(b",")?;
            }
            first = false;
            write!(w, "{text}")
        };
        if let Some(ts) = &series.timestamps {
            cell(w, &ts[t])?;
        }
        for v in &series.values[t * m..(t + 1) * m] {
            cell(w, v)?;
        }
        if let Some(labels) = &series.labels {
            cell(w, &labels[t])?;
        }
        writeln!(w)?;
    }
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
        assert!(err.starts_with("cannot write"), "{err}");
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
        let mut s = Series::new(vec!["a".into(), "b".into()], vec![1.5, -2.0, 0.25, 1e-7]).unwrap();
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
