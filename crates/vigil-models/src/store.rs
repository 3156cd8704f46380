//! Where trained models live, by name and version. [`ModelStore`] is what the rest of vigil asks
//! for; [`DirStore`] keeps each version as a model directory (`ROOT/NAME/VERSION/`, which
//! `vigil detect --model` reads as it is), [`MemoryStore`] keeps them as bytes in the process
//! (tests, a simulated federation, a service that needs no disk). A SQL store for the service
//! is one more implementation.

use crate::error::{ModelError, Result};
use crate::pipeline::TrainedModel;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Trained models by name, each name with versions 1, 2, … in the order they were put.
pub trait ModelStore: Send + Sync {
    /// Stores `model` as the next version of `name` and returns that version (1 for the first).
    fn put(&self, name: &str, model: &TrainedModel) -> Result<u64>;

    /// Version `version` of `name`, or its newest when `version` is `None`.
    fn get(&self, name: &str, version: Option<u64>) -> Result<TrainedModel>;

    /// The versions of `name`, oldest first; empty when it has none.
    fn versions(&self, name: &str) -> Result<Vec<u64>>;

    /// Every name with at least one version, sorted.
    fn names(&self) -> Result<Vec<String>>;
}

/// Refuses a model name that could not be a folder name everywhere: 1 to 128 of `A-Z a-z 0-9 . _ -`,
/// not starting with a dot.
pub fn check_model_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 128 || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(ModelError::Store(format!(
            "`{name}` is not a model name: use 1 to 128 letters, digits, `.`, `_` or `-`, not \
             starting with `.`"
        )));
    }
    Ok(())
}

/// The version asked for among `versions`, or an error saying which exist.
fn pick(name: &str, versions: &[u64], version: Option<u64>) -> Result<u64> {
    let newest = versions.last().copied();
    match version.or(newest) {
        Some(v) if versions.contains(&v) => Ok(v),
        _ if versions.is_empty() => Err(ModelError::Store(format!(
            "no model named `{name}` is stored; put one first"
        ))),
        Some(v) => Err(ModelError::Store(format!(
            "model `{name}` has no version {v}; it has {versions:?}"
        ))),
        None => unreachable!("a non-empty version list has a newest"),
    }
}

/// Models as directories: version `V` of `NAME` is the model directory `ROOT/NAME/V/`. A put
/// claims `V` by creating its folder (of two writers, one gets `AlreadyExists` and takes the
/// next number) and writes the model into it, manifest last; a version is listed once its
/// manifest is there. A version is never replaced.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store under `root` (created on the first put).
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore { root: root.into() }
    }

    /// The model directory of version `version` of `name`.
    pub fn path(&self, name: &str, version: u64) -> PathBuf {
        self.root.join(name).join(version.to_string())
    }

    /// The numbered folders under `ROOT/NAME`, complete or not (a put claims its number by
    /// creating the folder, then writes the model into it).
    fn numbered(&self, name: &str) -> Result<Vec<u64>> {
        let dir = self.root.join(name);
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(store_io(&dir, e)),
            Ok(entries) => entries,
        };
        let mut numbers: Vec<u64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|v| *v > 0)
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }
}

fn store_io(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::Store(format!("{}: {e}", path.display()))
}

impl ModelStore for DirStore {
    fn put(&self, name: &str, model: &TrainedModel) -> Result<u64> {
        check_model_name(name)?;
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| store_io(&dir, e))?;
        // Claim the next number by creating its folder: of two writers racing for one number,
        // one gets AlreadyExists and takes the next.
        let mut version = self.numbered(name)?.last().copied().unwrap_or(0) + 1;
        loop {
            match std::fs::create_dir(self.path(name, version)) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => version += 1,
                Err(e) => return Err(store_io(&self.path(name, version), e)),
            }
        }
        let path = self.path(name, version);
        let written = model.files().and_then(|files| {
            crate::model_dir::write_into_new_dir(&path, model.manifest.clone(), &files)
        });
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&path);
            return Err(e);
        }
        Ok(version)
    }

    fn get(&self, name: &str, version: Option<u64>) -> Result<TrainedModel> {
        check_model_name(name)?;
        let version = pick(name, &self.versions(name)?, version)?;
        TrainedModel::load(&self.path(name, version))
    }

    /// Only complete versions: a folder whose put is still writing (or was killed) has no
    /// manifest yet and is not listed.
    fn versions(&self, name: &str) -> Result<Vec<u64>> {
        check_model_name(name)?;
        Ok(self
            .numbered(name)?
            .into_iter()
            .filter(|v| {
                let path = self.path(name, *v);
                vigil_core::write::durable::restore_moved_aside(&path);
                path.join(crate::model_dir::MANIFEST).is_file()
            })
            .collect())
    }

    fn names(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(store_io(&self.root, e)),
            Ok(entries) => entries,
        };
        let mut names = Vec::new();
        for entry in entries.filter_map(|e| e.ok()) {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_model_name(&name).is_ok() && !self.versions(&name)?.is_empty() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Models as bytes in this process ([`TrainedModel::to_bytes`]): what is got back is rebuilt
/// from the bytes, so it is independent of the model that was put.
#[derive(Debug, Default)]
pub struct MemoryStore {
    models: Mutex<BTreeMap<String, Vec<Vec<u8>>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn models(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Vec<u8>>>> {
        // A panic while holding the lock cannot leave a half-pushed version behind.
        self.models.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ModelStore for MemoryStore {
    fn put(&self, name: &str, model: &TrainedModel) -> Result<u64> {
        check_model_name(name)?;
        let bytes = model.to_bytes()?;
        let mut models = self.models();
        let versions = models.entry(name.into()).or_default();
        versions.push(bytes);
        Ok(versions.len() as u64)
    }

    fn get(&self, name: &str, version: Option<u64>) -> Result<TrainedModel> {
        check_model_name(name)?;
        let bytes = {
            let models = self.models();
            let stored = models.get(name).map(Vec::as_slice).unwrap_or(&[]);
            let numbers: Vec<u64> = (1..=stored.len() as u64).collect();
            let v = pick(name, &numbers, version)?;
            stored[v as usize - 1].clone()
        };
        TrainedModel::from_bytes(&bytes)
    }

    fn versions(&self, name: &str) -> Result<Vec<u64>> {
        check_model_name(name)?;
        let count = self.models().get(name).map_or(0, Vec::len);
        Ok((1..=count as u64).collect())
    }

    fn names(&self) -> Result<Vec<String>> {
        Ok(self.models().keys().cloned().collect())
    }
}
