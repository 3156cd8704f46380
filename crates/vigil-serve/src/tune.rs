//! The feedback loop (issue 29 item 6): operators' feedback fine-tunes the model in service.
//! Each piece of feedback in force (`anomaly` or `not_anomaly` over a range; maintenance is
//! not feedback on the model) becomes a stretch of the entity's steps, with the steps before it
//! as the model's context, labelled as the operator said: the model continues training from its
//! weights on them (`vigil_models::fine_tune`: stretches marked normal are learnt as normal,
//! windows holding a step marked anomalous are not). Every few pieces are held back; the tuned
//! model is served only if it judges them at least as well as the serving one, and like a
//! retraining, only if that version is still in service when it is done.
//!
//! A job runs on request (`POST /api/v1/models/{name}/tune`) or, with `[tune]`, once
//! `after_feedback` new pieces have come in.

use crate::config::TuneConfig;
use crate::engine::model::{RuleStart, ServingModel};
use crate::engine::Engine;
use crate::error::{Result, ServeError};
use crate::feedback::effective;
use crate::retrain::{filled_steps, is_normal};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use vigil_core::threshold::decide_stream;
use vigil_core::Series;
use vigil_models::TuneSpec;

/// The manifest's lineage key naming the version a model was fine-tuned from by feedback.
pub const TUNED_FROM: &str = "tuned_from_feedback";

/// What one job did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TuneReport {
    /// `name@version` tuned.
    pub from: String,
    /// The version written and served, when the tuned model was not worse.
    pub version: Option<u64>,
    pub swapped: bool,
    /// Why it was or was not served.
    pub reason: String,
    /// Pieces of feedback tuned on, and held back to check.
    pub pieces: usize,
    pub held_back: usize,
    /// Steps tuned on (with their context).
    pub steps: usize,
    /// The share of the held-back steps each model judged as the operators did (alarm on
    /// `anomaly`, none on `not_anomaly`); absent when nothing was held back.
    pub accuracy_before: Option<f64>,
    pub accuracy_after: Option<f64>,
    pub seconds: f64,
    pub finished_at: i64,
}

/// One piece of feedback as data: the steps before it (context, fewer than the model's
/// window; each labelled as a retraining would: anomalous when it alarmed or lies in a range
/// marked anomalous or maintenance) and its own steps, all of one entity.
struct Piece {
    anomalous: bool,
    context: Vec<(Vec<f64>, bool)>,
    steps: Vec<Vec<f64>>,
}

/// Tunes the model `name` now from the feedback in force. One job (tuning or retraining) at a
/// time: 409 while one runs or after a rollback; 422 when the detector cannot continue training
/// or there is no feedback with data; a tuned model that judges the held-back feedback worse is
/// not served (200, `swapped: false`, the reason).
pub async fn tune(engine: &Arc<Engine>, name: &str) -> Result<TuneReport> {
    if name != engine.config.model {
        return Err(ServeError::NotFound(format!(
            "model `{name}` is not in service (`{}` is)",
            engine.config.model
        )));
    }
    let _turn = engine.version_job_turn("tune")?;
    let config = engine.config.tune.clone().unwrap_or_default();
    let started = Instant::now();
    let outcome = tune_with(engine, &config, started).await;
    let label = match &outcome {
        Ok(report) if report.swapped => "ok",
        Ok(_) => "worse",
        Err(ServeError::Unprocessable(_) | ServeError::Conflict(_)) => "refused",
        Err(_) => "failed",
    };
    engine
        .exposition
        .tunes
        .get_or_create(&vec![("outcome".into(), label.into())])
        .inc();
    match &outcome {
        Ok(report) => {
            tracing::info!(from = %report.from, version = ?report.version, swapped = report.swapped, reason = %report.reason, "tuned from feedback")
        }
        Err(e) => tracing::warn!(error = %e, "tuning from feedback made no version"),
    }
    outcome
}

async fn tune_with(
    engine: &Arc<Engine>,
    config: &TuneConfig,
    started: Instant,
) -> Result<TuneReport> {
    let serving = engine.model();
    crate::retrain::refuse_supervised(&serving, "tuned")?;
    if !serving.model.detector.continues_training() {
        return Err(ServeError::Unprocessable(format!(
            "{} ({}) is fitted in one pass and cannot continue training from feedback; serve a \
             neural detector, or retrain it ([retrain])",
            serving.id(),
            serving.model.detector.kind()
        )));
    }
    let newest_feedback = engine.store.newest_feedback_id().await?;
    let pieces = gather(engine, &serving, config).await?;
    // The fleet's recent steps, gathered as a retraining does (labelled, not cut).
    let recent = crate::retrain::gather(
        engine,
        &crate::config::RetrainConfig {
            method: crate::config::RetrainMethod::FineTune,
            max_steps: config.normal_steps.max(1),
            min_steps: 1,
            ..crate::config::RetrainConfig::default()
        },
        serving.metrics().len(),
    )
    .await?;
    if pieces.is_empty() {
        return Err(ServeError::Unprocessable(
            "no feedback marking steps anomalous or normal, with data stored for them, to tune on"
                .into(),
        ));
    }
    // Every k-th piece is held back (at least one of two or more).
    let every = (1.0 / config.check_share).round().max(2.0) as usize;
    let mut held: Vec<bool> = (0..pieces.len()).map(|i| i % every == every - 1).collect();
    if pieces.len() >= 2 && !held.contains(&true) {
        held[pieces.len() - 1] = true;
    }
    let (mut values, mut labels) = if config.normal_steps > 0 {
        (recent.values, recent.labels)
    } else {
        (Vec::new(), Vec::new())
    };
    for (piece, _) in pieces.iter().zip(&held).filter(|(_, h)| !**h) {
        for (row, anomalous) in &piece.context {
            values.extend_from_slice(row);
            labels.push(u8::from(*anomalous));
        }
        for row in &piece.steps {
            values.extend_from_slice(row);
            labels.push(u8::from(piece.anomalous));
        }
    }
    let steps = labels.len();
    let held_back: Vec<Piece> = pieces
        .into_iter()
        .zip(&held)
        .filter(|(_, h)| **h)
        .map(|(p, _)| p)
        .collect();
    let from = serving.id();
    let (epochs, serve_config) = (config.epochs, engine.config.clone());
    let (candidate, before, after) = tokio::task::spawn_blocking({
        let serving = serving.clone();
        move || -> Result<(ServingModel, Option<f64>, Option<f64>)> {
            let refused = |e: vigil_models::ModelError| {
                ServeError::Unprocessable(format!("tuning {}: {e}", serving.id()))
            };
            let mut series = Series::new(serving.metrics().to_vec(), values).map_err(|e| {
                ServeError::Unprocessable(format!("the feedback's data is not a series: {e}"))
            })?;
            series.labels = Some(labels);
            let spec = TuneSpec {
                epochs,
                seed: serving.model.manifest.training.seed,
                ..TuneSpec::default()
            };
            let mut tuned =
                vigil_models::fine_tune(&serving.model, series, &spec).map_err(refused)?;
            tuned
                .manifest
                .lineage
                .insert(TUNED_FROM.into(), serving.id());
            let candidate = ServingModel::from_trained(&serve_config, 0, tuned).map_err(|e| {
                ServeError::Unprocessable(format!("the tuned model cannot be served: {e}"))
            })?;
            let before = accuracy(&serving, &held_back)?;
            let after = accuracy(&candidate, &held_back)?;
            Ok((candidate, before, after))
        }
    })
    .await
    .map_err(|e| ServeError::Config(format!("tuning stopped: {e}")))??;
    let mut report = TuneReport {
        from,
        version: None,
        swapped: false,
        reason: String::new(),
        pieces: held.iter().filter(|h| !**h).count(),
        held_back: held.iter().filter(|h| **h).count(),
        steps,
        accuracy_before: before,
        accuracy_after: after,
        seconds: 0.0,
        finished_at: 0,
    };
    match (before, after) {
        (Some(b), Some(a)) if a < b => {
            report.reason = format!(
                "the tuned model judged the held-back feedback worse ({a:.3} of its steps as \
                 the operators did, against {b:.3}); still serving {}",
                report.from
            );
        }
        _ => {
            let version = engine.install(serving.version, candidate).await?;
            report.version = Some(version);
            report.swapped = true;
            report.reason = match (before, after) {
                (Some(b), Some(a)) => format!(
                    "the tuned model judged the held-back feedback at least as well ({a:.3} \
                     against {b:.3})"
                ),
                _ => "too little feedback to hold any back: served unchecked".into(),
            };
        }
    }
    // This job took in the feedback up to here, served or not.
    engine
        .tuned_through
        .fetch_max(newest_feedback, Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    report.finished_at = crate::engine::now_ms();
    Ok(report)
}

/// The feedback in force on every entity, as pieces of data: `anomaly` and `not_anomaly`
/// ranges (their newest `max_piece_steps` steps), each with the steps before it as context.
async fn gather(
    engine: &Engine,
    serving: &ServingModel,
    config: &TuneConfig,
) -> Result<Vec<Piece>> {
    let metrics = serving.metrics().len();
    let window = serving.model.detector.window().max(1);
    let entities = engine.store.feedback_entities().await?;
    let mut pieces = Vec::new();
    for (tenant, entity) in entities {
        let feedback = effective(&engine.store.feedback(&tenant, &entity).await?);
        for piece in feedback
            .iter()
            .filter(|f| f.kind != "maintenance" && f.label != "auto")
        {
            let limit =
                |steps: usize| i64::try_from(steps.saturating_mul(metrics)).unwrap_or(i64::MAX);
            // One step more than is kept: the oldest may come cut short by the limit.
            let own = engine
                .store
                .newest_samples(
                    &tenant,
                    &entity,
                    piece.start,
                    piece.end,
                    limit(config.max_piece_steps + 1),
                )
                .await?;
            let Some(first) = own.first().map(|s| s.0) else {
                continue;
            };
            // The steps before it, one more than the context needs (to fill a missing metric).
            let mut samples = engine
                .store
                .newest_samples(&tenant, &entity, i64::MIN, first - 1, limit(window))
                .await?;
            samples.extend(own);
            let rows = filled_steps(&samples, metrics);
            let in_piece = rows.iter().filter(|(ts, _)| *ts >= first).count();
            let kept = in_piece.min(config.max_piece_steps);
            let split = rows.len() - kept;
            let context = &rows[split.saturating_sub(window - 1)..split];
            // Too short to score (at the start of an entity's data): no window to judge or learn.
            if kept == 0 || context.len() + kept < window {
                continue;
            }
            let alarmed: std::collections::HashSet<i64> = match context.first() {
                Some((from, _)) => engine
                    .store
                    .alarmed_steps(&tenant, &entity, *from, rows[split].0 - 1)
                    .await?
                    .into_iter()
                    .collect(),
                None => Default::default(),
            };
            pieces.push(Piece {
                anomalous: piece.label == "anomaly",
                context: context
                    .iter()
                    .map(|(ts, row)| {
                        let normal = is_normal(*ts, alarmed.contains(ts), &feedback);
                        (row.clone(), !normal)
                    })
                    .collect(),
                steps: rows[split..].iter().map(|(_, r)| r.clone()).collect(),
            });
        }
    }
    Ok(pieces)
}

/// The share of the pieces' steps `model` judges as the operators did, each piece scored after
/// its context and judged by a fresh stream of the model's rule; `None` without pieces.
fn accuracy(model: &ServingModel, pieces: &[Piece]) -> Result<Option<f64>> {
    let (mut agreed, mut judged) = (0usize, 0usize);
    for piece in pieces {
        let values: Vec<f64> = piece.steps.iter().flatten().copied().collect();
        let context: Vec<f64> = piece
            .context
            .iter()
            .flat_map(|(row, _)| row)
            .copied()
            .collect();
        let series = Series::new(model.metrics().to_vec(), values)
            .map_err(|e| ServeError::Unprocessable(format!("held-back feedback: {e}")))?;
        let (scores, _, _) = model
            .model
            .score_continuing(series, &context, "held-back feedback")
            .map_err(|e| ServeError::Unprocessable(format!("held-back feedback: {e}")))?;
        let thresholds = match &model.start {
            RuleStart::Constant(t) => vec![*t; scores.total.len()],
            RuleStart::State(start) => {
                let mut state = Some(start.as_ref().clone());
                decide_stream(
                    model.threshold,
                    &model.model.calibration,
                    &scores.total,
                    &mut state,
                )
                .map_err(|e| ServeError::Unprocessable(format!("held-back feedback: {e}")))?
                .thresholds
            }
        };
        for (score, threshold) in scores.total.iter().zip(&thresholds) {
            agreed += usize::from((score >= threshold) == piece.anomalous);
            judged += 1;
        }
    }
    Ok((judged > 0).then(|| agreed as f64 / judged as f64))
}

/// With `[tune]` and `after_feedback` above 0: looks every `check_every_s` for new feedback and
/// tunes once `after_feedback` pieces have come in since the last tuning (or the start).
pub async fn run(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let Some(config) = engine.config.tune.clone().filter(|c| c.after_feedback > 0) else {
        return;
    };
    if engine.config.shard.is_some_and(|s| s.index != 0) {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(config.check_every_s)) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
        let Ok(newest) = engine.store.newest_feedback_id().await else {
            continue;
        };
        let since = newest - engine.tuned_through.load(Ordering::Relaxed);
        if since >= config.after_feedback as i64 {
            let name = engine.config.model.clone();
            match tune(&engine, &name).await {
                // Done (served or not), or refused for what the feedback is: the next try
                // waits for new feedback.
                Ok(_) | Err(ServeError::Unprocessable(_)) => {
                    engine.tuned_through.fetch_max(newest, Ordering::Relaxed);
                }
                // Busy, rolled back, or a failure (the store, say): tried again next time.
                Err(_) => {}
            }
        }
    }
}
