//! The one error type of `vigil-core`.
//!
//! Every variant names *what* is wrong and *where* (file, line, column, field) so that the
//! message a user sees is something they can act on. The CLI maps all of them to exit code 2.

use std::path::PathBuf;

/// Errors raised while reading, cleaning, preparing or evaluating data.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A file could not be opened or read.
    // The OS error is part of the message and deliberately not the error's `source`: an
    // `{:#}` chain would print it twice.
    #[error("cannot read {path}: {error} (check that the path exists and is readable)")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating-system error.
        error: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("cannot write {path}: {error} (check that its folder exists and is writable, and that the disk has room)")]
    Write {
        /// The file or folder that failed.
        path: PathBuf,
        /// The operating-system error.
        error: std::io::Error,
    },
    /// A file was read but its content is malformed at a known place.
    #[error("{path}:{line}{column}: {message}", column = column.as_ref().map(|c| format!(": column {c}")).unwrap_or_default())]
    Parse {
        /// The file that is malformed.
        path: PathBuf,
        /// 1-based line (or record) number.
        line: usize,
        /// 1-based column number or column name, when the problem is in one cell.
        column: Option<String>,
        /// What is wrong and what to do about it.
        message: String,
    },
    /// A file is well formed but unusable as a whole (empty, no metrics, unknown layout, ...).
    #[error("{path}: {message}")]
    File {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong and what to do about it.
        message: String,
    },
    /// A value or combination of values is invalid (a parameter, a shape, a mismatch).
    #[error("{0}")]
    Invalid(String),
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        CoreError::Invalid(message.into())
    }

    /// Shorthand for [`CoreError::File`].
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        CoreError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`CoreError::Write`].
    pub fn write(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        CoreError::Write {
            path: path.into(),
            error,
        }
    }

    /// Shorthand for [`CoreError::Io`].
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        CoreError::Io {
            path: path.into(),
            error,
        }
    }
}

/// Result alias used throughout `vigil-core`.
pub type Result<T> = std::result::Result<T, CoreError>;
