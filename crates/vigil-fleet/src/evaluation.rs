//! The paper's evaluation (OmniTransfer §IV-A, Tables I and II), behind `vigil bench --fleet`.
//!
//! The entities are split into an offline half (clustered; base models train on them) and an
//! online half, each of which brings one segment of short-term data — the newest steps of its
//! training series — and is tested on its test series. Five ways of getting the online
//! entities' models are compared on the same short-term data:
//!
//! - **OmniTransfer**: I-HAC, a base model per cluster, adaptive transfer;
//! - **one model per entity**, trained from scratch on the short-term data alone;
//! - **C1**: one base model for all, trained on segments drawn at random from the offline half;
//! - **C2**: OmniTransfer without phase alignment;
//! - **C3**: OmniTransfer's base models used as they are (full transfer with no fine-tuning:
//!   the base model with the entity's own normaliser and calibration).
//!
//! Each gets F1* — the paper's figure: the best F1 over all thresholds, micro-averaged (true
//! and false positives and negatives summed over the online entities, each entity at its own
//! best threshold, since different entities' models do not share a score scale) — the
//! point-adjusted F1 at a label-free threshold, and training time split into offline
//! (clustering and base models, paid once for the fleet) and online (paid per entity).

use crate::fleet::{cluster_fleet, ClusterConfig, FleetClusters, FleetError, SegmentRef};
use crate::segments::segment_starts;
use crate::transfer::{adapt, newest_steps, train_base_model, TransferConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vigil_core::metrics::best::best_f1_pointwise;
use vigil_core::metrics::point::{predict, Confusion};
use vigil_core::threshold::ThresholdMethod;
use vigil_core::Entity;
use vigil_models::experiment::threshold_and_evaluate;
use vigil_models::{TrainSpec, TrainedModel, Transfer};

/// One way of getting the online entities' models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    OmniTransfer,
    OneModelPerEntity,
    /// Ablation C1: one base model, trained on randomly chosen segments.
    OneBaseModel,
    /// Ablation C2: no phase alignment.
    NoAlignment,
    /// Ablation C3: the base models without fine-tuning.
    BaseModelOnly,
}

impl Strategy {
    /// Every strategy, in the order the paper's tables give them.
    pub const ALL: [Strategy; 5] = [
        Strategy::OmniTransfer,
        Strategy::OneModelPerEntity,
        Strategy::OneBaseModel,
        Strategy::NoAlignment,
        Strategy::BaseModelOnly,
    ];

    /// The short name a command line gives it.
    pub fn key(self) -> &'static str {
        match self {
            Strategy::OmniTransfer => "omnitransfer",
            Strategy::OneModelPerEntity => "per-entity",
            Strategy::OneBaseModel => "c1",
            Strategy::NoAlignment => "c2",
            Strategy::BaseModelOnly => "c3",
        }
    }

    /// The name in result tables.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::OmniTransfer => "OmniTransfer",
            Strategy::OneModelPerEntity => "one model per entity",
            Strategy::OneBaseModel => "C1: one base model",
            Strategy::NoAlignment => "C2: no alignment",
            Strategy::BaseModelOnly => "C3: base model only",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Strategy::ALL
            .into_iter()
            .find(|x| x.key() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                let keys: Vec<&str> = Strategy::ALL.iter().map(|x| x.key()).collect();
                format!("unknown strategy `{s}`; choose from {}", keys.join(", "))
            })
    }
}

/// How the evaluation runs.
#[derive(Debug, Clone)]
pub struct FleetBenchConfig {
    /// I-HAC for the offline half (its segment length is the short-term span too).
    pub cluster: ClusterConfig,
    /// Detector, seed, and the epochs of base models and of training from scratch (`None`:
    /// the detector's own).
    pub spec: TrainSpec,
    /// Epochs of each fine-tuning stage of a transfer
    /// ([`crate::transfer::DEFAULT_FINE_TUNE_EPOCHS`] unless measuring something else).
    pub fine_tune_epochs: usize,
    /// Full transfer at most this far from the centroid (`None`: each cluster's radius).
    pub tau: Option<f64>,
    /// The label-free threshold that PA-F1 is reported at.
    pub threshold: ThresholdMethod,
}

/// One online entity under one strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntityResult {
    pub entity: String,
    /// The cluster it was matched to, and how it was transferred (`None` when trained from
    /// scratch).
    pub cluster: Option<usize>,
    pub transfer: Option<Transfer>,
    /// Its best F1 over all thresholds, and the counts there.
    pub f1_star: f64,
    pub confusion_at_best: Confusion,
    /// Point-wise and point-adjusted F1 at the label-free threshold.
    pub f1: f64,
    pub pa_f1: f64,
    /// Seconds to get its model (training from scratch, or adapting a base model).
    pub seconds: f64,
}

/// One strategy over all online entities.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StrategyResult {
    pub strategy: Strategy,
    pub detector: String,
    /// Base models trained offline.
    pub base_models: usize,
    /// Micro-averaged F1* (the paper's figure).
    pub f1_star: f64,
    /// Mean of the entities' own F1*.
    pub mean_f1_star: f64,
    /// Mean point-adjusted F1 at the label-free threshold.
    pub pa_f1: f64,
    /// Seconds of clustering and base-model training (paid once).
    pub offline_seconds: f64,
    /// Seconds of getting every online entity's model.
    pub online_seconds: f64,
    /// Online entities given full and partial transfer.
    pub full: usize,
    pub partial: usize,
    pub entities: Vec<EntityResult>,
}

/// Splits entity indices `0..n` into an offline and an online half at random (`seed`); the
/// online half is the smaller when `n` is odd. Both come back sorted.
pub fn split_offline_online(n: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut online = order.split_off(n.div_ceil(2));
    order.sort_unstable();
    online.sort_unstable();
    (order, online)
}

/// Runs `strategies` for one detector: models of the offline entities' clusters are trained
/// under `work` (a scratch folder), the online entities are adapted and tested. `progress`
/// hears what is being done.
pub fn run_fleet_bench(
    offline: &[&Entity],
    online: &[&Entity],
    config: &FleetBenchConfig,
    strategies: &[Strategy],
    work: &Path,
    progress: &dyn Fn(String),
) -> Result<Vec<StrategyResult>, FleetError> {
    if offline.is_empty() || online.is_empty() {
        return Err(FleetError::EmptyHalf {
            offline: offline.len(),
            online: online.len(),
        });
    }
    let mut results = Vec::new();
    let mut offline_done: Vec<OfflineFleet> = Vec::new();
    for &strategy in strategies {
        progress(format!(
            "{} with {} ...",
            strategy.label(),
            config.spec.detector
        ));
        let result = match strategy {
            Strategy::OneModelPerEntity => from_scratch(online, config, progress)?,
            _ => {
                let cluster_config = clustering_of(strategy, &config.cluster);
                // C3 uses OmniTransfer's base models: the same offline work, done once.
                let position = offline_done.iter().position(|f: &OfflineFleet| {
                    f.clusters.config == cluster_config && f.strategy != Strategy::OneBaseModel
                });
                let fleet = match position {
                    Some(i) => &offline_done[i],
                    None => {
                        let fleet = train_offline(
                            strategy,
                            cluster_config,
                            offline,
                            config,
                            work,
                            progress,
                        )?;
                        offline_done.push(fleet);
                        offline_done.last().expect("just pushed")
                    }
                };
                adapt_online(strategy, fleet, online, config, progress)?
            }
        };
        progress(format!(
            "  F1* {:.4}  PA-F1 {:.4}  offline {:.1}s  online {:.1}s",
            result.f1_star, result.pa_f1, result.offline_seconds, result.online_seconds
        ));
        results.push(result);
    }
    Ok(results)
}

/// One model per online entity, trained from scratch on its short-term data.
fn from_scratch(
    online: &[&Entity],
    config: &FleetBenchConfig,
    progress: &dyn Fn(String),
) -> Result<StrategyResult, FleetError> {
    let mut entities = Vec::new();
    for entity in online {
        let short_term = newest_steps(&entity.train, config.cluster.segment_length)?;
        let started = Instant::now();
        let model = vigil_models::train(short_term, &config.spec, None)?;
        let seconds = started.elapsed().as_secs_f64();
        let result = evaluate_entity(entity, &model, config.threshold, None, None, seconds)?;
        progress(format!("  {}: F1* {:.4}", entity.name, result.f1_star));
        entities.push(result);
    }
    Ok(summarise(
        Strategy::OneModelPerEntity,
        &config.spec.detector,
        0,
        0.0,
        entities,
    ))
}

/// The clustering a strategy uses.
fn clustering_of(strategy: Strategy, base: &ClusterConfig) -> ClusterConfig {
    let mut config = base.clone();
    match strategy {
        Strategy::OneBaseModel => config.cut = crate::cluster::Cut::Clusters(1),
        Strategy::NoAlignment => config.align = false,
        _ => {}
    }
    config
}

/// The offline half clustered and its base models trained, in a fleet directory.
struct OfflineFleet {
    strategy: Strategy,
    dir: PathBuf,
    clusters: FleetClusters,
    seconds: f64,
}

/// Clusters the offline half with `cluster_config` and trains its base models under `work`.
fn remove_earlier_fleet(dir: &Path) -> Result<(), FleetError> {
    if let Some(foreign) = foreign_in_fleet(dir) {
        return Err(FleetError::Corrupt {
            path: dir.to_path_buf(),
            message: format!(
                "is not a fleet folder an earlier `vigil bench --fleet` wrote (it holds {}); vigil will not remove it — choose another --work-dir",
                foreign.display()
            ),
        });
    }
    std::fs::remove_dir_all(dir).map_err(|error| FleetError::Write {
        path: dir.to_path_buf(),
        error,
    })
}

/// The first thing in `dir` that a fleet folder does not hold, if any: a fleet folder has a
/// `clusters.json` that loads, `base/` with one vigil model per cluster, and `entities/` with
/// one vigil model and one `.transfer.json` record per entity.
fn foreign_in_fleet(dir: &Path) -> Option<PathBuf> {
    let names = |folder: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(folder)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    if FleetClusters::load(dir).is_err() {
        return Some(dir.join(crate::fleet::CLUSTERS_FILE));
    }
    let is_model = |p: &Path| p.is_dir() && vigil_models::model_dir::check_replaceable(p).is_ok();
    for path in names(dir) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let foreign = match name {
            crate::fleet::CLUSTERS_FILE => None,
            "base" => names(&path).into_iter().find(|p| !is_model(p)),
            "entities" => names(&path).into_iter().find(|p| {
                let record = p.to_str().is_some_and(|n| n.ends_with(".transfer.json"));
                !(is_model(p) || (record && p.is_file()))
            }),
            _ => Some(path.clone()),
        };
        if foreign.is_some() {
            return foreign;
        }
    }
    None
}

fn train_offline(
    strategy: Strategy,
    cluster_config: ClusterConfig,
    offline: &[&Entity],
    config: &FleetBenchConfig,
    work: &Path,
    progress: &dyn Fn(String),
) -> Result<OfflineFleet, FleetError> {
    let names: Vec<String> = offline.iter().map(|e| e.name.clone()).collect();
    let series: Vec<vigil_core::Series> = offline.iter().map(|e| e.train.clone()).collect();
    let started = Instant::now();
    let mut clusters = cluster_fleet(&names, &series, &cluster_config)?;
    if strategy == Strategy::OneBaseModel {
        clusters.clusters[0].nearest =
            random_segments(&names, &series, &cluster_config, config.spec.seed);
    }
    let dir = work.join(format!("{strategy:?}").to_lowercase());
    // A scratch folder: models left by an earlier run would be reused and their time not counted.
    // It is removed only when it is a fleet folder an earlier run wrote (its clusters.json
    // loads and it holds nothing else), never a folder of the user's.
    if dir.exists() {
        remove_earlier_fleet(&dir)?;
    }
    clusters.save(&dir)?;
    let by_name = |name: &str| offline.iter().find(|e| e.name == name).map(|e| &e.train);
    for c in 0..clusters.clusters.len() {
        train_base_model(&dir, &clusters, c, &config.spec, by_name)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    progress(format!(
        "  {} base models in {seconds:.1}s",
        clusters.clusters.len()
    ));
    Ok(OfflineFleet {
        strategy,
        dir,
        clusters,
        seconds,
    })
}

/// Adapts every online entity from `fleet`'s base models as `strategy` says.
fn adapt_online(
    strategy: Strategy,
    fleet: &OfflineFleet,
    online: &[&Entity],
    config: &FleetBenchConfig,
    progress: &dyn Fn(String),
) -> Result<StrategyResult, FleetError> {
    let base_only = strategy == Strategy::BaseModelOnly;
    let transfer = TransferConfig {
        spec: TrainSpec {
            epochs: if base_only {
                Some(0)
            } else {
                Some(config.fine_tune_epochs)
            },
            ..config.spec.clone()
        },
        steps: fleet.clusters.config.segment_length,
        // The base model as it is: full transfer, whatever the distance.
        tau: if base_only {
            Some(f64::INFINITY)
        } else {
            config.tau
        },
    };
    let mut entities = Vec::new();
    for entity in online {
        let (model, record) = adapt(
            &fleet.dir,
            &fleet.clusters,
            &entity.name,
            &entity.train,
            &transfer,
        )?;
        let result = evaluate_entity(
            entity,
            &model,
            config.threshold,
            Some(record.cluster),
            Some(record.transfer),
            record.seconds,
        )?;
        progress(format!(
            "  {}: cluster {} at {:.3} (τ {:.3}), {:?}: F1* {:.4}",
            entity.name,
            record.cluster,
            record.distance,
            record.tau,
            record.transfer,
            result.f1_star
        ));
        entities.push(result);
    }
    Ok(summarise(
        strategy,
        &config.spec.detector,
        fleet.clusters.clusters.len(),
        fleet.seconds,
        entities,
    ))
}

/// `config.nearest` segments drawn at random from the offline entities' whole segments (the
/// paper's C1: "the data used to train the base model are randomly selected").
fn random_segments(
    names: &[String],
    series: &[vigil_core::Series],
    config: &ClusterConfig,
    seed: u64,
) -> Vec<SegmentRef> {
    let len = config.segment_length;
    let mut all = Vec::new();
    for (name, s) in names.iter().zip(series) {
        all.extend(
            segment_starts(s.len(), len, config.segments_per_entity).map(|start| SegmentRef {
                entity: name.clone(),
                start,
                shift: 0,
            }),
        );
    }
    all.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    all.truncate(config.nearest.max(1));
    all
}

/// Scores an online entity's test series with its model and measures F1* and PA-F1.
fn evaluate_entity(
    entity: &Entity,
    model: &TrainedModel,
    threshold: ThresholdMethod,
    cluster: Option<usize>,
    transfer: Option<Transfer>,
    seconds: f64,
) -> Result<EntityResult, FleetError> {
    let labels = entity
        .test
        .labels
        .as_deref()
        .ok_or_else(|| FleetError::Unlabelled {
            entity: entity.name.clone(),
        })?;
    let (scores, _) = model.score(
        entity.test.clone(),
        &format!("test series of {}", entity.name),
    )?;
    let confusion_at_best = match best_f1_pointwise(&scores.total, labels) {
        Some(best) => Confusion::count(&predict(&scores.total, best.threshold), labels),
        // No anomaly in the test series: F1* is undefined; count the false positives of
        // alarming nothing (none), so that the entity adds nothing to the micro average.
        None => Confusion::count(&vec![0; labels.len()], labels),
    };
    let (report, _, _) =
        threshold_and_evaluate(&scores, &model.calibration, threshold, labels, None)?;
    Ok(EntityResult {
        entity: entity.name.clone(),
        cluster,
        transfer,
        f1_star: confusion_at_best.f1(),
        confusion_at_best,
        f1: report.f1,
        pa_f1: report.pa_f1,
        seconds,
    })
}

fn summarise(
    strategy: Strategy,
    detector: &str,
    base_models: usize,
    offline_seconds: f64,
    entities: Vec<EntityResult>,
) -> StrategyResult {
    let total = entities.iter().fold(Confusion::default(), |mut sum, e| {
        sum.tp += e.confusion_at_best.tp;
        sum.fp += e.confusion_at_best.fp;
        sum.fn_ += e.confusion_at_best.fn_;
        sum.tn += e.confusion_at_best.tn;
        sum
    });
    let n = entities.len().max(1) as f64;
    StrategyResult {
        strategy,
        detector: detector.to_string(),
        base_models,
        f1_star: total.f1(),
        mean_f1_star: entities.iter().map(|e| e.f1_star).sum::<f64>() / n,
        pa_f1: entities.iter().map(|e| e.pa_f1).sum::<f64>() / n,
        offline_seconds,
        online_seconds: entities.iter().map(|e| e.seconds).sum(),
        full: entities
            .iter()
            .filter(|e| e.transfer == Some(Transfer::Full))
            .count(),
        partial: entities
            .iter()
            .filter(|e| e.transfer == Some(Transfer::Partial))
            .count(),
        entities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::archetypes::{generate_archetype_fleet, ArchetypeFleetConfig};

    #[test]
    fn every_strategy_reports_on_every_online_entity() {
        let fleet = generate_archetype_fleet(&ArchetypeFleetConfig {
            entities: 12,
            archetypes: 3,
            metrics: 3,
            period: 48,
            ..ArchetypeFleetConfig::default()
        });
        let entities = &fleet.dataset.entities;
        let (offline, online) = split_offline_online(entities.len(), 1);
        let offline: Vec<&Entity> = offline.iter().map(|&i| &entities[i]).collect();
        let online: Vec<&Entity> = online.iter().map(|&i| &entities[i]).collect();
        let config = FleetBenchConfig {
            cluster: ClusterConfig {
                segment_length: 48,
                segments_per_entity: None,
                cut: crate::cluster::Cut::Clusters(3),
                nearest: 2,
                baseline: crate::baseline::BaselineConfig::default(),
                align: true,
            },
            spec: TrainSpec {
                detector: "usad".into(),
                epochs: Some(1),
                config: Some(serde_json::json!({"window": 4, "latent": 2})),
                ..TrainSpec::default()
            },
            fine_tune_epochs: 1,
            tau: None,
            threshold: "pot-batch".parse().unwrap(),
        };
        let work = tempfile::tempdir().unwrap();
        let results = run_fleet_bench(
            &offline,
            &online,
            &config,
            &Strategy::ALL,
            work.path(),
            &|_| {},
        )
        .unwrap();
        let by = |s: Strategy| results.iter().find(|r| r.strategy == s).unwrap();
        assert_eq!(results.len(), 5);
        for r in &results {
            assert_eq!(r.entities.len(), online.len(), "{:?}", r.strategy);
            assert!((0.0..=1.0).contains(&r.f1_star), "{:?}", r.strategy);
            // Micro F1* comes from the counts summed over entities.
            let tp: u64 = r.entities.iter().map(|e| e.confusion_at_best.tp).sum();
            let flagged: u64 = r
                .entities
                .iter()
                .map(|e| e.confusion_at_best.tp + e.confusion_at_best.fp)
                .sum();
            let positives: u64 = r
                .entities
                .iter()
                .map(|e| e.confusion_at_best.tp + e.confusion_at_best.fn_)
                .sum();
            let f1 = 2.0 * tp as f64 / (flagged + positives) as f64;
            assert!((r.f1_star - f1).abs() < 1e-9, "{:?}", r.strategy);
        }
        let scratch = by(Strategy::OneModelPerEntity);
        assert_eq!((scratch.base_models, scratch.offline_seconds), (0, 0.0));
        assert!(scratch.entities.iter().all(|e| e.transfer.is_none()));
        assert_eq!(by(Strategy::OmniTransfer).base_models, 3);
        assert_eq!(by(Strategy::OneBaseModel).base_models, 1);
        // C3 reuses OmniTransfer's base models (the same offline work) as they are.
        let base_only = by(Strategy::BaseModelOnly);
        assert_eq!(
            base_only.offline_seconds,
            by(Strategy::OmniTransfer).offline_seconds
        );
        assert_eq!(base_only.full, online.len());
        assert!(work
            .path()
            .join("omnitransfer")
            .join("clusters.json")
            .exists());
        assert!(!work.path().join("basemodelonly").exists());
    }

    #[test]
    fn the_split_is_a_seeded_partition_into_halves() {
        let (offline, online) = split_offline_online(9, 3);
        assert_eq!((offline.len(), online.len()), (5, 4));
        let mut all: Vec<usize> = offline.iter().chain(&online).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..9).collect::<Vec<_>>());
        assert_eq!(split_offline_online(9, 3), (offline, online));
        assert_ne!(split_offline_online(9, 3), split_offline_online(9, 4));
    }
}
