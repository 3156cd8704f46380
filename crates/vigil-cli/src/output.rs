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
            // Chatter is best-effort: a closed stderr must not stop the work.
            let _ = writeln!(std::io::stderr(), "{}", message.as_ref());
        }
    }
}

/// Standard output could not be written: closed by the reader (`vigil models | head -1`) or
/// full (`> /dev/full`). `main` ends quietly with exit 0 on a closed pipe, as ripgrep and other
/// well-behaved filters do, and with exit 2 and this message otherwise.
#[derive(Debug)]
pub struct StdoutFailed(pub std::io::Error);

impl std::fmt::Display for StdoutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutFailed {}

/// Writes one line to standard output, returning [`StdoutFailed`] instead of panicking as
/// `println!` does. Use through [`say!`](crate::say).
pub fn print_line(line: std::fmt::Arguments) -> Result<(), StdoutFailed> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(StdoutFailed)
}

/// `println!` for results: `say!(...)?` fails with [`StdoutFailed`] where `println!` panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::print_line(format_args!($($arg)*))
    };
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
            if e.is::<std::io::Error>() || e.is::<csv::Error>() {
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
