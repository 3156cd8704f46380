//! What makes a write survive a power cut or a kill: syncing files and folders to disk,
//! temporary names that say who made them, and cleaning what a killed run left behind.
//!
//! A temporary sibling of `dir/name` is called `.name.vigil-<pid>-<random>.<kind>`, so that a
//! later run can tell vigil's leftovers from anything else and knows whether the process that
//! made them is still alive. Only such names are ever removed by [`clean_leftovers`]. The pid is
//! this machine's and this PID namespace's: two vigils writing one path from different
//! containers or hosts (a shared volume, NFS) could take each other's live files for leftovers
//! (not guarded against; a lock on the temporary file would be).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Syncs a file's content and metadata to disk.
pub fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Syncs a folder's entries (a create, rename or remove inside it) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    // On Linux a folder opened read-only can be synced; elsewhere this may be refused, and the
    // rename is then as durable as the platform makes it.
    match File::open(dir).and_then(|f| f.sync_all()) {
        Err(e) if cfg!(target_os = "linux") => Err(e),
        _ => Ok(()),
    }
}

/// The folder that holds `path` (`.` for a bare file name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The prefix of every temporary sibling of `path` this process makes: `.name.vigil-<pid>-`.
pub fn temp_prefix(path: &Path) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(format!(".vigil-{}-", std::process::id()));
    prefix
}

/// A builder for a temporary sibling of `target` of the given kind (`.name.vigil-<pid>-…`).
/// It gets the permissions of what it will replace, or `fresh_mode` when nothing is there
/// (a temporary file or folder is private by default; the result is an ordinary one, and a
/// private file or model stays private).
pub fn temp_builder<'a>(
    target: &Path,
    prefix: &'a OsString,
    kind: &'a str,
    fresh_mode: u32,
) -> tempfile::Builder<'a, 'a> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(kind);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(target)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(fresh_mode);
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (target, fresh_mode);
    builder
}

/// The kinds of temporary sibling vigil makes (the name's last extension).
pub const TEMP_KINDS: [&str; 3] = ["tmp", "staging", "old"];

/// A leftover temporary file or folder of a killed run, found by [`leftovers_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Its path.
    pub path: PathBuf,
    /// The path it was a temporary sibling of.
    pub target: PathBuf,
    /// `tmp` (a file being written), `staging` (a model being written) or `old` (a model
    /// being replaced).
    pub kind: String,
}

/// vigil's temporary names in `dir` whose process has ended (a killed run's leftovers).
pub fn leftovers_in(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            // `.name.vigil-<pid>-<random>.<kind>`
            let (name, rest) = file_name
                .to_str()?
                .strip_prefix('.')?
                .rsplit_once(".vigil-")?;
            let (pid, tail) = rest.split_once('-')?;
            let pid: i32 = pid.parse().ok()?;
            let (_, kind) = tail.rsplit_once('.')?;
            if name.is_empty() || !TEMP_KINDS.contains(&kind) || process_alive(pid) {
                return None;
            }
            Some(Leftover {
                path: entry.path(),
                target: dir.join(name),
                kind: kind.to_string(),
            })
        })
        .collect()
}

/// Puts back a folder that a killed two-rename swap left aside (`.name.vigil-<pid>-aside.old`)
/// when nothing is at `path`: reading a model repairs what a crashed write left, without
/// removing anything.
pub fn restore_moved_aside(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok() {
        return;
    }
    if let Some(old) = leftovers_in(&parent_of(path))
        .into_iter()
        .find(|l| l.kind == "old" && l.target.file_name() == path.file_name())
    {
        let _ = std::fs::rename(&old.path, path);
    }
}

/// Removes the leftovers of killed runs from the folder that holds `path`, once per folder
/// per process (a command writing a thousand files into one folder lists it once). A model
/// replaced by the two-rename fallback of [`crate::write::swap_dir`] and killed between its
/// renames left only an `old` copy: that one is put back first, so the user has their model
/// again.
pub fn clean_leftovers(path: &Path) {
    static CLEANED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let dir = parent_of(path);
    {
        let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
        if cleaned.contains(&dir) {
            return;
        }
        cleaned.push(dir.clone());
    }
    for leftover in leftovers_in(&dir) {
        let restored = leftover.kind == "old"
            && std::fs::symlink_metadata(&leftover.target).is_err()
            && std::fs::rename(&leftover.path, &leftover.target).is_ok();
        if restored {
            continue;
        }
        let _ = match std::fs::symlink_metadata(&leftover.path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&leftover.path),
            _ => std::fs::remove_file(&leftover.path),
        };
    }
}

fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return true;
    }
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Swaps two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`): at no instant is either
/// name missing. Returns `Ok(false)` where the platform or file system cannot do it.
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::ffi::OsStrExt;
        let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
        let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: both are valid NUL-terminated paths that outlive the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::ENOTSUP) => Ok(false),
            _ => Err(err),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_processs_temporary_files_are_leftovers_and_a_live_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("scores.csv");
        // PID 0 is never a user process; this process is alive.
        let dead = dir.path().join(".scores.csv.vigil-0-abc.tmp");
        let mine = dir
            .path()
            .join(format!(".scores.csv.vigil-{}-abc.tmp", std::process::id()));
        let foreign = dir.path().join(".scores.csv.backup");
        for p in [&dead, &mine, &foreign] {
            std::fs::write(p, "x").unwrap();
        }
        let found = leftovers_in(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, dead);
        assert_eq!(found[0].target, target);
        clean_leftovers(&target);
        assert!(!dead.exists() && mine.exists() && foreign.exists());
    }

    #[test]
    fn a_model_killed_between_two_renames_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        let old = dir.path().join(".model.vigil-0-abc.old");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("manifest.json"), "{}").unwrap();
        clean_leftovers(&target);
        assert!(target.join("manifest.json").exists() && !old.exists());
    }

    #[test]
    fn exchange_swaps_two_folders() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("x"), "a").unwrap();
        if exchange(&a, &b).unwrap() {
            assert!(b.join("x").exists() && !a.join("x").exists());
        }
    }
}
