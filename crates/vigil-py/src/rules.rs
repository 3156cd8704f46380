//! `vigil._native.Rule`: a label-free threshold rule as a value that learns along the stream it
//! judges (`vigil.thresholds` in Python wraps it). The streaming rules (`auto`, `spot`, `dspot`)
//! carry their state from one `predict` to the next, so a stream judged in parts gets the
//! thresholds and alarms of one pass, as `vigil detect --state` does.

use crate::arrays::{finite_vector, vector_out, Verdict};
use crate::errors::{core_error, invalid};
use numpy::{PyArray1, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use vigil_core::threshold::StreamRuleState;
use vigil_core::threshold::{decide, decide_stream, ThresholdMethod};

/// The rule `name` (`vigil detect --threshold`'s names) with `params_json` (a JSON object) over
/// its defaults, checked: an unknown parameter is refused, naming those the rule has.
pub fn threshold_method(name: &str, params_json: &str) -> PyResult<ThresholdMethod> {
    let method: ThresholdMethod = name.parse().map_err(core_error)?;
    if matches!(method, ThresholdMethod::BestF1 { .. }) {
        return Err(invalid(format!(
            "`{name}` chooses its threshold from the test labels (an oracle for evaluation, not \
             a rule); use vigil.metrics.best_f1"
        )));
    }
    let params: serde_json::Map<String, serde_json::Value> = serde_json::from_str(params_json)
        .map_err(|e| {
            invalid(format!(
                "the {name} threshold's parameters are not a JSON object: {e}"
            ))
        })?;
    if params.is_empty() {
        return Ok(method);
    }
    let serde_json::Value::Object(mut fields) = serde_json::to_value(method)
        .map_err(|e| invalid(format!("cannot encode the {name} threshold: {e}")))?
    else {
        return Err(invalid(format!("the {name} threshold has no parameters")));
    };
    let known = known_parameters(method, &fields);
    for (key, value) in params {
        if !known.contains(&key) {
            return Err(invalid(format!(
                "the {name} threshold has no parameter `{key}`; it has: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        fields.insert(key, value);
    }
    let method: ThresholdMethod = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| invalid(format!("the {name} threshold's parameters: {e}")))?;
    method.validate().map_err(core_error)?;
    Ok(method)
}

/// The parameters of `method`, whose defaults are `fields`: every field but the rule's name, and
/// the recalibration horizon of the rules that learn along a stream (left out of the encoding
/// while it is 0, its default).
fn known_parameters(
    method: ThresholdMethod,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut known: Vec<String> = fields.keys().filter(|k| *k != "method").cloned().collect();
    let learns = matches!(
        method,
        ThresholdMethod::Spot(_) | ThresholdMethod::Dspot(_) | ThresholdMethod::Auto(_)
    );
    if learns && !known.iter().any(|k| k == "horizon") {
        known.push("horizon".into());
    }
    known
}

#[pyclass(module = "vigil._native", name = "Rule")]
pub struct Rule {
    method: ThresholdMethod,
    calibration: Option<Vec<f64>>,
    state: Option<StreamRuleState>,
}

#[pymethods]
impl Rule {
    #[new]
    #[pyo3(signature = (name, params_json="{}"))]
    fn new(name: &str, params_json: &str) -> PyResult<Rule> {
        Ok(Rule {
            method: threshold_method(name, params_json)?,
            calibration: None,
            state: None,
        })
    }

    /// Calibrates the rule on `calibration` (scores of normal data: a model's calibration
    /// scores) and starts a new stream.
    fn fit(&mut self, py: Python<'_>, calibration: PyReadonlyArrayDyn<'_, f64>) -> PyResult<()> {
        let calibration = finite_vector(calibration, "calibration")?;
        let method = self.method;
        // Fitted now, so that a calibration the rule cannot use fails here, not at predict.
        self.state = match method {
            ThresholdMethod::Spot(_) | ThresholdMethod::Dspot(_) | ThresholdMethod::Auto(_) => {
                Some(
                    py.detach(|| StreamRuleState::fit(method, &calibration))
                        .map_err(core_error)?,
                )
            }
            _ => None,
        };
        self.calibration = Some(calibration);
        Ok(())
    }

    /// The threshold in force at each of the next `scores` of the stream, the alarms, and
    /// (under `auto`) what it chose, as JSON.
    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        scores: PyReadonlyArrayDyn<'_, f64>,
    ) -> PyResult<(Verdict<'py>, Option<String>)> {
        let scores = finite_vector(scores, "scores")?;
        let method = self.method;
        // The rules fitted on the batch they judge (BestF1 is refused when a rule is made).
        let judges_batch = !method.judges_streams();
        let Some(calibration) = self
            .calibration
            .as_deref()
            .or(judges_batch.then_some(&[][..]))
        else {
            return Err(invalid(
                "the threshold is not fitted: call fit(calibration_scores) first (a model's \
                 calibration scores: Detector.calibration_scores_)",
            ));
        };
        let state = &mut self.state;
        let decision = py
            .detach(|| {
                if judges_batch {
                    decide(method, calibration, &scores, None)
                } else {
                    decide_stream(method, calibration, &scores, state)
                }
            })
            .map_err(core_error)?;
        // What `auto` chose, its figures with the sentence `vigil detect` prints.
        let choice = decision.choice.map(|c| {
            let mut figures = serde_json::to_value(c).unwrap_or_default();
            if let Some(fields) = figures.as_object_mut() {
                fields.insert("reason".into(), c.to_string().into());
            }
            figures.to_string()
        });
        Ok((
            (
                vector_out(py, decision.thresholds),
                vector_out(py, decision.alarms),
            ),
            choice,
        ))
    }

    /// The rule and its parameters, as JSON.
    fn method_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.method)
            .map_err(|e| invalid(format!("cannot encode the threshold: {e}")))
    }

    /// What the rule has learnt of its stream so far (JSON; `None` before `fit` or for a rule
    /// that learns nothing), to save and restore with `set_state_json`.
    fn state_json(&self) -> PyResult<Option<String>> {
        self.state
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| invalid(format!("cannot encode the threshold's state: {e}")))
    }

    /// Restores what `state_json` gave, with the calibration the rule was fitted on.
    fn set_state(
        &mut self,
        calibration: PyReadonlyArrayDyn<'_, f64>,
        state_json: Option<&str>,
    ) -> PyResult<()> {
        self.calibration = Some(finite_vector(calibration, "calibration")?);
        self.state = state_json
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| invalid(format!("the threshold's saved state is not readable: {e}")))?;
        Ok(())
    }
}

/// Each score over the threshold in force, so that 1.0 is the alarm boundary whatever the
/// detector or rule (`vigil detect`'s `anomaly_score` column).
#[pyfunction]
pub fn anomaly_scores<'py>(
    py: Python<'py>,
    scores: PyReadonlyArrayDyn<'_, f64>,
    thresholds: PyReadonlyArrayDyn<'_, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let scores = finite_vector(scores, "scores")?;
    let thresholds = crate::arrays::vector(thresholds, "thresholds")?;
    if scores.len() != thresholds.len() {
        return Err(invalid(format!(
            "scores has {} steps but thresholds has {}: pass the thresholds in force at each score",
            scores.len(),
            thresholds.len()
        )));
    }
    Ok(vector_out(
        py,
        vigil_core::threshold::anomaly_scores(&scores, &thresholds),
    ))
}
