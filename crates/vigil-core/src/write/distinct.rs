//! An output must never be one of the command's own inputs: writing the scores over the series
//! they were computed from would destroy the data the user asked vigil to read.

use crate::error::CoreError;
use std::path::Path;

/// Refuses when `output` already exists and is the same file as one of `inputs` (same device
/// and inode, so links and different spellings of one path are caught too). `flag` names the
/// output flag for the message.
pub fn refuse_overwriting_inputs(
    flag: &str,
    output: &Path,
    inputs: &[(&str, &Path)],
) -> Result<(), CoreError> {
    let Some(out) = identity(output) else {
        return Ok(());
    };
    for (input_flag, input) in inputs {
        if identity(input) == Some(out) {
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
    }
}
