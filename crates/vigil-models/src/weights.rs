//! A detector's trained state as values in memory, in two shapes:
//!
//! - [`WeightFiles`]: everything a detector needs to score again, as named byte strings (a model
//!   directory holds each as a file; a model sent as bytes packs them into one archive). What
//!   [`crate::Detector::save_weights`] gives and [`crate::Detector::load_weights`] takes.
//! - [`NamedTensors`]: the parameters of a neural detector by module path, as plain `f32` data —
//!   all of them or only some layer groups. What federated averaging sends, and what transfer
//!   learning copies from a base model into a new one
//!   ([`crate::Detector::export_tensors`], [`crate::Detector::import_tensors`]).

use crate::error::{ModelError, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A detector's trained state: file name → bytes.
pub type WeightFiles = BTreeMap<String, Vec<u8>>;

/// One parameter tensor as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    /// Its shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Its values, row-major (`shape.iter().product()` of them).
    pub values: Vec<f32>,
}

/// Parameter tensors by module path (`encoder.layers.0.weight`), in path order.
pub type NamedTensors = BTreeMap<String, NamedTensor>;

/// The bytes of `file`, or an error naming it when the detector's state lacks it.
pub fn weight_file<'a>(files: &'a WeightFiles, file: &str) -> Result<&'a [u8]> {
    files.get(file).map(Vec::as_slice).ok_or_else(|| {
        ModelError::Weights(format!(
            "{file} is missing from the model's files; retrain the model"
        ))
    })
}

/// Adds `value` as the JSON file `file` (the fitted state of a classical detector, or what a
/// neural one keeps beside its network).
pub fn put_json<T: Serialize>(files: &mut WeightFiles, file: &str, value: &T) -> Result<()> {
    let json = serde_json::to_vec(value)
        .map_err(|e| ModelError::Weights(format!("cannot encode {file}: {e}")))?;
    files.insert(file.into(), json);
    Ok(())
}

/// Reads the JSON file `file` written by [`put_json`]; a missing or malformed file is a clear error.
pub fn get_json<T: DeserializeOwned>(files: &WeightFiles, file: &str) -> Result<T> {
    serde_json::from_slice(weight_file(files, file)?)
        .map_err(|e| ModelError::Weights(format!("{file} is corrupt ({e}); retrain the model")))
}

/// f64 values, little-endian (the calibration scores of a model).
pub fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The f64 values of `file`, written by [`f64_bytes`].
pub fn f64s_from(file: &str, bytes: &[u8]) -> Result<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(ModelError::Weights(format!(
            "{file}: length is not a multiple of 8 bytes; retrain the model"
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect())
}

/// The error of a detector that has no parameter tensors to export or import.
pub fn no_tensors(kind: &str) -> ModelError {
    ModelError::config(
        kind,
        "this detector has no layers of parameter tensors to export or import (it is not a \
         neural network); move the whole model instead (TrainedModel::to_bytes)",
    )
}

/// Checks that `tensors` are well formed: each holds as many values as its shape says.
pub fn check_shapes(tensors: &NamedTensors) -> Result<()> {
    for (name, t) in tensors {
        let expected: usize = t.shape.iter().product();
        if expected != t.values.len() {
            return Err(ModelError::Shape(format!(
                "tensor `{name}` has shape {:?} ({expected} values) but holds {} values",
                t.shape,
                t.values.len()
            )));
        }
    }
    Ok(())
}
