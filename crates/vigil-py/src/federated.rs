//! Federated training's pieces for Python (Flower's apps call them, `vigil.federated`): a
//! model's tensors out and in, a model trained further on a node's data, and the server's
//! arithmetic — FedAvg and LGF-PKT's peer ranking (`vigil_models::federated`).
//!
//! Tensors cross as `dict[str, numpy.ndarray[float32]]` keyed by module path, the form Flower's
//! `ArrayRecord` holds.

use crate::errors::{invalid, model_error};
use numpy::{PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use vigil_models::federated::{federated_average, rank_peers, DistanceKind};
use vigil_models::weights::{NamedTensor, NamedTensors};
use vigil_models::TrainedModel;

/// `tensors` as a dict of float32 arrays of their shapes.
pub fn tensors_out<'py>(py: Python<'py>, tensors: NamedTensors) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, tensor) in tensors {
        let array = numpy::PyArray1::from_vec(py, tensor.values).reshape(tensor.shape)?;
        out.set_item(name, array)?;
    }
    Ok(out)
}

/// A dict of float arrays (from [`tensors_out`], or Flower's `ArrayRecord.to_numpy_ndarrays`
/// with the names beside them) as named tensors; a value that is not a float32 array, or not
/// finite, is refused by name.
pub fn tensors_in(tensors: &Bound<'_, PyDict>, what: &str) -> PyResult<NamedTensors> {
    let mut out = NamedTensors::new();
    for (name, value) in tensors.iter() {
        let name: String = name
            .extract()
            .map_err(|_| invalid(format!("{what}: every key must be a tensor's name (a str)")))?;
        let array: PyReadonlyArrayDyn<'_, f32> = value.extract().map_err(|_| {
            invalid(format!(
                "{what}: tensor `{name}` must be a numpy float32 array (np.asarray(v, dtype=np.float32))"
            ))
        })?;
        let shape = array.shape().to_vec();
        let values: Vec<f32> = array.as_array().iter().copied().collect();
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            return Err(invalid(format!(
                "{what}: tensor `{name}` holds a value that is not finite at flat index {at}"
            )));
        }
        out.insert(name, NamedTensor { shape, values });
    }
    Ok(out)
}

/// FedAvg: the mean of `models` (dicts of tensors) weighted by `weights` (example counts).
#[pyfunction]
pub fn average<'py>(
    py: Python<'py>,
    models: Vec<Bound<'py, PyDict>>,
    weights: Vec<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let models = models
        .iter()
        .enumerate()
        .map(|(i, m)| tensors_in(m, &format!("model {i}")))
        .collect::<PyResult<Vec<_>>>()?;
    let averaged = py
        .detach(|| federated_average(&models, &weights))
        .map_err(model_error)?;
    tensors_out(py, averaged)
}

/// LGF-PKT: for every node of `uploads` (dicts of tensors), its peers by the distance
/// `distance` (euclidean, cosine or combined) between the tensors named after `layers`,
/// nearest first, as `(peers, distances)`.
#[pyfunction]
#[pyo3(signature = (uploads, layers, distance = "combined"))]
pub fn rank<'py>(
    py: Python<'py>,
    uploads: Vec<Bound<'py, PyDict>>,
    layers: Vec<String>,
    distance: &str,
) -> PyResult<Vec<(Vec<usize>, Vec<f64>)>> {
    let kind: DistanceKind = distance.parse().map_err(model_error)?;
    let uploads = uploads
        .iter()
        .enumerate()
        .map(|(i, m)| tensors_in(m, &format!("upload {i}")))
        .collect::<PyResult<Vec<_>>>()?;
    let rankings = py
        .detach(|| rank_peers(&uploads, &layers, kind))
        .map_err(model_error)?;
    Ok(rankings
        .into_iter()
        .map(|r| (r.peers, r.distances))
        .collect())
}

/// The parameters of `model` whose module path contains one of `groups` (all when empty).
pub fn export<'py>(
    py: Python<'py>,
    model: &TrainedModel,
    groups: &[String],
) -> PyResult<Bound<'py, PyDict>> {
    let tensors = model.detector.export_tensors(groups).map_err(model_error)?;
    tensors_out(py, tensors)
}

/// A copy of `model` with the parameters in `tensors` set, the others kept.
pub fn with_tensors(model: &TrainedModel, tensors: &Bound<'_, PyDict>) -> PyResult<TrainedModel> {
    let tensors = tensors_in(tensors, "tensors")?;
    let files = model.files().map_err(model_error)?;
    let mut copy = TrainedModel::from_files(model.manifest.clone(), &files).map_err(model_error)?;
    let metrics = copy.manifest.metric_names.len();
    copy.detector
        .import_tensors(&tensors, metrics)
        .map_err(model_error)?;
    Ok(copy)
}
