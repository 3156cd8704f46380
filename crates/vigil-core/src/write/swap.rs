//! Replacing a folder (a model directory) so that a kill at any instant leaves the old folder or
//! the new one at its path, never neither.

use super::crash::{self, crash_point};
use super::durable::{exchange, parent_of, sync_dir, temp_builder, temp_prefix};
use crate::error::CoreError;
use std::path::{Path, PathBuf};

/// A fresh, empty staging folder beside `target` (`.name.vigil-<pid>-<random>.staging`), to be
/// filled and then put in place by [`swap_dir`]. The caller keeps it, or removes it on failure.
pub fn staging_dir(target: &Path) -> Result<PathBuf, CoreError> {
    let parent = parent_of(target);
    std::fs::create_dir_all(&parent).map_err(|e| CoreError::write(&parent, e))?;
    let prefix = temp_prefix(target);
    let dir = temp_builder(target, &prefix, ".staging", 0o755)
        .tempdir_in(&parent)
        .map_err(|e| CoreError::write(&parent, e))?;
    Ok(dir.keep())
}

/// Puts the complete, synced folder `staged` at `target`. Whatever is at `target` is replaced:
/// the caller must have proven it is its own. With `renameat2(RENAME_EXCHANGE)` the two swap
/// in one step and the old one is then removed; where the file system cannot exchange, the old
/// folder is renamed aside first, and a run killed between the two renames has it put back by
/// the next write to the same path ([`super::durable::clean_leftovers`]).
pub fn swap_dir(staged: &Path, target: &Path) -> Result<(), CoreError> {
    let parent = parent_of(target);
    let sync = || sync_dir(&parent).map_err(|e| CoreError::write(&parent, e));
    if std::fs::symlink_metadata(target).is_err() {
        std::fs::rename(staged, target).map_err(|e| CoreError::write(target, e))?;
        crash_point("model:renamed");
        return sync();
    }
    if !crash::exchange_disabled()
        && exchange(staged, target).map_err(|e| CoreError::write(target, e))?
    {
        crash_point("model:swapped");
        sync()?;
        crash_point("model:swap-synced");
        // `staged` now holds the old folder. The new model is in place: failing to remove the
        // old one only leaves a leftover that the next write cleans.
        let _ = std::fs::remove_dir_all(staged);
        return sync();
    }
    let mut aside = temp_prefix(target);
    aside.push("aside.old");
    let aside = parent.join(aside);
    std::fs::rename(target, &aside).map_err(|e| CoreError::write(target, e))?;
    crash_point("model:moved-aside");
    if let Err(e) = std::fs::rename(staged, target) {
        // Put the old model back before reporting: the user keeps what they had.
        let _ = std::fs::rename(&aside, target);
        return Err(CoreError::write(target, e));
    }
    crash_point("model:renamed");
    sync()?;
    let _ = std::fs::remove_dir_all(&aside);
    sync()
}
