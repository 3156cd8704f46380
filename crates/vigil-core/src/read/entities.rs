//! A fleet as a folder: one series file per entity, named after it.

use super::read_series;
use crate::error::{CoreError, Result};
use crate::series::Series;
use std::path::{Path, PathBuf};

/// File types [`read_series`] reads.
const SERIES_EXTENSIONS: [&str; 5] = ["csv", "parquet", "pq", "npy", "txt"];

/// The series files of an entity folder: `dir/train/` when it exists (the layout of SMD and of
/// `vigil fleet generate`), else `dir` itself; every file of a supported type, in natural order
/// (`entity-2` before `entity-10`). Entities are named by their file's stem.
pub fn entity_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    entity_files_in(dir, "train")
}

/// Like [`entity_files`], preferring the subfolder `part` (`train` or `test`).
pub fn entity_files_in(dir: &Path, part: &str) -> Result<Vec<(String, PathBuf)>> {
    let folder = if dir.join(part).is_dir() {
        dir.join(part)
    } else {
        dir.to_path_buf()
    };
    if !folder.is_dir() {
        return Err(CoreError::file(
            dir,
            "is not a folder of entities; give a folder with one series file per entity (or a train/ folder of them)",
        ));
    }
    let entries = std::fs::read_dir(&folder).map_err(|e| CoreError::io(&folder, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| SERIES_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort_by_key(|p| super::benchmarks::natural_key(p));
    if files.is_empty() {
        return Err(CoreError::file(
            &folder,
            "holds no series files (.csv, .parquet, .npy or .txt), one per entity",
        ));
    }
    Ok(files
        .into_iter()
        .map(|p| (super::benchmarks::stem(&p), p))
        .collect())
}

/// Reads one entity file and checks that its metrics are those of `first` (the fleet's first
/// entity), naming the file when they are not.
pub fn read_entity(path: &Path, first: Option<&Series>) -> Result<Series> {
    let series = read_series(path)?;
    if let Some(first) = first {
        first.check_same_metrics(&series, &format!("entity file {}", path.display()))?;
    }
    Ok(series)
}
