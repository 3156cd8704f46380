//! Errors of the model layer. All of them are user-facing: each says what is wrong and what to do.

use std::path::PathBuf;
use vigil_core::CoreError;

/// Errors raised while building, fitting, scoring, saving or loading detectors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A data problem from `vigil-core`.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// No detector is registered under this name.
    #[error("unknown detector `{name}`; known detectors: {known}")]
    UnknownDetector {
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// A configuration value is invalid.
    #[error("invalid {detector} config: {message}")]
    Config {
        /// The detector whose config is wrong.
        detector: String,
        /// What is wrong.
        message: String,
    },
    /// Fields of a detector's config are out of their allowed ranges (each named, with its
    /// value and range).
    #[error("invalid {detector} config: {}", join_problems(problems))]
    InvalidFields {
        /// The detector whose config is wrong.
        detector: String,
        /// Each field out of range.
        problems: Vec<crate::config::FieldProblem>,
    },
    /// A model directory is missing, corrupt, foreign or from a newer vigil.
    #[error("model directory {path}: {message}")]
    ModelDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The data does not fit what the model expects (shape, window, metrics).
    #[error("{0}")]
    Shape(String),
    /// A numerical failure during training (loss became NaN, ...).
    #[error("training failed: {0}")]
    Training(String),
    /// A detector's stored state (one of its weight files) is missing, corrupt or does not fit
    /// its config; the message names the file. Reading a model directory adds its path.
    #[error("{0}")]
    Weights(String),
    /// A model store cannot do what was asked (no such name or version, a bad name, I/O).
    #[error("model store: {0}")]
    Store(String),
}

impl ModelError {
    /// Shorthand for [`ModelError::ModelDir`].
    pub fn model_dir(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::ModelDir {
            path: path.into(),
            message: message.into(),
        }
    }
    /// The error of asking an unfitted `detector` for what only fitting gives.
    pub fn not_fitted(detector: &str) -> Self {
        ModelError::Training(format!("the {detector} model is not fitted"))
    }
    /// Shorthand for [`ModelError::Config`].
    pub fn config(detector: &str, message: impl Into<String>) -> Self {
        ModelError::Config {
            detector: detector.into(),
            message: message.into(),
        }
    }
}

/// What a fit left in `slot` (a detector's state beside its network), or the not-fitted error.
pub fn fitted<'a, T>(slot: &'a Option<T>, detector: &str) -> Result<&'a T> {
    slot.as_ref()
        .ok_or_else(|| ModelError::not_fitted(detector))
}

fn join_problems(problems: &[crate::config::FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result alias of the model layer.
pub type Result<T> = std::result::Result<T, ModelError>;
