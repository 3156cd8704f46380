//! vigil's errors as Python exceptions, each carrying vigil's own message (it names what is wrong
//! and what to do): bad input (arrays, configs, model files) is a `ValueError`, a file that
//! cannot be read or written an `OSError`, a fit that failed numerically a `RuntimeError`.

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;
use vigil_core::CoreError;
use vigil_fleet::fleet::FleetError;
use vigil_models::ModelError;

/// The Python exception for a model-layer error.
pub fn model_error(error: ModelError) -> PyErr {
    let message = error.to_string();
    match error {
        ModelError::Core(core) => core_error(core),
        ModelError::Training(_) | ModelError::Store(_) => PyRuntimeError::new_err(message),
        ModelError::UnknownDetector { .. }
        | ModelError::Config { .. }
        | ModelError::InvalidFields { .. }
        | ModelError::ModelDir { .. }
        | ModelError::Shape(_)
        | ModelError::Weights(_) => PyValueError::new_err(message),
    }
}

/// The Python exception for a data-layer error.
pub fn core_error(error: CoreError) -> PyErr {
    let message = error.to_string();
    match error {
        CoreError::Io { .. } | CoreError::Write { .. } => PyOSError::new_err(message),
        CoreError::Parse { .. } | CoreError::File { .. } | CoreError::Invalid(_) => {
            PyValueError::new_err(message)
        }
    }
}

/// A `ValueError` with `message`.
pub fn invalid(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// The Python exception for a fleet error.
pub fn fleet_error(error: FleetError) -> PyErr {
    let message = error.to_string();
    match error {
        FleetError::Model(model) => model_error(model),
        FleetError::Core(core) => core_error(core),
        FleetError::Write { .. } => PyOSError::new_err(message),
        FleetError::Cluster(_)
        | FleetError::TooShort { .. }
        | FleetError::Corrupt { .. }
        | FleetError::Missing { .. }
        | FleetError::Unlabelled { .. }
        | FleetError::EmptyHalf { .. } => PyValueError::new_err(message),
    }
}
