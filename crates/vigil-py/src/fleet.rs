//! OmniTransfer's steps as pure functions of arrays and bytes (`vigil.fleet` in Python), so that
//! any engine can schedule them — `vigil.ray` runs them as Ray tasks: cluster the entities, train
//! each cluster's base model, adapt each entity from its cluster's base model. Each gives what
//! `vigil fleet cluster`, `train-base` and `transfer` give for the same data and settings; the
//! fleet directory those commands keep is replaced by values (the clustering as JSON, models as
//! bytes).

use crate::arrays::matrix;
use crate::errors::{core_error, fleet_error, invalid, model_error};
use numpy::PyReadonlyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::collections::HashMap;
use vigil_core::clean::MissingPolicy;
use vigil_core::read::benchmarks::natural_name_key;
use vigil_core::Series;
use vigil_fleet::cluster::Cut;
use vigil_fleet::fleet::{
    cluster_fleet, ClusterConfig, FleetClusters, DEFAULT_MAX_DISTANCE, DEFAULT_NEAREST,
    DEFAULT_SEGMENT_LENGTH,
};
use vigil_fleet::transfer::{
    adapt_from, base_model, lineage_from, place, TransferConfig, DEFAULT_FINE_TUNE_EPOCHS,
};
use vigil_models::{TrainSpec, TrainedModel};

/// Entities as `(name, steps × metrics array)` pairs, read into series with `metric_names`
/// (default `m0, m1, ...`), in the order the CLI reads a folder of them (`machine-1-2` before
/// `machine-1-10`), so that the clustering is the one `vigil fleet cluster` makes of the same
/// files. Every entity must have the first one's metrics, and finite values unless
/// `missing_allowed` (a missing-value policy that repairs them).
fn entity_series(
    mut entities: Vec<(String, PyReadonlyArrayDyn<'_, f64>)>,
    metric_names: Option<Vec<String>>,
    missing_allowed: bool,
) -> PyResult<Vec<(String, Series)>> {
    entities.sort_by_cached_key(|(name, _)| natural_name_key(name));
    if let Some(pair) = entities.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(invalid(format!("entity {} is given twice", pair[0].0)));
    }
    let mut out: Vec<(String, Series)> = Vec::with_capacity(entities.len());
    for (name, array) in entities {
        let x = matrix(array, &format!("entity {name}'s array"))?;
        let series = crate::model::series_of(x, metric_names.clone())
            .map_err(|e| invalid(format!("entity {name}: {e}")))?;
        if let Some((_, first)) = out.first() {
            first
                .check_same_metrics(&series, &format!("entity {name}"))
                .map_err(core_error)?;
        }
        if let Some(at) = series
            .values
            .iter()
            .position(|v| !v.is_finite())
            .filter(|_| !missing_allowed)
        {
            return Err(invalid(format!(
                "entity {name} has a missing or non-finite value at step {} (metric {}); clean \
                 it first (vigil train --missing interpolate shows where)",
                at / series.n_metrics(),
                series.metric_names[at % series.n_metrics()]
            )));
        }
        out.push((name, series));
    }
    Ok(out)
}

fn clusters_of(clusters_json: &str) -> PyResult<FleetClusters> {
    FleetClusters::from_json(clusters_json)
        .map_err(|e| invalid(format!("the clustering is not one vigil wrote: {e}")))
}

/// Clusters the entities (I-HAC: OmniTransfer §III-B) and returns the clustering as JSON (what
/// `vigil fleet cluster` writes as `clusters.json`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (entities, metric_names=None, segment_length=DEFAULT_SEGMENT_LENGTH, segments_per_entity=None, clusters=None, max_distance=DEFAULT_MAX_DISTANCE, nearest=DEFAULT_NEAREST, align=true))]
pub fn cluster(
    py: Python<'_>,
    entities: Vec<(String, PyReadonlyArrayDyn<'_, f64>)>,
    metric_names: Option<Vec<String>>,
    segment_length: usize,
    segments_per_entity: Option<usize>,
    clusters: Option<usize>,
    max_distance: f64,
    nearest: usize,
    align: bool,
) -> PyResult<String> {
    let config = ClusterConfig {
        segment_length,
        segments_per_entity,
        cut: match clusters {
            Some(k) => Cut::Clusters(k),
            None => Cut::Distance(max_distance),
        },
        nearest,
        align,
        ..ClusterConfig::default()
    };
    if entities.is_empty() {
        return Err(invalid("there is no entity to cluster"));
    }
    let (names, series): (Vec<String>, Vec<Series>) = entity_series(entities, metric_names, false)?
        .into_iter()
        .unzip();
    let found = py
        .detach(|| cluster_fleet(&names, &series, &config))
        .map_err(fleet_error)?;
    serde_json::to_string(&found).map_err(|e| invalid(format!("cannot encode the clustering: {e}")))
}

/// Trains the base model of cluster `cluster` on the segments nearest its centroid and returns
/// it as bytes (what `vigil fleet train-base` writes as `base/<cluster>/`). `entities` must hold
/// the entities those segments come from (others are ignored).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (clusters_json, cluster, entities, detector, config_json, seed, epochs, missing))]
pub fn train_base<'py>(
    py: Python<'py>,
    clusters_json: &str,
    cluster: usize,
    entities: Vec<(String, PyReadonlyArrayDyn<'_, f64>)>,
    detector: String,
    config_json: Option<&str>,
    seed: u64,
    epochs: Option<usize>,
    missing: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let clusters = clusters_of(clusters_json)?;
    let missing: MissingPolicy = missing.parse().map_err(core_error)?;
    let series: HashMap<String, Series> = entity_series(
        entities,
        Some(clusters.metric_names.clone()),
        missing != MissingPolicy::Error,
    )?
    .into_iter()
    .collect();
    let spec = TrainSpec {
        detector,
        config: crate::model::config_of(config_json)?,
        missing,
        seed,
        epochs,
        ..TrainSpec::default()
    };
    spec.validate().map_err(model_error)?;
    let model = py
        .detach(|| base_model(&clusters, cluster, &spec, |name| series.get(name)))
        .map_err(fleet_error)?;
    let bytes = model.to_bytes().map_err(model_error)?;
    Ok(PyBytes::new(py, &bytes))
}

/// The cluster entity `name` goes to, with the distance to its centroid, the threshold and the
/// strategy (`full` or `partial`) its transfer will use.
#[pyfunction]
#[pyo3(signature = (clusters_json, name, train, steps=None, tau=None))]
pub fn place_entity(
    py: Python<'_>,
    clusters_json: &str,
    name: &str,
    train: PyReadonlyArrayDyn<'_, f64>,
    steps: Option<usize>,
    tau: Option<f64>,
) -> PyResult<(usize, f64, f64, String)> {
    let clusters = clusters_of(clusters_json)?;
    let config = transfer_config(&clusters, steps, tau, 0, DEFAULT_FINE_TUNE_EPOCHS);
    let series = one_entity(&clusters, name, train)?;
    let placed = py
        .detach(|| place(&clusters, name, &series, &config))
        .map_err(fleet_error)?;
    let transfer = serde_json::to_value(placed.transfer)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    Ok((placed.cluster, placed.distance, placed.tau, transfer))
}

/// Adapts entity `name` from the base model of its nearest cluster (`base_models[cluster]`:
/// bytes, looked up once the entity is placed) by full or partial transfer (§III-C) and returns
/// its model as bytes with the record of what was done, as JSON (what `vigil fleet transfer`
/// writes as `entities/<name>/` and `<name>.transfer.json`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (clusters_json, base_models, name, train, steps=None, tau=None, seed=0, epochs=DEFAULT_FINE_TUNE_EPOCHS))]
pub fn transfer<'py>(
    py: Python<'py>,
    clusters_json: &str,
    base_models: &Bound<'py, PyAny>,
    name: &str,
    train: PyReadonlyArrayDyn<'_, f64>,
    steps: Option<usize>,
    tau: Option<f64>,
    seed: u64,
    epochs: usize,
) -> PyResult<(Bound<'py, PyBytes>, String)> {
    let clusters = clusters_of(clusters_json)?;
    let config = transfer_config(&clusters, steps, tau, seed, epochs);
    config.spec.validate().map_err(model_error)?;
    let series = one_entity(&clusters, name, train)?;
    let placed = py
        .detach(|| place(&clusters, name, &series, &config))
        .map_err(fleet_error)?;
    let base_bytes: Vec<u8> = base_models.get_item(placed.cluster)?.extract()?;
    let (model, record) = py
        .detach(|| {
            let base = TrainedModel::from_bytes(&base_bytes)?;
            if base.manifest.lineage.get("clustering") != Some(&clusters.id()) {
                return Err(vigil_models::ModelError::Shape(format!(
                    "the base model given for cluster {} was not trained for this clustering; \
                     train the base models again (vigil.fleet.train_base)",
                    placed.cluster
                ))
                .into());
            }
            let lineage = lineage_from(&clusters, &base, &config)?;
            adapt_from(base, lineage, name, placed, &config)
        })
        .map_err(fleet_error)?;
    let bytes = model.to_bytes().map_err(model_error)?;
    let record = serde_json::to_string(&record)
        .map_err(|e| invalid(format!("cannot encode the transfer's record: {e}")))?;
    Ok((PyBytes::new(py, &bytes), record))
}

/// The transfer settings `vigil fleet transfer`'s flags give (steps default to one segment).
fn transfer_config(
    clusters: &FleetClusters,
    steps: Option<usize>,
    tau: Option<f64>,
    seed: u64,
    epochs: usize,
) -> TransferConfig {
    TransferConfig {
        spec: TrainSpec {
            seed,
            epochs: Some(epochs),
            ..TrainSpec::default()
        },
        steps: steps.unwrap_or(clusters.config.segment_length),
        tau,
    }
}

fn one_entity(
    clusters: &FleetClusters,
    name: &str,
    train: PyReadonlyArrayDyn<'_, f64>,
) -> PyResult<Series> {
    let (_, series) = entity_series(
        vec![(name.to_string(), train)],
        Some(clusters.metric_names.clone()),
        false,
    )?
    .pop()
    .expect("one entity in, one out");
    Ok(series)
}
