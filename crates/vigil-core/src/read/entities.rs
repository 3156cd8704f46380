//! A fleet as a folder: one series file per entity, named after it.

use super::read_series;
use crate::error::{CoreError, Result};
use crate::series::{Dataset, Entity, Series};
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

/// A fleet folder with `train/` and `test/` subfolders (the layout `vigil fleet generate`
/// writes) as a data set named `name`: every entity of `train/` with the test file of the same
/// name, all with the first entity's metrics. `only` keeps the entities it names (all when
/// empty).
pub fn load_entity_folder(dir: &Path, name: &str, only: &[String]) -> Result<Dataset> {
    for part in ["train", "test"] {
        if !dir.join(part).is_dir() {
            return Err(CoreError::file(
                dir,
                format!("has no {part}/ folder; a fleet folder holds train/ and test/ with one series file per entity in each"),
            ));
        }
    }
    let tests: std::collections::HashMap<String, PathBuf> =
        entity_files_in(dir, "test")?.into_iter().collect();
    let mut entities = Vec::new();
    let mut first: Option<Series> = None;
    for (entity, train_path) in entity_files_in(dir, "train")? {
        if !only.is_empty() && !only.contains(&entity) {
            continue;
        }
        let test_path = tests.get(&entity).ok_or_else(|| {
            CoreError::file(
                dir.join("test"),
                format!("has no test file for entity {entity} (its training file is {}); give every entity both", train_path.display()),
            )
        })?;
        let train = read_entity(&train_path, first.as_ref())?;
        let test = read_entity(test_path, Some(first.as_ref().unwrap_or(&train)))?;
        first.get_or_insert_with(|| train.clone());
        entities.push(Entity {
            name: entity,
            train,
            test,
        });
    }
    if entities.is_empty() {
        return Err(CoreError::file(
            dir,
            format!("holds none of the entities {only:?}"),
        ));
    }
    Ok(Dataset {
        name: name.to_string(),
        entities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::write_series_csv;

    #[test]
    fn a_fleet_folder_pairs_train_and_test_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let series = |offset: f64| {
            Series::new(
                vec!["a".into(), "b".into()],
                (0..20).map(|v| f64::from(v) + offset).collect(),
            )
            .unwrap()
        };
        for (name, offset) in [("e-2", 0.0), ("e-10", 100.0)] {
            write_series_csv(
                &series(offset),
                &dir.path().join("train").join(format!("{name}.csv")),
            )
            .unwrap();
            write_series_csv(
                &series(offset + 1.0),
                &dir.path().join("test").join(format!("{name}.csv")),
            )
            .unwrap();
        }
        let fleet = load_entity_folder(dir.path(), "f", &[]).unwrap();
        let names: Vec<&str> = fleet.entities.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["e-2", "e-10"]);
        assert_eq!(fleet.entities[1].test.values[0], 101.0);
        let one = load_entity_folder(dir.path(), "f", &["e-10".into()]).unwrap();
        assert_eq!(one.entities.len(), 1);
        std::fs::remove_file(dir.path().join("test").join("e-2.csv")).unwrap();
        let err = load_entity_folder(dir.path(), "f", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no test file for entity e-2"), "{err}");
        let err = load_entity_folder(&dir.path().join("train"), "f", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no train/ folder"), "{err}");
    }
}
