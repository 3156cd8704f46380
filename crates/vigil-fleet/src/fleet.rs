//! A fleet's clustering on disk: `vigil fleet cluster` writes it into the fleet directory as
//! `clusters.json`, and the later steps (base models, transfer) read it back. It holds the
//! configuration, which cluster every entity is in, each cluster's centroid and the segments
//! nearest it, and the pivot that new data is aligned to.

use crate::baseline::BaselineConfig;
use crate::cluster::{cluster_with, ClusterError, Clustering, Cut};
use crate::segments::{slice, Segment};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vigil_core::Series;

/// The file in a fleet directory.
pub const CLUSTERS_FILE: &str = "clusters.json";
const FORMAT: &str = "vigil-fleet-clusters";
const FORMAT_VERSION: u32 = 1;

/// How a fleet is clustered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Steps per segment: the span of data a new entity brings (e.g. one day).
    pub segment_length: usize,
    /// Segments per entity, newest first (`None`: every whole segment).
    pub segments_per_entity: Option<usize>,
    /// Where the dendrogram is cut.
    pub cut: Cut,
    /// Segments kept per cluster, nearest its centroid first (the paper: 5).
    pub nearest: usize,
    /// Baseline extraction.
    pub baseline: BaselineConfig,
    /// Align segments' phases to the pivot (off: the paper's ablation C2).
    #[serde(default = "aligned")]
    pub align: bool,
}

fn aligned() -> bool {
    true
}

/// Steps per segment by default: one day of five-minute steps.
pub const DEFAULT_SEGMENT_LENGTH: usize = 288;
/// Where the dendrogram is cut by default (standardised units: 0 identical, about 1 unrelated
/// shapes; docs/fleet.md).
pub const DEFAULT_MAX_DISTANCE: f64 = 0.7;
/// Segments kept per cluster for its base model by default (the paper: 5).
pub const DEFAULT_NEAREST: usize = 5;

impl Default for ClusterConfig {
    /// `vigil fleet cluster`'s defaults (and the Python package's `vigil.fleet.cluster`).
    fn default() -> Self {
        ClusterConfig {
            segment_length: DEFAULT_SEGMENT_LENGTH,
            segments_per_entity: None,
            cut: Cut::Distance(DEFAULT_MAX_DISTANCE),
            nearest: DEFAULT_NEAREST,
            baseline: BaselineConfig::default(),
            align: true,
        }
    }
}

impl ClusterConfig {
    /// Checks every field; the message names the field as its `vigil fleet cluster` flag.
    pub fn validate(&self) -> Result<(), FleetError> {
        use vigil_core::validate::{at_least_zero, positive_count};
        positive_count("--segment-length", self.segment_length)?;
        if let Some(k) = self.segments_per_entity {
            positive_count("--segments-per-entity", k)?;
        }
        match self.cut {
            Cut::Clusters(k) => positive_count("--clusters", k)?,
            Cut::Distance(d) => at_least_zero("--max-distance", d)?,
        }
        positive_count("--nearest", self.nearest)?;
        positive_count("baseline smoothing_window", self.baseline.smoothing_window)?;
        for (name, share) in [
            ("baseline drop_fraction", self.baseline.drop_fraction),
            ("baseline flat_fraction", self.baseline.flat_fraction),
        ] {
            if !(0.0..1.0).contains(&share) {
                return Err(vigil_core::CoreError::invalid(format!(
                    "{name} must be in [0, 1), got {share}"
                ))
                .into());
            }
        }
        Ok(())
    }
}

/// Why a fleet cannot be clustered or its clustering read.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("entity {entity} has {steps} steps, fewer than one segment of {segment_length}; give a shorter --segment-length or leave the entity out")]
    TooShort {
        entity: String,
        steps: usize,
        segment_length: usize,
    },
    // The OS error is in the message, deliberately not the `source` (printed twice otherwise).
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{path} is not a readable fleet clustering ({message}); run `vigil fleet cluster` again"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error("entity {entity} is in the clustering but not among the entities given (or shorter than when it was clustered); give the folder that was clustered")]
    Missing { entity: String },
    #[error("entity {entity}'s test series has no labels; the fleet evaluation needs labelled test data")]
    Unlabelled { entity: String },
    #[error("the fleet evaluation needs at least one offline and one online entity (it has {offline} offline, {online} online)")]
    EmptyHalf { offline: usize, online: usize },
    #[error(transparent)]
    Model(#[from] vigil_models::ModelError),
    #[error(transparent)]
    Core(#[from] vigil_core::CoreError),
}

/// Where a segment came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// Entity name.
    pub entity: String,
    /// First step in the entity's series.
    pub start: usize,
    /// Roll that aligned it to the pivot.
    pub shift: usize,
}

/// One entity's place in the clustering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityEntry {
    pub name: String,
    /// The cluster most of its segments are in.
    pub cluster: usize,
    /// How many of its segments were clustered.
    pub segments: usize,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterEntry {
    pub id: usize,
    /// Entities assigned to it.
    pub entities: Vec<String>,
    /// Its segments nearest the centroid, nearest first: what its base model trains on.
    pub nearest: Vec<SegmentRef>,
    /// The centroid, metric-major (`metrics x segment_length`), standardised units.
    pub centroid: Vec<f32>,
    /// Segments in it.
    pub segments: usize,
    /// How far its segments lie from the centroid: the 90th percentile of their distances
    /// (for a cluster of fewer than [`FEWEST_FOR_A_RADIUS`] segments, the median radius of the
    /// others). The default transfer threshold τ: a new entity this close gets full transfer.
    pub radius: f64,
}

/// Segments a cluster needs for a radius of its own: one or two segments say nothing of how
/// far a cluster's members spread (one alone has radius 0, which would make every new entity
/// "far").
pub const FEWEST_FOR_A_RADIUS: usize = 3;

/// Gives clusters too small to measure their spread the median radius of the others (their
/// own when no cluster is large enough).
fn borrow_radius_for_small_clusters(mut clusters: Vec<ClusterEntry>) -> Vec<ClusterEntry> {
    let measured: Vec<f64> = clusters
        .iter()
        .filter(|c| c.segments >= FEWEST_FOR_A_RADIUS)
        .map(|c| c.radius)
        .collect();
    if measured.is_empty() {
        return clusters;
    }
    let median = percentile(measured, 0.5);
    for c in clusters
        .iter_mut()
        .filter(|c| c.segments < FEWEST_FOR_A_RADIUS)
    {
        c.radius = median;
    }
    clusters
}

/// A fleet's clustering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetClusters {
    pub format: String,
    pub format_version: u32,
    pub config: ClusterConfig,
    pub metric_names: Vec<String>,
    pub entities: Vec<EntityEntry>,
    pub clusters: Vec<ClusterEntry>,
    /// The pivot segment and its values (metric-major, standardised).
    pub pivot: SegmentRef,
    pub pivot_values: Vec<f32>,
}

/// Clusters entities `names` with training series `series` (all with the same metrics, which
/// the caller has checked).
pub fn cluster_fleet(
    names: &[String],
    series: &[Series],
    config: &ClusterConfig,
) -> Result<FleetClusters, FleetError> {
    config.validate()?;
    for (name, s) in names.iter().zip(series) {
        if s.len() < config.segment_length.max(1) {
            return Err(FleetError::TooShort {
                entity: name.clone(),
                steps: s.len(),
                segment_length: config.segment_length,
            });
        }
    }
    let segments: Vec<Segment> = series
        .par_iter()
        .enumerate()
        .flat_map_iter(|(e, s)| {
            slice(
                e,
                &s.values,
                s.n_metrics(),
                config.segment_length,
                config.segments_per_entity,
                &config.baseline,
            )
        })
        .collect();
    let clustering: Clustering = cluster_with(&segments, config.cut, config.nearest, config.align)?;
    let reference = |i: usize| SegmentRef {
        entity: names[segments[i].entity].clone(),
        start: segments[i].start,
        shift: clustering.shifts[i],
    };
    let assigned = clustering.entity_clusters(&segments, names.len());
    let mut counts = vec![0usize; names.len()];
    segments.iter().for_each(|s| counts[s.entity] += 1);
    let entities: Vec<EntityEntry> = names
        .iter()
        .zip(&assigned)
        .zip(&counts)
        .map(|((name, cluster), &segments)| EntityEntry {
            name: name.clone(),
            cluster: cluster.expect("every entity has at least one segment (checked above)"),
            segments,
        })
        .collect();
    let clusters = clustering
        .centroids
        .iter()
        .enumerate()
        .map(|(id, centroid)| ClusterEntry {
            id,
            entities: entities
                .iter()
                .filter(|e| e.cluster == id)
                .map(|e| e.name.clone())
                .collect(),
            nearest: clustering.nearest[id]
                .iter()
                .map(|&i| reference(i))
                .collect(),
            centroid: centroid.clone(),
            segments: clustering.labels.iter().filter(|&&l| l == id).count(),
            radius: percentile(
                (0..segments.len())
                    .filter(|&i| clustering.labels[i] == id)
                    .map(|i| clustering.distances[i])
                    .collect(),
                0.9,
            ),
        })
        .collect();
    let clusters = borrow_radius_for_small_clusters(clusters);
    Ok(FleetClusters {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        config: config.clone(),
        metric_names: series[0].metric_names.clone(),
        entities,
        clusters,
        pivot: reference(clustering.pivot),
        pivot_values: clustering.pivot_segment.values.clone(),
    })
}

/// Writes `value` as JSON to `path` through a temporary file in the same folder and a rename.
pub(crate) fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<(), FleetError> {
    vigil_core::write::write_atomically(path, |w| {
        serde_json::to_writer(w, value).map_err(|e| FleetError::Write {
            path: path.to_path_buf(),
            error: e.into(),
        })
    })
}

/// The `q` quantile of `values` (nearest rank), 0 when empty.
fn percentile(mut values: Vec<f64>, q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

impl FleetClusters {
    /// The cluster nearest a new entity's segment (standardised baseline, as [`slice`] makes
    /// it): the segment aligned to the pivot, then the centroid at the least distance.
    /// Returns the cluster and the distance.
    pub fn assign(&self, segment: &Segment) -> (usize, f64) {
        let aligner = crate::align::Aligner::new(self.config.segment_length);
        let pivot = Segment {
            entity: usize::MAX,
            start: self.pivot.start,
            len: self.config.segment_length,
            metrics: self.metric_names.len(),
            values: self.pivot_values.clone(),
        };
        let shift = if self.config.align {
            aligner.best_shift(&aligner.reference(&pivot), segment).0
        } else {
            0
        };
        let aligned = crate::align::roll(segment, shift);
        self.clusters
            .iter()
            .map(|c| (c.id, crate::cluster::distance(&aligned.values, &c.centroid)))
            .fold(
                (0, f64::INFINITY),
                |best, x| if x.1 < best.1 { x } else { best },
            )
    }

    /// This clustering's identity: base and entity models record it, so that after a
    /// re-clustering they are known to be stale ([`vigil_models::model_dir::fingerprint`]).
    pub fn id(&self) -> String {
        vigil_models::model_dir::fingerprint(self)
    }

    /// Writes `dir/clusters.json` through a temporary file and a rename.
    pub fn save(&self, dir: &Path) -> Result<(), FleetError> {
        write_json_atomic(&dir.join(CLUSTERS_FILE), self)
    }

    /// Reads `dir/clusters.json`, refusing anything that is not a clustering this version wrote.
    pub fn load(dir: &Path) -> Result<FleetClusters, FleetError> {
        let path = dir.join(CLUSTERS_FILE);
        let corrupt = |message: String| FleetError::Corrupt {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| corrupt(e.to_string()))?;
        FleetClusters::from_json(&text).map_err(corrupt)
    }

    /// The clustering in `text` (as `clusters.json` holds it), or why it is not one this
    /// version wrote.
    pub fn from_json(text: &str) -> Result<FleetClusters, String> {
        let clusters: FleetClusters = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if clusters.format != FORMAT || clusters.format_version != FORMAT_VERSION {
            return Err(format!(
                "format {} version {}, this vigil reads {FORMAT} version {FORMAT_VERSION}",
                clusters.format, clusters.format_version
            ));
        }
        clusters
            .config
            .validate()
            .map_err(|e| format!("its clustering settings are invalid: {e}"))?;
        clusters.check_consistent()?;
        Ok(clusters)
    }

    /// Refuses a clustering whose parts do not fit together (an edited file): the steps after
    /// it index clusters by id and slice centroids and the pivot by the segment's shape.
    fn check_consistent(&self) -> Result<(), String> {
        let n = self.clusters.len();
        if n == 0 {
            return Err("it holds no cluster".into());
        }
        let values = self.config.segment_length * self.metric_names.len();
        if let Some(c) = self.clusters.iter().enumerate().find(|(i, c)| c.id != *i) {
            return Err(format!("cluster {} is listed at position {}", c.1.id, c.0));
        }
        if let Some(c) = self.clusters.iter().find(|c| c.centroid.len() != values) {
            return Err(format!(
                "cluster {}'s centroid holds {} values, not segment_length × metrics = {values}",
                c.id,
                c.centroid.len()
            ));
        }
        if self.pivot_values.len() != values {
            return Err(format!(
                "the pivot holds {} values, not segment_length × metrics = {values}",
                self.pivot_values.len()
            ));
        }
        if let Some(e) = self.entities.iter().find(|e| e.cluster >= n) {
            return Err(format!(
                "entity {} is in cluster {}, but there are {n}",
                e.name, e.cluster
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::archetypes::{generate_archetype_fleet, ArchetypeFleetConfig};

    #[test]
    fn a_cluster_too_small_to_measure_takes_the_median_radius() {
        let entry = |segments, radius| ClusterEntry {
            id: 0,
            entities: vec![],
            nearest: vec![],
            centroid: vec![],
            segments,
            radius,
        };
        let radii: Vec<f64> = borrow_radius_for_small_clusters(vec![
            entry(1, 0.0),
            entry(5, 0.2),
            entry(10, 0.4),
            entry(12, 0.3),
        ])
        .iter()
        .map(|c| c.radius)
        .collect();
        assert_eq!(radii, vec![0.3, 0.2, 0.4, 0.3]);
    }

    #[test]
    fn a_clustering_round_trips_through_its_directory() {
        let cfg = ArchetypeFleetConfig {
            entities: 12,
            archetypes: 3,
            ..ArchetypeFleetConfig::default()
        };
        let fleet = generate_archetype_fleet(&cfg);
        let names: Vec<String> = fleet
            .dataset
            .entities
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let series: Vec<Series> = fleet
            .dataset
            .entities
            .iter()
            .map(|e| e.train.clone())
            .collect();
        let config = ClusterConfig {
            segment_length: cfg.period,
            segments_per_entity: Some(2),
            cut: Cut::Clusters(3),
            nearest: 5,
            baseline: BaselineConfig::default(),
            align: true,
        };
        let clusters = cluster_fleet(&names, &series, &config).unwrap();
        assert_eq!(
            clusters.entities.iter().map(|e| e.segments).sum::<usize>(),
            24
        );
        let found: Vec<usize> = clusters.entities.iter().map(|e| e.cluster).collect();
        assert_eq!(
            crate::rand_index::adjusted_rand_index(&found, &fleet.archetype),
            1.0
        );
        let dir = tempfile::tempdir().unwrap();
        clusters.save(dir.path()).unwrap();
        assert_eq!(FleetClusters::load(dir.path()).unwrap(), clusters);
        std::fs::write(dir.path().join(CLUSTERS_FILE), "{\"format\": 1}").unwrap();
        let err = FleetClusters::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("run `vigil fleet cluster` again"), "{err}");
        let short = cluster_fleet(
            &names,
            &series,
            &ClusterConfig {
                segment_length: 10_000,
                ..config
            },
        );
        assert!(short
            .unwrap_err()
            .to_string()
            .contains("fewer than one segment"));
    }
}
