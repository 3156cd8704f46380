//! A whole model as one byte string: a tar archive of exactly the files its model directory
//! holds (`manifest.json` first, then the files it lists, in its order). `tar -xf` of the
//! bytes gives a model directory `vigil detect --model` reads, and the bytes of one model are
//! always the same (no times, owners or modes from the machine). `MemoryStore` keeps models this
//! way; it is the form in which a service's store or language bindings can pass them.

use crate::error::{ModelError, Result};
use crate::model_dir::{check_file_names, check_files, parse_manifest, seal, Manifest, MANIFEST};
use crate::weights::WeightFiles;
use std::io::Read;

/// The archive of a model: `manifest` (its checksums filled in) and `files`.
pub fn to_archive(manifest: &Manifest, files: &WeightFiles) -> Result<Vec<u8>> {
    check_file_names(files.keys()).map_err(refused)?;
    let manifest = seal(manifest.clone(), files);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| refused(format!("cannot encode the manifest: {e}")))?;
    let mut archive = tar::Builder::new(Vec::new());
    let mut append = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, name, bytes)
            .map_err(|e| refused(format!("cannot add {name}: {e}")))
    };
    append(MANIFEST, &json)?;
    for f in &manifest.files {
        append(&f.file, &files[&f.file])?;
    }
    archive
        .into_inner()
        .map_err(|e| refused(format!("cannot finish the archive: {e}")))
}

/// The manifest and files of a model archive, verified as a model directory is (format,
/// version, every checksum). Refused: anything but plain files with plain names, a name twice,
/// a file the manifest does not list, or no manifest.
pub fn from_archive(bytes: &[u8]) -> Result<(Manifest, WeightFiles)> {
    let mut archive = tar::Archive::new(bytes);
    let mut manifest_bytes = None;
    let mut files = WeightFiles::new();
    let entries = archive
        .entries()
        .map_err(|e| refused(format!("is not a model archive (a tar file): {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| refused(format!("is not a readable tar archive: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| refused(format!("holds an entry with an unreadable name: {e}")))?
            .to_string_lossy()
            .into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(refused(format!(
                "holds `{name}`, which is not a plain file"
            )));
        }
        // The header's size is the archive's word, not a fact: never allocate more than the
        // archive holds (a forged size of 2^60 would abort the process).
        let mut content = Vec::with_capacity((entry.size() as usize).min(bytes.len()));
        entry
            .read_to_end(&mut content)
            .map_err(|e| refused(format!("cannot read `{name}`: {e}")))?;
        let seen_before = if name == MANIFEST {
            manifest_bytes.replace(content).is_some()
        } else {
            check_file_names([&name]).map_err(refused)?;
            files.insert(name.clone(), content).is_some()
        };
        if seen_before {
            return Err(refused(format!("holds `{name}` twice")));
        }
    }
    let manifest_bytes = manifest_bytes.ok_or_else(|| {
        refused(format!(
            "has no {MANIFEST}; it is not a vigil model archive"
        ))
    })?;
    let manifest = parse_manifest(&manifest_bytes).map_err(refused)?;
    check_files(&manifest, &files).map_err(refused)?;
    if let Some(extra) = files
        .keys()
        .find(|name| !manifest.files.iter().any(|f| &f.file == *name))
    {
        return Err(refused(format!(
            "holds `{extra}`, which its manifest does not list"
        )));
    }
    Ok((manifest, files))
}

fn refused(why: String) -> ModelError {
    ModelError::Weights(format!("the model archive {why}"))
}
