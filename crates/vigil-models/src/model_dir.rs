//! Model directories: `manifest.json` + weight files, each with a SHA-256 checksum.
//!
//! A directory is written to a staging sibling, synced, and swapped into place, so a crash leaves
//! the old model or the new one, never half of one or none; only a folder vigil can prove it
//! wrote is ever replaced ([`check_replaceable`]). Loading checks the format version, the detector name and every checksum,
//! and refuses corrupt, foreign or newer-format directories with a message that says what to do.

use crate::error::{ModelError, Result};
use crate::weights::WeightFiles;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use vigil_core::clean::MissingPolicy;
use vigil_core::normalise::Normaliser;

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Manifest file name.
pub const MANIFEST: &str = "manifest.json";
/// Training scores kept for label-free thresholds (POT/SPOT calibration), little-endian f64.
pub const CALIBRATION: &str = "calibration.f64";

/// A file of the model and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChecksum {
    /// File name inside the model directory.
    pub file: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Seed used.
    pub seed: u64,
    /// Training time steps.
    pub train_steps: usize,
    /// Non-finite cells repaired by cleaning.
    pub missing_values: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Mean loss of the last epoch; `None` (null) for detectors without a training loss.
    pub final_loss: Option<f64>,
    /// Wall-clock training seconds.
    pub train_seconds: f64,
    /// Steps labelled anomalous in the data of a fine-tune (left out of what it learnt as
    /// normal and of the calibration scores); absent when there were none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub labelled_anomalous: usize,
    /// The last steps of the training series held out of the fit and scored for the threshold
    /// calibration ([`crate::TrainSpec::calibration_share`]); absent when the calibration
    /// scores are those of the steps the model was fitted on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub calibration_steps: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Everything needed to rebuild a detector and apply it exactly as it was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"vigil-model"`: tells a vigil model from any other JSON.
    pub format: String,
    /// Manifest format version.
    pub format_version: u32,
    /// vigil version that wrote it.
    pub vigil_version: String,
    /// Registry name of the detector.
    pub detector: String,
    /// Detector configuration.
    pub config: serde_json::Value,
    /// Missing-value policy applied before normalising.
    pub missing_policy: MissingPolicy,
    /// Normaliser fitted on the training data.
    pub normaliser: Normaliser,
    /// Metric names, in column order.
    pub metric_names: Vec<String>,
    /// Training metadata.
    pub training: TrainingInfo,
    /// Checksums of every other file in the directory.
    pub files: Vec<FileChecksum>,
    /// What the model was made from, for tools that must not reuse it once that changes: a
    /// fleet's base model records the clustering and the training settings it was made for
    /// (`clustering`, `train_spec`: [`fingerprint`]s). Empty for a model trained on its own.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lineage: std::collections::BTreeMap<String, String>,
    /// The threshold rule chosen when the model was trained (`--threshold` or the config's
    /// `threshold`), with its parameters: `vigil detect` applies it unless told otherwise.
    /// Absent in models written before it was recorded (they get `spot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<vigil_core::threshold::ThresholdMethod>,
}

/// A short identity of any serialisable value: the hex SHA-256 of its compact JSON. Equal
/// values give equal fingerprints, so a record of what something was made from can be checked.
pub fn fingerprint(value: &impl Serialize) -> String {
    sha256_hex(&serde_json::to_vec(value).unwrap_or_default())
}

/// The fingerprint of the model directory `dir` as it is on disk: the hex SHA-256 of its
/// manifest, which lists the checksum of every other file. `None` when it has no manifest.
pub fn model_fingerprint(dir: &Path) -> Option<String> {
    std::fs::read(dir.join(MANIFEST))
        .ok()
        .map(|b| sha256_hex(&b))
}

/// The fingerprint a model gets once written: the hex SHA-256 of its manifest as
/// [`write_model_dir`] writes it (with `files`' checksums), equal to [`model_fingerprint`] of
/// the directory — for lineage recorded before or without a directory.
pub fn manifest_fingerprint(manifest: &Manifest, files: &WeightFiles) -> String {
    sha256_hex(&serde_json::to_vec_pretty(&seal(manifest.clone(), files)).unwrap_or_default())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `manifest` with the checksum of every one of `files` listed: the manifest a model's files
/// are stored under, in a directory or in an archive.
pub fn seal(mut manifest: Manifest, files: &WeightFiles) -> Manifest {
    manifest.files = files
        .iter()
        .map(|(name, bytes)| FileChecksum {
            file: name.clone(),
            sha256: sha256_hex(bytes),
        })
        .collect();
    manifest
}

/// Writes a model directory so that a kill at any instant leaves the old model or the new one
/// at `dir`, never neither: `files` (the detector's weights and the calibration scores) and the
/// manifest listing their checksums go into a fresh staging folder beside `dir`, every file and
/// the folder are synced, and the staging folder then takes `dir`'s place
/// ([`vigil_core::write::swap_dir`]). What is at `dir` is replaced only when vigil can prove it
/// wrote it ([`check_replaceable`]).
pub fn write_model_dir(dir: &Path, manifest: Manifest, files: &WeightFiles) -> Result<()> {
    use vigil_core::write::{crash::crash_point, durable, staging_dir, swap_dir};
    durable::clean_leftovers(dir);
    check_replaceable(dir)?;
    check_file_names(files.keys()).map_err(|why| ModelError::model_dir(dir, why))?;
    let staging = staging_dir(dir)?;
    let manifest = seal(manifest, files);
    // Removes the staging folder when anything below fails.
    let written = (|| -> Result<()> {
        for (name, bytes) in files {
            let path = staging.join(name);
            std::fs::write(&path, bytes)
                .and_then(|()| durable::sync_file(&path))
                .map_err(|e| ModelError::model_dir(dir, format!("cannot write {name}: {e}")))?;
        }
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ModelError::model_dir(dir, format!("cannot encode the manifest: {e}")))?;
        let manifest_path = staging.join(MANIFEST);
        std::fs::write(&manifest_path, json)
            .and_then(|()| durable::sync_file(&manifest_path))
            .and_then(|()| durable::sync_dir(&staging))
            .map_err(|e| ModelError::model_dir(dir, format!("cannot write the manifest: {e}")))?;
        crash_point("model:staged");
        Ok(swap_dir(&staging, dir)?)
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written
}

/// Writes a model into `dir`, an empty folder the caller created and no one else writes (a
/// model store's new version): its files first, each synced, then the manifest in one rename,
/// then the folder synced. Until the manifest is there the folder is not a model, so a kill
/// leaves an empty or partial folder that no reader takes for one. (No swap: there is nothing
/// to replace, and a swap's fallback would briefly free the folder's name.)
pub fn write_into_new_dir(dir: &Path, manifest: Manifest, files: &WeightFiles) -> Result<()> {
    use vigil_core::write::{durable, write_atomically};
    check_file_names(files.keys()).map_err(|why| ModelError::model_dir(dir, why))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .and_then(|()| durable::sync_file(&path))
            .map_err(|e| ModelError::model_dir(dir, format!("cannot write {name}: {e}")))?;
    }
    let json = serde_json::to_vec_pretty(&seal(manifest, files))
        .map_err(|e| ModelError::model_dir(dir, format!("cannot encode the manifest: {e}")))?;
    write_atomically(&dir.join(MANIFEST), |w| {
        w.write_all(&json)
            .map_err(|e| ModelError::model_dir(dir, format!("cannot write the manifest: {e}")))
    })?;
    durable::sync_dir(dir).map_err(|e| ModelError::model_dir(dir, format!("cannot sync: {e}")))
}

/// Refuses a file name that is not a plain name inside the model (a path, `.`, `..`, the
/// manifest's own name, or empty): a model's files never leave its folder.
pub fn check_file_names<'a>(
    names: impl IntoIterator<Item = &'a String>,
) -> std::result::Result<(), String> {
    for name in names {
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && name != MANIFEST
            && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(format!(
                "`{name}` is not a plain file name a model may hold (a path, `.`, `..` or {MANIFEST})"
            ));
        }
    }
    Ok(())
}

/// Succeeds when `dir` may be replaced by a new model: nothing is there, it is an empty folder,
/// or it is a vigil model directory whose manifest verifies and which holds no file the
/// manifest does not list. Anything else — a user's folder that happens to hold a
/// `manifest.json`, a model with notes added beside its files, the current folder, a file, a
/// link — is refused with a message that names the path and what to do.
pub fn check_replaceable(dir: &Path) -> Result<()> {
    let refuse = |why: String| {
        Err(ModelError::model_dir(
            dir,
            format!("{why}; vigil replaces only a model directory it wrote, so nothing was changed — choose another --model path, or move that content away yourself"),
        ))
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Err(_) => return Ok(()),
        Ok(meta) => meta,
    };
    if meta.file_type().is_symlink() {
        return refuse(
            "is a symbolic link (vigil would replace the link, not what it points to)".into(),
        );
    }
    if !meta.is_dir() {
        return refuse("exists and is a file, not a model directory".into());
    }
    if let (Ok(here), Ok(target)) = (std::env::current_dir(), std::fs::canonicalize(dir)) {
        if here.starts_with(&target) {
            return refuse("is the current folder or one that contains it".into());
        }
    }
    let entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| ModelError::model_dir(dir, format!("cannot list it: {e}")))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| ModelError::model_dir(dir, format!("cannot list it: {e}")))?;
    if entries.is_empty() {
        return Ok(());
    }
    let manifest = match read_manifest(dir) {
        Ok(manifest) => manifest,
        Err(e) => return refuse(format!("is not a vigil model that verifies ({e})")),
    };
    let listed = |name: &String| name == MANIFEST || manifest.files.iter().any(|f| &f.file == name);
    if let Some(foreign) = entries.iter().find(|name| !listed(name)) {
        return refuse(format!(
            "holds `{foreign}`, which is not one of the model's files"
        ));
    }
    Ok(())
}

/// Reads and verifies a model directory's manifest (format, version, checksums).
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    read_model_dir(dir).map(|(manifest, _)| manifest)
}

/// Reads a model directory: its manifest and every file it lists, verified (format, version,
/// checksums). Errors name the directory and say what to do.
pub fn read_model_dir(dir: &Path) -> Result<(Manifest, WeightFiles)> {
    vigil_core::write::durable::restore_moved_aside(dir);
    if !dir.is_dir() {
        return Err(ModelError::model_dir(
            dir,
            "does not exist or is not a directory; train a model first with `vigil train`",
        ));
    }
    let bytes = std::fs::read(dir.join(MANIFEST)).map_err(|_| {
        ModelError::model_dir(
            dir,
            format!("has no {MANIFEST}; it is not a vigil model directory"),
        )
    })?;
    let manifest = parse_manifest(&bytes).map_err(|why| ModelError::model_dir(dir, why))?;
    let mut files = WeightFiles::new();
    for f in &manifest.files {
        check_file_names([&f.file]).map_err(|why| ModelError::model_dir(dir, why))?;
        if let Ok(bytes) = std::fs::read(dir.join(&f.file)) {
            files.insert(f.file.clone(), bytes);
        }
    }
    check_files(&manifest, &files).map_err(|why| ModelError::model_dir(dir, why))?;
    Ok((manifest, files))
}

/// The manifest in `bytes`, when it is a vigil model manifest of this build's format; otherwise
/// what is wrong and what to do.
pub fn parse_manifest(bytes: &[u8]) -> std::result::Result<Manifest, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("{MANIFEST} is corrupt ({e}); retrain the model"))?;
    if value.get("format").and_then(|f| f.as_str()) != Some("vigil-model") {
        return Err(format!(
            "{MANIFEST} is not a vigil model manifest (field `format` must be \"vigil-model\")"
        ));
    }
    let version = value
        .get("format_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if version > FORMAT_VERSION as u64 {
        return Err(format!("was written in model format {version} by a newer vigil; this vigil reads format {FORMAT_VERSION}: upgrade vigil"));
    }
    if version != FORMAT_VERSION as u64 {
        return Err(format!(
            "has unsupported model format {version}; retrain the model"
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| format!("{MANIFEST} is corrupt: {e}; retrain the model"))
}

/// Checks that `files` holds every file `manifest` lists, each matching its checksum.
pub fn check_files(manifest: &Manifest, files: &WeightFiles) -> std::result::Result<(), String> {
    for f in &manifest.files {
        let bytes = files.get(&f.file).ok_or_else(|| {
            format!(
                "file {} listed in the manifest is missing; retrain the model",
                f.file
            )
        })?;
        if sha256_hex(bytes) != f.sha256 {
            return Err(format!(
                "file {} does not match its checksum (corrupt or edited); retrain the model",
                f.file
            ));
        }
    }
    Ok(())
}
