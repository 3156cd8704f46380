//! Writing an output file as the user meant it.
//!
//! - A regular file (or a path that does not exist yet) is written to a temporary sibling,
//!   synced, and renamed over the target: a reader, a crash or a kill sees the old file or the
//!   new one, never half of one. The new file keeps the old one's permissions.
//! - A symbolic link to a regular file replaces the file it points to, not the link.
//! - A FIFO or a character device (a pipe to another program, `/dev/null`) is written in place:
//!   it cannot be replaced, and replacing it would turn it into an ordinary file.
//! - A name for one of this process's open descriptors (`/dev/stdout`, `/dev/stderr`,
//!   `/dev/fd/N`, `/proc/self/fd/N`) is written through that descriptor, whatever it is open
//!   on: `--output /dev/stdout >> log` appends to the log as the shell was asked to.
//! - A folder, a block device, a socket, a dangling link, a read-only file or a file with
//!   other hard links (replacing it would split them) is refused with a message.

use super::crash::crash_point;
use super::durable::{clean_leftovers, parent_of, sync_dir, temp_builder, temp_prefix};
use crate::error::CoreError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where an output path leads.
enum Target {
    /// A regular file, or nothing yet: replaced atomically at this (link-resolved) path.
    Replace(PathBuf),
    /// A FIFO or character device: opened and written in place.
    InPlace,
    /// One of this process's open descriptors: written through a duplicate of it.
    Descriptor(i32),
}

/// The descriptor a path names, for the names the system gives a process's own descriptors.
fn descriptor_of(path: &Path) -> Option<i32> {
    let text = path.to_str()?;
    match text {
        "/dev/stdout" => return Some(1),
        "/dev/stderr" => return Some(2),
        _ => {}
    }
    let own = format!("/proc/{}/fd/", std::process::id());
    ["/dev/fd/", "/proc/self/fd/", own.as_str()]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix)?.parse().ok())
}

/// Whether `path` names this process's standard output (`/dev/stdout`, `/dev/fd/1`, ...).
pub fn is_stdout(path: &Path) -> bool {
    descriptor_of(path) == Some(1)
}

fn classify(path: &Path) -> Result<Target, CoreError> {
    if let Some(fd) = descriptor_of(path) {
        return Ok(Target::Descriptor(fd));
    }
    let Ok(link) = std::fs::symlink_metadata(path) else {
        return Ok(Target::Replace(path.to_path_buf()));
    };
    let resolved = if link.file_type().is_symlink() {
        std::fs::canonicalize(path).map_err(|_| {
            CoreError::file(
                path,
                "is a symbolic link to a path that does not exist; create its target or choose another output path",
            )
        })?
    } else {
        path.to_path_buf()
    };
    if resolved.starts_with("/proc") {
        return Err(CoreError::file(
            path,
            "leads into /proc (another process's descriptor or a kernel file); write to a file, a pipe or /dev/stdout instead",
        ));
    }
    let meta = std::fs::metadata(&resolved).map_err(|e| CoreError::write(path, e))?;
    let kind = meta.file_type();
    if kind.is_file() {
        check_replaceable_file(path, &resolved, &meta)?;
        return Ok(Target::Replace(resolved));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() || kind.is_char_device() {
            return Ok(Target::InPlace);
        }
    }
    let what = if kind.is_dir() {
        "a folder"
    } else {
        "a block device, socket or other special file"
    };
    Err(CoreError::file(
        path,
        format!("is {what}, not a file vigil can write its output to; name a file path instead"),
    ))
}

/// Writes `path` so that a reader never sees a half-written file: `fill` streams the content
/// (buffered), and when it fails nothing reaches `path`. Every file vigil writes goes through
/// here (see the module documentation for links, FIFOs and devices).
pub fn write_atomically<E: From<CoreError>>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let file = match classify(path)? {
        Target::Replace(target) => return replace_file(path, &target, fill),
        Target::InPlace => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| CoreError::write(path, e))?,
        Target::Descriptor(fd) => {
            // A duplicate shares the open file description: its offset and O_APPEND hold.
            // SAFETY: dup only reads the descriptor number; a bad one returns -1.
            let copy = unsafe { libc::dup(fd) };
            if copy < 0 {
                return Err(CoreError::write(path, std::io::Error::last_os_error()).into());
            }
            // SAFETY: `copy` is a fresh descriptor owned by nothing else.
            unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(copy) }
        }
    };
    let mut w = std::io::BufWriter::new(file);
    fill(&mut w)?;
    w.flush().map_err(|e| CoreError::write(path, e))?;
    Ok(())
}

/// A regular file is replaced only when the user could write it (a read-only file stays as
/// `echo > file` would leave it) and when it has no other hard link (replacing one name would
/// leave the others with the old content).
fn check_replaceable_file(
    shown: &Path,
    resolved: &Path,
    meta: &std::fs::Metadata,
) -> Result<(), CoreError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let c_path = std::ffi::CString::new(resolved.as_os_str().as_bytes())
        .map_err(|e| CoreError::write(shown, e.into()))?;
    // SAFETY: a valid NUL-terminated path; access only checks permissions.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } != 0 {
        return Err(CoreError::file(
            shown,
            "is read-only for you; vigil will not replace it — make it writable or choose another output path",
        ));
    }
    if meta.nlink() > 1 {
        return Err(CoreError::file(
            shown,
            format!(
                "has {} hard links; replacing it would leave the other names with the old content — choose another output path",
                meta.nlink()
            ),
        ));
    }
    Ok(())
}

fn replace_file<E: From<CoreError>>(
    shown: &Path,
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let dir = parent_of(target);
    if std::fs::metadata(&dir).is_ok_and(|m| !m.is_dir()) {
        return Err(CoreError::file(
            &dir,
            format!(
                "is a file, so it cannot hold the output {}; choose an output path in a folder",
                shown.display()
            ),
        )
        .into());
    }
    std::fs::create_dir_all(&dir).map_err(|e| CoreError::write(&dir, e))?;
    clean_leftovers(target);
    let prefix = temp_prefix(target);
    let mut tmp = temp_builder(target, &prefix, ".tmp", 0o644)
        .tempfile_in(&dir)
        .map_err(|e| CoreError::write(&dir, e))?;
    // The new file keeps the old one's owner where this process may set it (as root).
    if let Ok(old) = std::fs::metadata(target) {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(old.uid()), Some(old.gid()));
    }
    crash_point("output:created");
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w)?;
        w.flush().map_err(|e| CoreError::write(shown, e))?;
    }
    crash_point("output:written");
    tmp.as_file()
        .sync_all()
        .map_err(|e| CoreError::write(shown, e))?;
    crash_point("output:synced");
    tmp.persist(target)
        .map_err(|e| CoreError::write(shown, e.error))?;
    crash_point("output:renamed");
    sync_dir(&dir).map_err(|e| CoreError::write(&dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    fn write_text(path: &Path, text: &str) -> Result<()> {
        write_atomically(path, |w| {
            w.write_all(text.as_bytes())
                .map_err(|e| CoreError::write(path, e))
        })
    }

    #[test]
    fn a_link_to_a_file_replaces_the_file_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.csv");
        let link = dir.path().join("link.csv");
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_text(&link, "new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn a_replaced_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.csv");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_text(&path, "new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_folder_or_a_dangling_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_text(dir.path(), "x").unwrap_err().to_string();
        assert!(err.contains("is a folder"), "{err}");
        let link = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        let err = write_text(&link, "x").unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(std::fs::symlink_metadata(&link).is_ok());
    }

    #[test]
    fn a_character_device_is_written_in_place() {
        write_text(Path::new("/dev/null"), "into the void").unwrap();
        let meta = std::fs::metadata("/dev/null").unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(meta.file_type().is_char_device());
    }
}
