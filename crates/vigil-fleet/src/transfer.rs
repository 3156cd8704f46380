//! Base models and adaptive transfer (OmniTransfer §III-B2 and §III-C).
//!
//! A cluster's base model trains on the raw data of its segments nearest the centroid, each
//! span min-max normalised on its own (entities differ in level), one after another. A new
//! entity brings a short span of data: its newest segment is matched to the nearest centroid
//! (aligned to the pivot first), and its model starts from that cluster's base model —
//! **full** transfer (fine-tune everything) when the distance is at most τ, **partial**
//! otherwise (a fresh model takes the base's generic layers, trains the rest with them frozen,
//! then fine-tunes all). τ defaults to the cluster's own radius (the 90th percentile of its
//! members' distances to the centroid): an entity as close as most members gets full transfer.
//!
//! A fleet directory holds `base/cluster-<id>/` and `entities/<name>/` model directories and a
//! `entities/<name>.transfer.json` record per entity, written after its model: work with a
//! record, or a base model that loads, is done, and an interrupted run continues from there.

use crate::fleet::{ClusterEntry, FleetClusters, FleetError};
use crate::segments::slice;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vigil_core::normalise::NormKind;
use vigil_core::Series;
use vigil_models::{TrainSpec, TrainedModel, Transfer};

/// A cluster's base model directory.
pub fn base_dir(fleet: &Path, cluster: usize) -> PathBuf {
    fleet.join("base").join(format!("cluster-{cluster}"))
}

/// An entity's model directory.
pub fn entity_dir(fleet: &Path, entity: &str) -> PathBuf {
    fleet.join("entities").join(entity)
}

fn record_path(fleet: &Path, entity: &str) -> PathBuf {
    fleet
        .join("entities")
        .join(format!("{entity}.transfer.json"))
}

/// The training series of a cluster's base model; `series_of` gives an entity's training
/// series by name.
pub fn base_training_series<'a>(
    cluster: &ClusterEntry,
    segment_length: usize,
    series_of: impl Fn(&str) -> Option<&'a Series>,
) -> Result<Series, FleetError> {
    let mut values = Vec::new();
    let mut names = None;
    for segment in &cluster.nearest {
        let series = series_of(&segment.entity).ok_or_else(|| FleetError::Missing {
            entity: segment.entity.clone(),
        })?;
        let m = series.n_metrics();
        let end = segment.start + segment_length;
        if end > series.len() {
            return Err(FleetError::Missing {
                entity: segment.entity.clone(),
            });
        }
        let span = &series.values[segment.start * m..end * m];
        values.extend(min_max_per_metric(span, m));
        names.get_or_insert_with(|| series.metric_names.clone());
    }
    let names = names.ok_or(FleetError::Missing {
        entity: format!("(cluster {} has no segments)", cluster.id),
    })?;
    Series::new(names, values).map_err(|e| FleetError::Model(e.into()))
}

/// Each metric of `span` (`steps x m`, row-major) scaled to [0, 1] over the span (a constant
/// metric to 0).
fn min_max_per_metric(span: &[f64], m: usize) -> Vec<f64> {
    let mut out = span.to_vec();
    for j in 0..m {
        let column = span.iter().skip(j).step_by(m);
        let (lo, hi) = column.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        for v in out.iter_mut().skip(j).step_by(m) {
            *v = if hi > lo { (*v - lo) / (hi - lo) } else { 0.0 };
        }
    }
    out
}

/// What training a base model did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseRecord {
    pub cluster: usize,
    /// True when a model was there but made for another clustering or other training
    /// settings, and was trained again.
    #[serde(default)]
    pub replaced_stale: bool,
    /// Training steps (segments x segment length).
    pub steps: usize,
    /// Seconds spent; 0 when the model was already there.
    pub seconds: f64,
    /// True when an earlier run had already written it.
    pub reused: bool,
}

/// Trains (or finds, from an earlier run) the base model of cluster `cluster`.
pub fn train_base_model<'a>(
    fleet: &Path,
    clusters: &FleetClusters,
    cluster: usize,
    spec: &TrainSpec,
    series_of: impl Fn(&str) -> Option<&'a Series>,
) -> Result<BaseRecord, FleetError> {
    let entry = &clusters.clusters[cluster];
    let dir = base_dir(fleet, cluster);
    let steps = entry.nearest.len() * clusters.config.segment_length;
    let lineage = base_lineage(clusters, spec);
    let earlier = TrainedModel::load(&dir).ok();
    if earlier
        .as_ref()
        .is_some_and(|m| m.manifest.lineage == lineage)
    {
        return Ok(BaseRecord {
            cluster,
            replaced_stale: false,
            steps,
            seconds: 0.0,
            reused: true,
        });
    }
    let started = Instant::now();
    let model = base_model(clusters, cluster, spec, series_of)?;
    model.save(&dir)?;
    Ok(BaseRecord {
        cluster,
        replaced_stale: earlier.is_some(),
        steps,
        seconds: started.elapsed().as_secs_f64(),
        reused: false,
    })
}

/// The base model of cluster `cluster`, trained on the spans of the segments nearest its
/// centroid (each span min-max scaled on its own), its lineage recorded; `series_of` gives an
/// entity's training series by name. A pure function of the clustering and the data, which
/// [`train_base_model`] keeps in the fleet directory.
pub fn base_model<'a>(
    clusters: &FleetClusters,
    cluster: usize,
    spec: &TrainSpec,
    series_of: impl Fn(&str) -> Option<&'a Series>,
) -> Result<TrainedModel, FleetError> {
    let entry = clusters.clusters.get(cluster).ok_or_else(|| {
        vigil_models::ModelError::Shape(format!(
            "there is no cluster {cluster}: the clustering has {} (numbered from 0)",
            clusters.clusters.len()
        ))
    })?;
    let series = base_training_series(entry, clusters.config.segment_length, series_of)?;
    // The spans are normalised already, each on its own.
    let normalised = TrainSpec {
        normaliser: NormKind::None,
        ..spec.clone()
    };
    let mut model = vigil_models::train(series, &normalised, None)?;
    model.manifest.lineage = base_lineage(clusters, spec);
    Ok(model)
}

/// What a base model is made from: the clustering and the training settings. A model on disk
/// whose lineage differs was made for an earlier clustering or other settings.
fn base_lineage(
    clusters: &FleetClusters,
    spec: &TrainSpec,
) -> std::collections::BTreeMap<String, String> {
    [
        ("clustering".to_string(), clusters.id()),
        (
            "train_spec".to_string(),
            vigil_models::model_dir::fingerprint(spec),
        ),
    ]
    .into()
}

/// Why the base model of `cluster` cannot be used by `transfer`, if it cannot: missing, or
/// made for another clustering than `clusters`.
pub fn base_model_problem(
    fleet: &Path,
    clusters: &FleetClusters,
    cluster: usize,
) -> Option<String> {
    let dir = base_dir(fleet, cluster);
    match TrainedModel::load(&dir) {
        Err(_) => Some(format!("has no base model for cluster {cluster} ({})", dir.display())),
        Ok(model) if model.manifest.lineage.get("clustering") != Some(&clusters.id()) => Some(format!(
            "has a base model for cluster {cluster} ({}) that was trained for an earlier clustering",
            dir.display()
        )),
        Ok(_) => None,
    }
}

/// Epochs of each fine-tuning stage when none are given. One: measured on SMD (docs/fleet.md,
/// "Fine-tuning epochs"), more epochs per stage — up to the 30 USAD trains from scratch — did
/// not raise F1* and cost time in proportion; a base model needs adjusting, not retraining.
pub const DEFAULT_FINE_TUNE_EPOCHS: usize = 1;

/// What adapting one entity did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub entity: String,
    /// Its nearest cluster, and the distance to its centroid.
    pub cluster: usize,
    pub distance: f64,
    /// The threshold that chose the strategy.
    pub tau: f64,
    pub transfer: Transfer,
    /// Steps of short-term data it was adapted on.
    pub steps: usize,
    pub seconds: f64,
    /// What it was made from: the clustering, the base model (its manifest's SHA-256) and the
    /// transfer settings ([`vigil_models::model_dir::fingerprint`]s). A record whose lineage
    /// no longer matches the fleet is not a finished entity.
    #[serde(default)]
    pub lineage: std::collections::BTreeMap<String, String>,
}

/// How entities are adapted.
#[derive(Debug, Clone, Serialize)]
pub struct TransferConfig {
    /// Seed, epochs per stage, normaliser (fitted on the short-term data) and missing policy;
    /// the detector is the base model's.
    pub spec: TrainSpec,
    /// Steps of short-term data: the newest this many steps of the entity's training series.
    pub steps: usize,
    /// Full transfer at most this far from the centroid (default: the cluster's radius).
    pub tau: Option<f64>,
}

impl TransferConfig {
    /// Checks the settings; the message names the field as its `vigil fleet transfer` flag.
    pub fn validate(&self) -> Result<(), FleetError> {
        vigil_core::validate::positive_count("--steps", self.steps)?;
        if let Some(tau) = self.tau {
            vigil_core::validate::at_least_zero("--tau", tau)?;
        }
        Ok(())
    }
}

/// The newest `steps` steps of `train` (all of it when shorter): an entity's short-term data.
pub fn newest_steps(train: &Series, steps: usize) -> Result<Series, FleetError> {
    let m = train.n_metrics();
    let steps = steps.min(train.len());
    Series::new(
        train.metric_names.clone(),
        train.values[(train.len() - steps) * m..].to_vec(),
    )
    .map_err(|e| FleetError::Model(e.into()))
}

/// The record of an entity an earlier run finished for this clustering, its cluster's current
/// base model and these settings, if any. An entity adapted for an earlier clustering (or from
/// a base model since retrained, or with other settings) is not finished: it is adapted again.
pub fn finished(
    fleet: &Path,
    entity: &str,
    clusters: &FleetClusters,
    config: &TransferConfig,
) -> Option<TransferRecord> {
    let text = std::fs::read_to_string(record_path(fleet, entity)).ok()?;
    let record: TransferRecord = serde_json::from_str(&text).ok()?;
    (record.cluster < clusters.clusters.len()
        && record.lineage == entity_lineage(fleet, clusters, record.cluster, config))
    .then_some(record)
}

/// What an entity's model is made from (see [`TransferRecord::lineage`]).
fn entity_lineage(
    fleet: &Path,
    clusters: &FleetClusters,
    cluster: usize,
    config: &TransferConfig,
) -> std::collections::BTreeMap<String, String> {
    let base =
        vigil_models::model_dir::model_fingerprint(&base_dir(fleet, cluster)).unwrap_or_default();
    lineage_of(clusters, base, config)
}

/// What an entity's model adapted from `base` is made from (see [`TransferRecord::lineage`]):
/// the same lineage as one adapted from the base model saved in a fleet directory.
pub fn lineage_from(
    clusters: &FleetClusters,
    base: &TrainedModel,
    config: &TransferConfig,
) -> Result<std::collections::BTreeMap<String, String>, FleetError> {
    let fingerprint = vigil_models::model_dir::manifest_fingerprint(&base.manifest, &base.files()?);
    Ok(lineage_of(clusters, fingerprint, config))
}

fn lineage_of(
    clusters: &FleetClusters,
    base_fingerprint: String,
    config: &TransferConfig,
) -> std::collections::BTreeMap<String, String> {
    [
        ("clustering".to_string(), clusters.id()),
        ("base_model".to_string(), base_fingerprint),
        (
            "transfer".to_string(),
            vigil_models::model_dir::fingerprint(config),
        ),
    ]
    .into()
}

/// Adapts entity `name` with training series `train`; writes its model and record.
pub fn transfer_entity(
    fleet: &Path,
    clusters: &FleetClusters,
    name: &str,
    train: &Series,
    config: &TransferConfig,
) -> Result<TransferRecord, FleetError> {
    let (model, record) = adapt(fleet, clusters, name, train, config)?;
    model.save(&entity_dir(fleet, name))?;
    crate::fleet::write_json_atomic(&record_path(fleet, name), &record)?;
    Ok(record)
}

/// Adapts entity `name` from the base models under `fleet` and returns its model (not saved)
/// with the record of what was done; `seconds` is the adaptation alone.
pub fn adapt(
    fleet: &Path,
    clusters: &FleetClusters,
    name: &str,
    train: &Series,
    config: &TransferConfig,
) -> Result<(TrainedModel, TransferRecord), FleetError> {
    let placement = place(clusters, name, train, config)?;
    let base = TrainedModel::load(&base_dir(fleet, placement.cluster))?;
    let lineage = entity_lineage(fleet, clusters, placement.cluster, config);
    adapt_from(base, lineage, name, placement, config)
}

/// Where an entity goes: its nearest cluster, and how its model starts from that cluster's base.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The nearest cluster, and the distance to its centroid.
    pub cluster: usize,
    pub distance: f64,
    /// The threshold that chose the strategy.
    pub tau: f64,
    pub transfer: Transfer,
    /// The short-term data it is adapted on: the newest steps of its training series.
    pub recent: Series,
}

/// Places entity `name` with training series `train`: its newest `config.steps` steps are
/// sliced and aligned as the clustering's segments were, and assigned to the nearest centroid;
/// full transfer within `tau` of it, partial beyond (OmniTransfer §III-C).
pub fn place(
    clusters: &FleetClusters,
    name: &str,
    train: &Series,
    config: &TransferConfig,
) -> Result<Placement, FleetError> {
    config.validate()?;
    let segment_length = clusters.config.segment_length;
    let steps = config.steps.min(train.len());
    if steps < segment_length {
        return Err(FleetError::TooShort {
            entity: name.to_string(),
            steps,
            segment_length,
        });
    }
    let m = train.n_metrics();
    let recent = newest_steps(train, steps)?;
    let segment = slice(
        0,
        &recent.values,
        m,
        segment_length,
        Some(1),
        &clusters.config.baseline,
    )
    .pop()
    .expect("the data holds at least one segment (checked above)");
    let (cluster, distance) = clusters.assign(&segment);
    let radius = clusters.clusters.get(cluster).map_or(0.0, |c| c.radius);
    let tau = config.tau.unwrap_or(radius);
    let transfer = if distance <= tau {
        Transfer::Full
    } else {
        Transfer::Partial
    };
    Ok(Placement {
        cluster,
        distance,
        tau,
        transfer,
        recent,
    })
}

/// Adapts entity `name`, placed by [`place`], from `base` (its cluster's base model) and returns
/// its model with the record of what was done; `lineage` is what the model is made from
/// ([`TransferRecord::lineage`]). A pure function of the base model and the data.
pub fn adapt_from(
    base: TrainedModel,
    lineage: std::collections::BTreeMap<String, String>,
    name: &str,
    placement: Placement,
    config: &TransferConfig,
) -> Result<(TrainedModel, TransferRecord), FleetError> {
    let Placement {
        cluster,
        distance,
        tau,
        transfer,
        recent,
    } = placement;
    let steps = recent.len();
    let started = Instant::now();
    let mut model = vigil_models::transfer_from(base, recent, &config.spec, transfer)?;
    model.manifest.lineage = lineage.clone();
    let record = TransferRecord {
        lineage,
        entity: name.to_string(),
        cluster,
        distance,
        tau,
        transfer,
        steps,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((model, record))
}
