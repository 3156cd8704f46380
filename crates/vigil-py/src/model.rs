//! `vigil._native.Model`: a trained vigil model (detector, normaliser, calibration scores and
//! threshold rule) — what `vigil train` writes as a model directory, as a Python value. The
//! `vigil.Detector` class in Python wraps it with the scikit-learn/PyOD habits.

use crate::arrays::{matrix, matrix_out, vector_out, Matrix, Verdict};
use crate::errors::{core_error, invalid, model_error};
use crate::rules::threshold_method;
use numpy::{PyArray1, PyArray2, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;
use vigil_core::threshold::{decide, ThresholdMethod};
use vigil_core::Series;
use vigil_models::{TrainSpec, TrainedModel};

#[pyclass(frozen, module = "vigil._native", name = "Model")]
pub struct Model {
    pub(crate) trained: TrainedModel,
}

/// The scores of a series: the total per step, and each metric's contribution per step.
type ScoresOut<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f32>>);

#[pymethods]
impl Model {
    /// Trains `detector` on `x` (steps × metrics) as `vigil train` does: the same cleaning,
    /// normaliser, held-out calibration and seed give the same model.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (x, metric_names, detector, config_json, seed, normaliser, missing, calibration_share, threshold, threshold_params_json, labels=None, epochs=None))]
    fn train(
        py: Python<'_>,
        x: PyReadonlyArrayDyn<'_, f64>,
        metric_names: Option<Vec<String>>,
        detector: String,
        config_json: Option<&str>,
        seed: u64,
        normaliser: &str,
        missing: &str,
        calibration_share: f64,
        threshold: &str,
        threshold_params_json: &str,
        labels: Option<PyReadonlyArrayDyn<'_, i64>>,
        epochs: Option<usize>,
    ) -> PyResult<Model> {
        let spec = TrainSpec {
            detector,
            config: config_of(config_json)?,
            normaliser: normaliser.parse().map_err(core_error)?,
            missing: missing.parse().map_err(core_error)?,
            seed,
            epochs,
            calibration_share,
            // Topology-aware detectors (topomad) are trained from the CLI or Rust for now.
            topology: None,
        };
        let method = threshold_method(threshold, threshold_params_json)?;
        let mut series = series_of(matrix(x, "X")?, metric_names)?;
        // Only supervised detectors (MTAD-FL's classifiers) learn from training labels; the
        // pipeline keeps them from the others.
        if let Some(labels) = labels {
            series.labels = Some(step_labels(labels, series.len())?);
        }
        let mut trained = py
            .detach(move || vigil_models::train(series, &spec, None))
            .map_err(model_error)?;
        // The rule applied unless told otherwise, stored with the model as `vigil train` does.
        trained.manifest.threshold = Some(method);
        Ok(Model { trained })
    }

    /// The total score and each metric's contribution at every step of `x`, scored as
    /// `vigil detect` scores a file (the model's cleaning and normaliser first).
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'_, f64>,
    ) -> PyResult<ScoresOut<'py>> {
        let series = self.series_for(matrix(x, "X")?)?;
        let (scores, _) = py
            .detach(|| self.trained.score(series, "X"))
            .map_err(model_error)?;
        let m = scores.n_metrics;
        Ok((
            vector_out(py, scores.total),
            matrix_out(py, scores.per_metric, m)?,
        ))
    }

    /// The thresholds and alarms of `scores` under the model's stored rule (or `threshold`
    /// with its parameters), calibrated on the model's calibration scores: `vigil detect`'s
    /// `threshold` and `alarm` columns.
    #[pyo3(signature = (scores, threshold=None, threshold_params_json="{}"))]
    fn decide<'py>(
        &self,
        py: Python<'py>,
        scores: PyReadonlyArrayDyn<'_, f64>,
        threshold: Option<&str>,
        threshold_params_json: &str,
    ) -> PyResult<Verdict<'py>> {
        let scores = crate::arrays::finite_vector(scores, "scores")?;
        let method = match threshold {
            Some(name) => threshold_method(name, threshold_params_json)?,
            None => self.rule(),
        };
        let calibration = &self.trained.calibration;
        let decision = py
            .detach(|| decide(method, calibration, &scores, None))
            .map_err(core_error)?;
        Ok((
            vector_out(py, decision.thresholds),
            vector_out(py, decision.alarms),
        ))
    }

    /// A copy trained further on `x` (the model's normaliser, warm from its weights) as
    /// `vigil tune` does: `labels` are what a supervised detector learns to classify (and
    /// what the others leave out of training), `epochs` overrides the config's.
    #[pyo3(signature = (x, labels=None, epochs=None, seed=0))]
    fn fine_tune(
        &self,
        py: Python<'_>,
        x: PyReadonlyArrayDyn<'_, f64>,
        labels: Option<PyReadonlyArrayDyn<'_, i64>>,
        epochs: Option<usize>,
        seed: u64,
    ) -> PyResult<Model> {
        let mut series = self.series_for(matrix(x, "X")?)?;
        if let Some(labels) = labels {
            series.labels = Some(step_labels(labels, series.len())?);
        }
        let spec = vigil_models::TuneSpec {
            epochs,
            seed,
            ..vigil_models::TuneSpec::default()
        };
        let trained = &self.trained;
        py.detach(|| vigil_models::fine_tune(trained, series, &spec))
            .map(|trained| Model { trained })
            .map_err(model_error)
    }

    /// The parameters whose module path contains one of `groups` (all when empty), as a dict
    /// of float32 arrays by name: what federated training sends.
    #[pyo3(signature = (groups = Vec::new()))]
    fn export_tensors<'py>(
        &self,
        py: Python<'py>,
        groups: Vec<String>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        crate::federated::export(py, &self.trained, &groups)
    }

    /// A copy with the parameters in `tensors` (a dict from `export_tensors` of a model of the
    /// same detector and config) set and the others kept; a name it lacks or another shape is
    /// refused. The calibration scores stay this model's.
    fn with_tensors(&self, tensors: &Bound<'_, pyo3::types::PyDict>) -> PyResult<Model> {
        crate::federated::with_tensors(&self.trained, tensors).map(|trained| Model { trained })
    }

    /// The whole model as bytes (the tar archive of its model directory).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.trained.to_bytes().map_err(model_error)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The model in `data`, written by `to_bytes`, verified before use.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Model> {
        TrainedModel::from_bytes(data)
            .map(|trained| Model { trained })
            .map_err(model_error)
    }

    /// Writes the model directory (atomically: a failed write leaves what was there).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.trained.save(&path).map_err(model_error)
    }

    /// Reads and verifies a model directory written by `vigil train` or `save`.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Model> {
        TrainedModel::load(&path)
            .map(|trained| Model { trained })
            .map_err(model_error)
    }

    /// The manifest (detector, config, normaliser, metrics, training, threshold) as JSON.
    fn manifest_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.trained.manifest)
            .map_err(|e| invalid(format!("cannot encode the manifest: {e}")))
    }

    /// The threshold rule stored with the model, as JSON.
    fn threshold_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.rule())
            .map_err(|e| invalid(format!("cannot encode the threshold: {e}")))
    }

    /// The scores the label-free thresholds are calibrated on.
    fn calibration<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        vector_out(py, self.trained.calibration.clone())
    }

    #[getter]
    fn detector(&self) -> String {
        self.trained.manifest.detector.clone()
    }

    #[getter]
    fn metric_names(&self) -> Vec<String> {
        self.trained.manifest.metric_names.clone()
    }

    /// Steps of context each score looks at.
    #[getter]
    fn window(&self) -> usize {
        self.trained.detector.window()
    }
}

/// `labels` as one 0/1 label per step of a series of `steps` steps.
fn step_labels(labels: PyReadonlyArrayDyn<'_, i64>, steps: usize) -> PyResult<Vec<u8>> {
    let labels = crate::arrays::flags(labels, "y")?;
    if labels.len() != steps {
        return Err(invalid(format!(
            "y has {} labels but X has {steps} steps (rows); give one label per step",
            labels.len()
        )));
    }
    Ok(labels)
}

impl Model {
    /// The stored rule, or `auto` for a model trained without one.
    fn rule(&self) -> ThresholdMethod {
        self.trained
            .manifest
            .threshold
            .unwrap_or(ThresholdMethod::Auto(Default::default()))
    }

    /// `x` as a series with the model's metric names, once its column count is checked (the
    /// array carries no names, so columns are the model's metrics in order).
    fn series_for(&self, x: Matrix) -> PyResult<Series> {
        let names = &self.trained.manifest.metric_names;
        if x.metrics != names.len() {
            return Err(invalid(format!(
                "X has {} metrics (columns) but the model was trained on {}: {}; pass the same \
                 metrics in the same order",
                x.metrics,
                names.len(),
                names.join(", ")
            )));
        }
        Series::new(names.clone(), x.values).map_err(core_error)
    }
}

/// A detector's config overrides from the JSON the Python layer sends (`None`: the defaults).
pub fn config_of(config_json: Option<&str>) -> PyResult<Option<serde_json::Value>> {
    config_json
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| invalid(format!("the detector config is not JSON: {e}")))
}

/// `x` as a series named `metric_names` (default `m0, m1, ...`, as for a headerless file).
pub fn series_of(x: Matrix, metric_names: Option<Vec<String>>) -> PyResult<Series> {
    match metric_names {
        None => Series::from_rows(x.metrics, x.values),
        Some(names) => {
            if names.len() != x.metrics {
                return Err(invalid(format!(
                    "metric_names has {} names but X has {} metrics (columns)",
                    names.len(),
                    x.metrics
                )));
            }
            // As the CLI's readers refuse a header that names a column twice: a model with two
            // metrics of one name could be given no file to score.
            if let Some(twice) = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n))
                .map(|(_, n)| n)
            {
                return Err(invalid(format!(
                    "metric_names names `{twice}` twice; every metric needs a name of its own"
                )));
            }
            Series::new(names, x.values)
        }
    }
    .map_err(core_error)
}
