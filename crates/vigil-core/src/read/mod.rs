//! Readers: every supported file format and benchmark layout, returning [`Series`].
//!
//! Readers never panic on a bad file: they return a [`CoreError`] that names the file and,
//! where there is one, the line and column.

pub mod benchmarks;
pub mod csv;
pub mod entities;
pub mod feedback;
pub mod long;
pub mod npy;
pub mod parquet;
pub mod text;

use crate::error::{CoreError, Result};
use crate::series::Series;
use std::path::Path;

pub use benchmarks::{load_benchmark, BenchmarkKind};

/// Reads one series, choosing the format from the extension:
/// `.csv` (wide CSV with header, or long `timestamp,component,metric,value` rows), `.parquet`
/// (the same columns as wide CSV), `.npy` (NumPy), `.txt`
/// (headerless comma-separated numbers).
pub fn read_series(path: &Path) -> Result<Series> {
    if !path.exists() {
        return Err(CoreError::file(path, "no such file; check the path"));
    }
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
        Some("csv") => csv::read_csv(path),
        Some("npy") => npy::read_npy(path),
        Some("parquet") | Some("pq") => parquet::read_parquet(path),
        Some("txt") => text::read_headerless(path),
        _ => Err(CoreError::file(
            path,
            "unknown file type; use .csv (header row), .parquet (same columns), .npy (2-D float array) or .txt (headerless numbers)",
        )),
    }
}
