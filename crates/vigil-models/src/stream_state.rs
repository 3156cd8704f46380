//! What a stream scored in several runs carries from one run to the next: the state of its
//! threshold rule (SPOT's tail) and its last steps (the detector's context window), tied to
//! the model it was learnt with. Saved as a small JSON
//! file (`vigil detect --state FILE`), so that a stream judged in two runs gets the alarms of
//! one run.

use crate::error::{ModelError, Result};
use crate::model_dir::model_fingerprint;
use serde::{Deserialize, Serialize};
use std::path::Path;
use vigil_core::threshold::{StreamRuleState, ThresholdMethod};

const FORMAT: &str = "vigil-stream-state";
const FORMAT_VERSION: u32 = 1;

/// A stream's state between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// Always `"vigil-stream-state"`: tells a state file from any other JSON.
    pub format: String,
    /// State format version.
    pub format_version: u32,
    /// The model it was learnt with: the SHA-256 of its manifest.
    pub model: String,
    /// The threshold rule it belongs to.
    pub threshold: ThresholdMethod,
    /// What the rule learnt (SPOT's tail, DSPOT's level and tail); `None` for rules that keep
    /// none. Stored as `spot`, its name before DSPOT, so that a SPOT state reads the same in
    /// every version (an older vigil refuses a DSPOT state: it does not know the rule).
    #[serde(rename = "spot", alias = "rule")]
    pub rule: Option<StreamRuleState>,
    /// The stream's last cleaned steps (row-major, fewer than the model's window), so that the
    /// next part's first steps are scored with the steps before them. Empty in state files
    /// written before it was kept.
    #[serde(default)]
    pub context: Vec<f64>,
}

impl StreamState {
    /// A fresh state for `model_dir` under `threshold` (nothing learnt yet).
    pub fn new(model_dir: &Path, threshold: ThresholdMethod) -> Result<StreamState> {
        Ok(StreamState {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            model: fingerprint(model_dir)?,
            threshold,
            rule: None,
            context: Vec::new(),
        })
    }

    /// The state saved at `path` by an earlier run, or a fresh one when there is no file. A file
    /// that is not a state file, or one saved for another model or another threshold rule, is
    /// refused: continuing from it would judge the stream with a tail it did not learn.
    pub fn load_or_new(
        path: &Path,
        model_dir: &Path,
        threshold: ThresholdMethod,
    ) -> Result<StreamState> {
        let fresh = StreamState::new(model_dir, threshold)?;
        let bytes = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
            Err(e) => return Err(refused(path, format!("cannot be read ({e})"))),
            Ok(bytes) => bytes,
        };
        let state: StreamState = serde_json::from_slice(&bytes)
            .ok()
            .filter(|s: &StreamState| s.format == FORMAT)
            .ok_or_else(|| {
                refused(
                    path,
                    "is not a vigil stream-state file; vigil will not overwrite it — choose another --state path".into(),
                )
            })?;
        if state.format_version != FORMAT_VERSION {
            return Err(refused(
                path,
                format!(
                    "has state format {}, this vigil reads {FORMAT_VERSION}",
                    state.format_version
                ),
            ));
        }
        if state.model != fresh.model {
            return Err(refused(
                path,
                format!(
                    "was saved for another model than {}; start a new state file for this model",
                    model_dir.display()
                ),
            ));
        }
        if state.threshold != threshold {
            return Err(refused(path, "was saved under another threshold rule; use the same --threshold as the run that saved it, or a new state file".into()));
        }
        Ok(state)
    }

    /// Writes the state to `path` (atomically: a kill leaves the previous state).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| ModelError::Shape(format!("cannot encode the stream state: {e}")))?;
        vigil_core::write::write_atomically(path, |w| {
            w.write_all(&json)
                .map_err(|e| ModelError::from(vigil_core::CoreError::write(path, e)))
        })
    }
}

fn fingerprint(model_dir: &Path) -> Result<String> {
    model_fingerprint(model_dir).ok_or_else(|| {
        ModelError::model_dir(model_dir, "has no manifest.json; train a model first")
    })
}

fn refused(path: &Path, why: String) -> ModelError {
    ModelError::Core(vigil_core::CoreError::file(path, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spot_state_is_written_as_before_dspot() {
        let mut state = StreamState {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            model: "abc".into(),
            threshold: ThresholdMethod::Spot(Default::default()),
            rule: None,
            context: vec![1.0],
        };
        let calibration: Vec<f64> = (0..100).map(|i| (i % 10) as f64).collect();
        vigil_core::threshold::decide_stream(
            state.threshold,
            &calibration,
            &[3.0],
            &mut state.rule,
        )
        .unwrap();
        let now = serde_json::to_string(&state).unwrap();
        // The field and the SPOT state inside it as before: `"spot":{"config":...}`.
        assert!(now.contains("\"spot\":{\"config\":"), "{now}");
        assert_eq!(serde_json::from_str::<StreamState>(&now).unwrap(), state);
        // Files written while the key was `rule` read too.
        let interim = now.replace("\"spot\":", "\"rule\":");
        assert_eq!(
            serde_json::from_str::<StreamState>(&interim).unwrap(),
            state
        );
    }
}
