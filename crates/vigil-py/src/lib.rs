//! The native module of the `vigil` Python package (`vigil._native`). The package's Python
//! layer (python/vigil) gives it the scikit-learn/PyOD habits; this crate only crosses the
//! language boundary: NumPy arrays in and out ([`arrays`]), vigil's errors as Python exceptions
//! ([`errors`]), the GIL released while a model trains or scores.

mod arrays;
mod errors;
mod federated;
mod fleet;
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

/// A series file as the CLI reads it (`.csv` with a header, `.npy`, `.txt`, a benchmark's
/// layout): its values (steps × metrics), metric names, and labels when the file has them.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn read_series(
    py: Python<'_>,
    path: std::path::PathBuf,
) -> PyResult<(
    Bound<'_, numpy::PyArray2<f64>>,
    Vec<String>,
    Option<Bound<'_, numpy::PyArray1<u8>>>,
)> {
    let series = py
        .detach(|| vigil_core::read::read_series(&path))
        .map_err(errors::core_error)?;
    let m = series.n_metrics();
    Ok((
        arrays::matrix_out(py, series.values, m)?,
        series.metric_names,
        series.labels.map(|l| arrays::vector_out(py, l)),
    ))
}

/// Sizes the pool every parallel part of vigil runs on to `threads` workers; only before the
/// first model is built or scored in this process (later, the pool's size is fixed).
#[pyfunction]
fn set_threads(threads: usize) -> PyResult<()> {
    vigil_models::threads::use_threads(threads).map_err(|e| {
        errors::invalid(format!(
            "{e}; call vigil.set_threads before the first model is built or scored"
        ))
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_class::<rules::Rule>()?;
    m.add_function(wrap_pyfunction!(detectors_json, m)?)?;
    m.add_function(wrap_pyfunction!(read_series, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(federated::average, m)?)?;
    m.add_function(wrap_pyfunction!(federated::rank, m)?)?;
    m.add_function(wrap_pyfunction!(fleet::cluster, m)?)?;
    m.add_function(wrap_pyfunction!(fleet::train_base, m)?)?;
    m.add_function(wrap_pyfunction!(fleet::place_entity, m)?)?;
    m.add_function(wrap_pyfunction!(fleet::transfer, m)?)?;
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
