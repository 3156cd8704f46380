//! NumPy arrays in and out. The Python layer hands over float64 (or int64 labels) arrays made
//! with `np.asarray`, which copies nothing when the caller's array already has that type; here
//! the values are copied once into the `Vec` the pipeline owns (it repairs missing values in
//! place, so it cannot borrow the caller's memory). Results move out without a copy: each `Vec`
//! becomes the NumPy array's buffer.

use crate::errors::invalid;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// A 2-D array (steps × metrics) as row-major values, with its metric count.
pub struct Matrix {
    pub values: Vec<f64>,
    pub metrics: usize,
}

/// `array` as a matrix of steps × metrics; any other rank is refused, naming `what`.
pub fn matrix(array: PyReadonlyArrayDyn<'_, f64>, what: &str) -> PyResult<Matrix> {
    let shape = array.shape().to_vec();
    let [_steps, metrics] = shape[..] else {
        return Err(invalid(format!(
            "{what} must be a 2-D array of steps × metrics, got a {}-D array of shape {shape:?}{}",
            shape.len(),
            if shape.len() == 1 {
                " (for a single metric, pass X.reshape(-1, 1))"
            } else {
                ""
            }
        )));
    };
    if metrics == 0 {
        return Err(invalid(format!(
            "{what} has no metric (shape {shape:?}): it needs at least one column"
        )));
    }
    Ok(Matrix {
        values: values_of(&array),
        metrics,
    })
}

/// `array` as a vector; any other rank is refused, naming `what`.
pub fn vector(array: PyReadonlyArrayDyn<'_, f64>, what: &str) -> PyResult<Vec<f64>> {
    let shape = array.shape();
    if shape.len() != 1 {
        return Err(invalid(format!(
            "{what} must be a 1-D array, got a {}-D array of shape {shape:?}",
            shape.len()
        )));
    }
    Ok(values_of(&array))
}

/// A vector of finite values (scores a metric or a threshold is computed over).
pub fn finite_vector(array: PyReadonlyArrayDyn<'_, f64>, what: &str) -> PyResult<Vec<f64>> {
    let values = vector(array, what)?;
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "{what} holds a non-finite value ({}) at index {at}; scores must be finite numbers",
            values[at]
        )));
    }
    Ok(values)
}

/// A vector of 0/1 flags (labels or alarms).
pub fn flags(array: PyReadonlyArrayDyn<'_, i64>, what: &str) -> PyResult<Vec<u8>> {
    let shape = array.shape();
    if shape.len() != 1 {
        return Err(invalid(format!(
            "{what} must be a 1-D array of 0/1, got a {}-D array of shape {shape:?}",
            shape.len()
        )));
    }
    array
        .as_array()
        .iter()
        .enumerate()
        .map(|(at, &v)| match v {
            0 | 1 => Ok(v as u8),
            other => Err(invalid(format!(
                "{what} must hold only 0 (normal) and 1 (anomalous), got {other} at index {at}"
            ))),
        })
        .collect()
}

/// The values in row-major order: one copy, straight from memory when the array is row-major
/// contiguous, else element by element in logical order (a column-major array, as NumPy makes
/// of a DataFrame, or a strided view: `as_slice` would hand a column-major buffer over in memory
/// order, metrics first).
fn values_of(array: &PyReadonlyArrayDyn<'_, f64>) -> Vec<f64> {
    match array.as_slice() {
        Ok(contiguous) if array.is_c_contiguous() => contiguous.to_vec(),
        _ => array.as_array().iter().copied().collect(),
    }
}

/// A rule's verdict on scores: the threshold in force at each, and 1 where it is reached.
pub type Verdict<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<u8>>);

/// A vector out, without a copy.
pub fn vector_out<T: numpy::Element>(py: Python<'_>, values: Vec<T>) -> Bound<'_, PyArray1<T>> {
    PyArray1::from_vec(py, values)
}

/// Row-major values out as a `rows × columns` array, without a copy.
pub fn matrix_out<T: numpy::Element>(
    py: Python<'_>,
    values: Vec<T>,
    columns: usize,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    let rows = values.len() / columns.max(1);
    PyArray1::from_vec(py, values).reshape([rows, columns])
}
