//! Scheduled retraining (vmanomaly's `fit_every` / `fit_window`): every `fit_every_s` the model
//! in service is trained again on the `fit_window_s` of data before each entity's newest scored
//! step, its threshold rule fitted, and only then written to the model store as its next version
//! and swapped in between two steps — if the version it was made from is still in service and
//! no operator rolled back meanwhile. Scoring goes on: the data is read from the store and the
//! training runs on a blocking thread.
//!
//! What the model learns as normal is what operators did not say otherwise about: steps that
//! alarmed (unless feedback says `not_anomaly`), ranges marked `anomaly`, and maintenance are
//! left out — cut out for a fresh fit, labelled anomalous for a fine-tune (whose windows holding
//! such a step are then not learnt as normal).

use crate::config::{RetrainConfig, RetrainMethod};
use crate::engine::model::ServingModel;
use crate::engine::Engine;
use crate::error::{Result, ServeError};
use crate::feedback::{effective, Effective};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use vigil_core::Series;
use vigil_models::{TrainSpec, TrainedModel, TuneSpec};

/// The manifest's lineage key naming the version a retrained model was trained again from.
pub const RETRAINED_FROM: &str = "retrained_from";

/// What one retraining did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RetrainReport {
    /// `name@version` retrained, and the version it wrote (now in service).
    pub from: String,
    pub version: u64,
    pub method: RetrainMethod,
    pub entities: usize,
    /// Steps trained on (for a fine-tune, with those labelled anomalous).
    pub steps: usize,
    /// Steps left out (fresh) or labelled anomalous (fine-tune): alarms, `anomaly` feedback,
    /// maintenance.
    pub left_out: usize,
    pub seconds: f64,
    /// When it finished (ms since the epoch).
    pub finished_at: i64,
}

/// The data gathered for one retraining.
pub(crate) struct Gathered {
    pub(crate) values: Vec<f64>,
    /// 1 where a step is not to be learnt as normal.
    pub(crate) labels: Vec<u8>,
    entities: usize,
    left_out: usize,
}

impl Gathered {
    pub(crate) fn steps(&self, metrics: usize) -> usize {
        self.values.len() / metrics
    }
}

/// Retrains now: one at a time (409 while one runs, or after a rollback until a reload); 422
/// with the reason when there is too little data or the model cannot be trained or served so;
/// the serving model and the model store untouched then.
pub async fn retrain(engine: &Arc<Engine>) -> Result<RetrainReport> {
    let Some(config) = engine.config.retrain.clone() else {
        return Err(ServeError::Unprocessable(
            "retraining is not configured; add a [retrain] table to the config".into(),
        ));
    };
    let _turn = engine.version_job_turn("retrain")?;
    let started = Instant::now();
    let outcome = retrain_with(engine, &config, started).await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(ServeError::Unprocessable(_) | ServeError::Conflict(_)) => "refused",
        Err(_) => "failed",
    };
    engine
        .exposition
        .retrains
        .get_or_create(&vec![("outcome".into(), label.into())])
        .inc();
    match &outcome {
        Ok(report) => {
            tracing::info!(from = %report.from, version = report.version, steps = report.steps, left_out = report.left_out, seconds = report.seconds, "retrained");
            *engine.last_retrain.lock().expect("retrain lock") = Some(report.clone());
        }
        Err(e) => tracing::warn!(error = %e, "retraining did not make a new version"),
    }
    outcome
}

async fn retrain_with(
    engine: &Arc<Engine>,
    config: &RetrainConfig,
    started: Instant,
) -> Result<RetrainReport> {
    let serving = engine.model();
    refuse_supervised(&serving, "retrained")?;
    let metrics = serving.metrics().len();
    let data = gather(engine, config, metrics).await?;
    let steps = data.steps(metrics);
    if steps < config.min_steps {
        let what = match config.method {
            RetrainMethod::Fresh => "left out",
            RetrainMethod::FineTune => "among them, labelled anomalous",
        };
        return Err(ServeError::Unprocessable(format!(
            "only {steps} steps of recent data to retrain on (min_steps is {}; {} {what} as \
             alarmed, marked anomalous or maintenance); still serving {}",
            config.min_steps,
            data.left_out,
            serving.id()
        )));
    }
    let method = config.method;
    let (entities, left_out) = (data.entities, data.left_out);
    let from = serving.id();
    // Trained, and its rule fitted, before anything is written: a version that could not be
    // served never reaches the store.
    let candidate = tokio::task::spawn_blocking({
        let serving = serving.clone();
        let config = engine.config.clone();
        move || {
            let mut trained = train(&serving.model, data, method)?;
            trained
                .manifest
                .lineage
                .insert(RETRAINED_FROM.into(), serving.id());
            ServingModel::from_trained(&config, 0, trained).map_err(|e| {
                ServeError::Unprocessable(format!("the retrained model cannot be served: {e}"))
            })
        }
    })
    .await
    .map_err(|e| ServeError::Config(format!("retraining stopped: {e}")))??;
    let version = engine.install(serving.version, candidate).await?;
    Ok(RetrainReport {
        from,
        version,
        method,
        entities,
        steps,
        left_out,
        seconds: started.elapsed().as_secs_f64(),
        finished_at: crate::engine::now_ms(),
    })
}

/// A supervised classifier (MTAD-FL's models) learns its training labels as targets, and the
/// labels the service has are mostly its own alarms: retrained or tuned on them it would learn
/// to repeat itself. Such a model is trained again from labelled data, offline or federated.
pub(crate) fn refuse_supervised(serving: &ServingModel, job: &str) -> Result<()> {
    if serving.model.detector.supervised() {
        return Err(ServeError::Unprocessable(format!(
            "{} ({}) is a supervised classifier: {job} on the service's labels, which are mostly \
             its own alarms, it would learn to repeat them; train it on labelled data (`vigil \
             train` on a file with a `label` column, or federated: docs/federated.md) and reload",
            serving.id(),
            serving.model.detector.kind()
        )));
    }
    Ok(())
}

/// The model trained again on `data` by the spec it was made with (fresh), or continued from
/// its weights (fine-tune); it keeps the threshold rule it was served with.
fn train(model: &TrainedModel, data: Gathered, method: RetrainMethod) -> Result<TrainedModel> {
    let metrics = model.manifest.metric_names.clone();
    let refused = |e: vigil_models::ModelError| {
        ServeError::Unprocessable(format!("retraining {}: {e}", model.manifest.detector))
    };
    let mut series = Series::new(metrics, data.values)
        .map_err(|e| ServeError::Unprocessable(format!("the recent data is not a series: {e}")))?;
    let mut trained = match method {
        RetrainMethod::Fresh => {
            let spec = TrainSpec::of_manifest(&model.manifest);
            vigil_models::train(series, &spec, None).map_err(refused)?
        }
        RetrainMethod::FineTune => {
            series.labels = Some(data.labels);
            let spec = TuneSpec {
                seed: model.manifest.training.seed,
                ..TuneSpec::default()
            };
            vigil_models::fine_tune(model, series, &spec).map_err(refused)?
        }
    };
    trained.manifest.threshold = model.manifest.threshold;
    Ok(trained)
}

/// Each entity's newest steps in the window before its newest scored step, up to an equal
/// share of `max_steps` each (at least [`MIN_SHARE`] steps, so that a large fleet gives a sample
/// of entities in an order drawn anew each time, whole windows of each). Entities whose newest
/// step is older than the window before the fleet's newest are left out (they stopped sending).
/// A metric missing at a step takes its last value, as in scoring; steps before every metric has
/// had a value are left out. Entities are joined end to end, as a fleet's base model's are: a
/// windowed model sees a few windows that straddle two of them (and, in `fresh`, two sides of a
/// step left out).
pub(crate) async fn gather(
    engine: &Engine,
    config: &RetrainConfig,
    metrics: usize,
) -> Result<Gathered> {
    let window_ms = i64::try_from(config.fit_window_s)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let mut heads = engine.store.stream_heads().await?;
    let newest = heads.iter().map(|h| h.2).max().unwrap_or(0);
    heads.retain(|h| h.2 > newest.saturating_sub(window_ms));
    let draw = crate::engine::now_ms();
    heads.sort_by_cached_key(|(tenant, entity, _)| {
        crate::shard::hashmod(&format!("{draw}\0{tenant}\0{entity}"), u64::MAX)
    });
    let share = (config.max_steps / heads.len().max(1)).max(MIN_SHARE);
    let mut data = Gathered {
        values: Vec::new(),
        labels: Vec::new(),
        entities: 0,
        left_out: 0,
    };
    let keep_all = config.method == RetrainMethod::FineTune;
    for (tenant, entity, last_ts) in heads {
        let room = share.min(config.max_steps.saturating_sub(data.steps(metrics)));
        if room == 0 {
            break;
        }
        let (from, to) = (last_ts.saturating_sub(window_ms) + 1, last_ts);
        // One step more than there is room for: the oldest may come cut short by the limit.
        let limit = i64::try_from((room + 1).saturating_mul(metrics)).unwrap_or(i64::MAX);
        let samples = engine
            .store
            .newest_samples(&tenant, &entity, from, to, limit)
            .await?;
        let Some(oldest) = samples.first().map(|s| s.0) else {
            continue;
        };
        let alarmed: HashSet<i64> = engine
            .store
            .alarmed_steps(&tenant, &entity, oldest, to)
            .await?
            .into_iter()
            .collect();
        let feedback = effective(&engine.store.feedback(&tenant, &entity).await?);
        let rows: Vec<(Vec<f64>, bool)> = filled_steps(&samples, metrics)
            .into_iter()
            .map(|(ts, row)| (row, is_normal(ts, alarmed.contains(&ts), &feedback)))
            .collect();
        let mut contributed = false;
        for (row, normal) in &rows[rows.len().saturating_sub(room)..] {
            if !normal {
                data.left_out += 1;
                if !keep_all {
                    continue;
                }
            }
            data.values.extend_from_slice(row);
            data.labels.push(u8::from(!normal));
            contributed = true;
        }
        if contributed {
            data.entities += 1;
        }
    }
    Ok(data)
}

/// The fewest steps an entity gives when the fleet is larger than `max_steps` allows whole
/// windows of: a few model windows' worth, not scattered single steps.
const MIN_SHARE: usize = 256;

/// Samples `(ts, metric, value)` as steps, oldest first: a metric missing at a step takes its
/// last value, as in scoring; steps before every metric has had a value are left out.
pub(crate) fn filled_steps(samples: &[(i64, i64, f64)], metrics: usize) -> Vec<(i64, Vec<f64>)> {
    let mut steps: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for &(ts, metric, value) in samples {
        let row = steps.entry(ts).or_insert_with(|| vec![f64::NAN; metrics]);
        if let Some(cell) = usize::try_from(metric).ok().and_then(|m| row.get_mut(m)) {
            *cell = value;
        }
    }
    let mut last = vec![f64::NAN; metrics];
    let mut out = Vec::with_capacity(steps.len());
    for (ts, row) in steps {
        for (cell, previous) in row.iter().zip(last.iter_mut()) {
            if cell.is_finite() {
                *previous = *cell;
            }
        }
        if last.iter().all(|v| v.is_finite()) {
            out.push((ts, last.clone()));
        }
    }
    out
}

/// Whether a step may be learnt as normal: not under feedback marking it `anomaly` or
/// maintenance, and not alarmed unless feedback says `not_anomaly`.
pub(crate) fn is_normal(ts: i64, alarmed: bool, feedback: &[Effective]) -> bool {
    match feedback.iter().find(|f| f.start <= ts && ts <= f.end) {
        Some(f) if f.kind == "maintenance" => false,
        Some(f) if f.label == "anomaly" => false,
        Some(f) if f.label == "not_anomaly" => true,
        _ => !alarmed,
    }
}

/// Retrains every `fit_every_s` until `stopped`; a retraining that makes no version is logged
/// and counted, and the next one is tried on schedule.
pub async fn run(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let Some(config) = engine.config.retrain.clone() else {
        return;
    };
    // With shards, one instance retrains (the others take the new version from the store).
    if engine.config.shard.is_some_and(|s| s.index != 0) {
        return;
    }
    let every = Duration::from_secs(config.fit_every_s);
    let mut next = every;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
        // A tuning in the way (or a version swapped in under the fit): try again soon rather
        // than a whole period later. A rollback's hold is a conflict too, retried as often.
        next = match retrain(&engine).await {
            Err(ServeError::Conflict(_)) => every.min(Duration::from_secs(60)),
            _ => every,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(start: i64, end: i64, label: &str, kind: &str) -> Effective {
        Effective {
            start,
            end,
            label: label.into(),
            kind: kind.into(),
            id: 1,
        }
    }

    #[test]
    fn alarms_anomalies_and_maintenance_are_not_learnt_unless_marked_normal() {
        let feedback = [
            piece(10, 20, "not_anomaly", "range"),
            piece(30, 40, "anomaly", "range"),
            piece(50, 60, "not_anomaly", "maintenance"),
        ];
        assert!(is_normal(5, false, &feedback));
        assert!(!is_normal(5, true, &feedback), "an alarm");
        assert!(is_normal(15, true, &feedback), "a false alarm, marked");
        assert!(!is_normal(35, false, &feedback), "a missed anomaly, marked");
        assert!(!is_normal(55, false, &feedback), "maintenance");
    }
}
