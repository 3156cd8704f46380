//! An output must never be one of the command's own inputs: writing the scores over the series
//! they were computed from would destroy the data the user asked vigil to read.

use crate::error::CoreError;
use std::path::Path;

/// Refuses when `output` is the same file as one of `inputs`: the same device and inode when
/// both exist (so links and different spellings of one path are caught too), else the same
/// path once its folder is resolved (two outputs of one run named alike, neither written yet).
/// `flag` names the output flag for the message.
pub fn refuse_overwriting_inputs(
    flag: &str,
    output: &Path,
    inputs: &[(&str, &Path)],
) -> Result<(), CoreError> {
    let out = identity(output);
    let out_path = resolved(output);
    for (input_flag, input) in inputs {
        let same_file = out.is_some() && identity(input) == out;
        if same_file || (out_path.is_some() && resolved(input) == out_path) {
            return Err(CoreError::file(
                output,
                format!(
                    "{flag} is the same file as {input_flag} {}; vigil will not overwrite its input — choose another {flag} path",
                    input.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses an output path inside the folder `dir` (a model directory: a file written there would
/// break its checksums, or be taken for one of its files).
pub fn refuse_writing_inside(
    flag: &str,
    output: &Path,
    dir_flag: &str,
    dir: &Path,
) -> Result<(), CoreError> {
    match (resolved(output), std::fs::canonicalize(dir)) {
        (Some(out), Ok(dir_path)) if out.starts_with(&dir_path) => Err(CoreError::file(
            output,
            format!(
                "{flag} is inside {dir_flag} {}; vigil does not write into a model directory — choose a path outside it",
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// The absolute path `path` names: its nearest existing folder resolved (links, `..`), then the
/// rest of its components as given.
fn resolved(path: &Path) -> Option<std::path::PathBuf> {
    let mut rest = Vec::new();
    let mut existing = path;
    loop {
        let parent = match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        rest.push(existing.file_name()?);
        if let Ok(base) = std::fs::canonicalize(parent) {
            return Some(rest.iter().rev().fold(base, |p, c| p.join(c)));
        }
        existing = parent;
    }
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::canonicalize(path).ok().map(|p| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.hash(&mut h);
            (0, h.finish())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_under_another_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "a\n1\n").unwrap();
        let other = dir.path().join(".").join("in.csv");
        let err = refuse_overwriting_inputs("--output", &other, &[("--input", &input)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("same file as --input"), "{err}");
        let fresh = dir.path().join("out.csv");
        assert!(refuse_overwriting_inputs("--output", &fresh, &[("--input", &input)]).is_ok());
        // Two paths not written yet, named alike.
        let state = dir.path().join(".").join("out.csv");
        assert!(refuse_overwriting_inputs("--output", &fresh, &[("--state", &state)]).is_err());
        let model = dir.path().join("model");
        std::fs::create_dir(&model).unwrap();
        let inside = model.join("pca.json");
        assert!(refuse_writing_inside("--output", &inside, "--model", &model).is_err());
        assert!(refuse_writing_inside("--output", &fresh, "--model", &model).is_ok());
    }
}
