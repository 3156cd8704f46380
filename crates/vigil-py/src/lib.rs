//! The native module of the `vigil` Python package (`vigil._native`). The package's Python
//! layer (python/vigil) gives it the scikit-learn/PyOD habits; this crate only crosses the
//! language boundary: NumPy arrays in and out ([`arrays`]), vigil's errors as Python exceptions
//! ([`errors`]), the GIL released while a model trains or scores.

mod arrays;
mod errors;
mod metrics;
mod model;
mod rules;

use pyo3::prelude::*;

/// Every registered detector with its summary and default config, as JSON.
#[pyfunction]
fn detectors_json() -> PyResult<String> {
    serde_json::to_string(&vigil_models::registry::detectors())
        .map_err(|e| errors::invalid(format!("cannot encode the registry: {e}")))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_class::<rules::Rule>()?;
    m.add_function(wrap_pyfunction!(detectors_json, m)?)?;
    m.add_function(wrap_pyfunction!(rules::anomaly_scores, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::point, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::point_adjust, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::affiliation_figures, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::volumes, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::areas, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::best_f1, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::evaluate, m)?)?;
    Ok(())
}
