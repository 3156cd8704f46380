//! How results reach the user: JSON or human text, and atomic file writes.

use std::io::Write;
use std::path::Path;

/// Output preferences shared by every subcommand.
pub struct Ui {
    /// Print JSON.
    pub json: bool,
    /// No progress or chatter.
    pub quiet: bool,
}

impl Ui {
    /// Prints a line of chatter to stderr unless quiet or in JSON mode.
    pub fn note(&self, message: impl AsRef<str>) {
        if !self.quiet && !self.json {
            eprintln!("{}", message.as_ref());
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// failure never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_with(path, |w| {
        w.write_all(bytes)?;
        Ok(())
    })
}

/// Like [`write_atomic`], with the content streamed by `fill` (so a large output need not be
/// held in memory); nothing reaches `path` when `fill` fails.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    vigil_core::write::write_atomically(path, |w| {
        fill(w).map_err(|e| {
            // An I/O failure is about the file; any other error (e.g. a budget check) is not.
            if e.is::<std::io::Error>() {
                e.context(format!("cannot write {}", path.display()))
            } else {
                e
            }
        })
    })
}

/// Formats an optional figure with 4 decimals, `—` when absent.
pub fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "—".into())
}
