//! Scores kept from a benchmark run (`vigil bench --keep-scores`), so that threshold rules can
//! be compared on the same scores without training again (`vigil thresholds`).

use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One entity's scores under one detector: what a threshold rule is given, and the labels it
/// is judged against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedScores {
    /// Entity name (an SMD machine, a SMAP channel, ...).
    pub entity: String,
    /// Detector that scored it.
    pub detector: String,
    /// The model's calibration scores (what train-calibrated rules fit on).
    pub calibration: Vec<f64>,
    /// Scores of the test series, one per step.
    pub test: Vec<f64>,
    /// Test labels, one per step (1 = anomalous).
    pub labels: Vec<u8>,
}

impl SavedScores {
    /// Reads a file written by `vigil bench --keep-scores`, refusing one whose labels do not
    /// match its test scores step for step.
    pub fn load(path: &Path) -> Result<SavedScores> {
        let bytes = std::fs::read(path)
            .map_err(|e| CoreError::invalid(format!("cannot read {}: {e}", path.display())))?;
        let saved: SavedScores = serde_json::from_slice(&bytes).map_err(|e| {
            CoreError::invalid(format!(
                "{} is not a scores file written by `vigil bench --keep-scores`: {e}",
                path.display()
            ))
        })?;
        if saved.labels.len() != saved.test.len() {
            return Err(CoreError::invalid(format!(
                "{}: {} test scores but {} labels; write it again with `vigil bench --keep-scores`",
                path.display(),
                saved.test.len(),
                saved.labels.len()
            )));
        }
        Ok(saved)
    }
}
