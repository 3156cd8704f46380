//! The engine between the HTTP layer and the store: ingest (checked, kept, then queued for
//! scoring), the streams of every tenant's entities, and the scorer that takes ready steps,
//! scores them with the model in service and keeps scores and states together.

pub mod model;
pub mod score;
pub mod stream;

use crate::config::ServeConfig;
use crate::error::{Result, ServeError};
use crate::exposition::{Exposition, Labels};
use crate::ingest::{self, Series};
use crate::outbound::alertmanager::AlarmChange;
use crate::outbound::remote_write_out::ScoredStep;
use crate::store::{SampleRow, SavedStream, ScoreRow, Store};
use model::ServingModel;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use stream::{Admit, Claim, Stream, StreamMemory};
use tokio::sync::{watch, Notify, Semaphore};
use vigil_models::{DirStore, ModelStore};

/// A stream's key: (tenant, entity).
type Key = (String, String);

pub struct Engine {
    pub config: ServeConfig,
    pub store: Store,
    pub exposition: Arc<Exposition>,
    /// Pushes to Alertmanager and a remote-write peer (those configured).
    pub outbound: crate::outbound::Outbound,
    model: RwLock<Arc<ServingModel>>,
    /// The version served before the current one, for a rollback.
    previous: Mutex<Option<Arc<ServingModel>>>,
    streams: Mutex<HashMap<Key, Stream>>,
    pending_steps: AtomicUsize,
    /// One ingest request at a time is checked and kept (two at once could both admit a value
    /// for the same step, and one would be lost).
    ingest_turn: tokio::sync::Mutex<()>,
    /// One model reload at a time.
    reload_turn: tokio::sync::Mutex<()>,
    /// The version an operator rolled back from: the poller does not serve it (or older) again,
    /// and retraining waits, until an explicit reload.
    rejected: Mutex<Option<u64>>,
    /// One job making a new version (retraining, tuning) at a time; what the last retraining
    /// did.
    retrain_turn: tokio::sync::Mutex<()>,
    pub(crate) last_retrain: Mutex<Option<crate::retrain::RetrainReport>>,
    /// The newest feedback id the last tuning took in (or that was there at the start).
    pub(crate) tuned_through: std::sync::atomic::AtomicI64,
    /// Requests allowed to wait for their turn; beyond them ingest answers 429.
    waiting: Semaphore,
    wake: Notify,
}

/// What an ingest request did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IngestReport {
    pub kept: usize,
    pub duplicates: usize,
    pub ignored: u64,
    /// Values for steps already taken, left out (only from [`Senders::Repeating`]).
    pub skipped: usize,
}

/// Who sends, and so what a value for a step already taken means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Senders {
    /// Remote-write, imports: such a value is out of order (400) unless it equals the stored
    /// one (a retry).
    Strict,
    /// A pull, which asks again for ranges it has had (after a restart, or for the newest
    /// points a server may not have had whole): such values are left out, counted.
    Repeating,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Engine {
    /// The engine over `store`, with every stream restored as the store left it: the state of
    /// its last scored step and the samples that arrived after it.
    pub async fn start(
        config: ServeConfig,
        model: ServingModel,
        store: Store,
    ) -> Result<Arc<Engine>> {
        let exposition = Arc::new(Exposition::new());
        let observed = exposition.clone();
        let store = store.observed_by(Arc::new(move |op, seconds| {
            observed
                .store_latency
                .get_or_create(&vec![("op".to_string(), op.to_string())])
                .observe(seconds)
        }));
        let waiting = Semaphore::new(config.limits.waiting_requests);
        let outbound = crate::outbound::Outbound::start(&config, exposition.clone());
        let engine = Engine {
            config,
            store,
            exposition,
            outbound,
            model: RwLock::new(Arc::new(model)),
            previous: Mutex::new(None),
            streams: Mutex::new(HashMap::new()),
            pending_steps: AtomicUsize::new(0),
            ingest_turn: tokio::sync::Mutex::new(()),
            reload_turn: tokio::sync::Mutex::new(()),
            rejected: Mutex::new(None),
            retrain_turn: tokio::sync::Mutex::new(()),
            last_retrain: Mutex::new(None),
            tuned_through: std::sync::atomic::AtomicI64::new(0),
            waiting,
            wake: Notify::new(),
        };
        engine.restore().await?;
        // Feedback already there when the service starts does not count toward the next tuning.
        let newest_feedback = engine.store.newest_feedback_id().await?;
        engine
            .tuned_through
            .store(newest_feedback, Ordering::Relaxed);
        let version = engine.model().version;
        engine.exposition.model_version.set(version as i64);
        Ok(Arc::new(engine))
    }

    async fn restore(&self) -> Result<()> {
        let model = self.model();
        let m = model.metrics().len();
        let labels: HashMap<Key, Labels> = self
            .store
            .all_entities()
            .await?
            .into_iter()
            .map(|(t, e, l)| ((t, e), l))
            .collect();
        let mut streams = HashMap::new();
        // With shards, only this instance's streams (the others' are theirs to score).
        let shard = self.config.shard.as_ref();
        for saved in self.store.stream_states().await? {
            if !crate::shard::owns(shard, &saved.entity) {
                continue;
            }
            let key = (saved.tenant.clone(), saved.entity.clone());
            let memory: StreamMemory = serde_json::from_str(&saved.state).unwrap_or_else(|e| {
                tracing::warn!(tenant = %key.0, entity = %key.1, error = %e, "stream state unreadable; its threshold starts afresh");
                StreamMemory::default()
            });
            // A state saved under another version is adapted when the stream is next claimed.
            let stream_labels = labels.get(&key).cloned().unwrap_or_default();
            streams.insert(
                key,
                Stream::new(stream_labels, memory, saved.model, Some(saved.last_ts)),
            );
        }
        let now = Instant::now();
        let mut pending = 0;
        for (tenant, row) in self.store.unscored_samples().await? {
            if !crate::shard::owns(shard, &row.entity) {
                continue;
            }
            let key = (tenant, row.entity.clone());
            let stream = streams.entry(key.clone()).or_insert_with(|| {
                Stream::new(
                    labels.get(&key).cloned().unwrap_or_default(),
                    StreamMemory::default(),
                    model.id(),
                    None,
                )
            });
            if let Ok(metric) = usize::try_from(row.metric) {
                if metric < m && stream.insert(row.ts, metric, row.value, m, now) {
                    pending += 1;
                }
            }
        }
        for ((tenant, entity), stream) in &streams {
            if stream.labels.is_empty() {
                tracing::warn!(%tenant, %entity, "entity without labels in the store");
            }
        }
        *self.streams.lock().expect("streams lock") = streams;
        self.pending_steps.store(pending, Ordering::Relaxed);
        self.exposition.pending_steps.set(pending as i64);
        self.wake.notify_one();
        Ok(())
    }

    /// The model in service now.
    pub fn model(&self) -> Arc<ServingModel> {
        self.model.read().expect("model lock").clone()
    }

    /// What the last retraining made, if one did since the start.
    pub fn last_retrain(&self) -> Option<crate::retrain::RetrainReport> {
        self.last_retrain.lock().expect("retrain lock").clone()
    }

    /// The version served before the current one, if any.
    pub fn previous_model(&self) -> Option<Arc<ServingModel>> {
        self.previous.lock().expect("previous lock").clone()
    }

    /// Serves the model store's newest version of the model if it is newer than the one in
    /// service; returns the versions (before, after) when it swapped. The new version is loaded
    /// and checked before anything changes: a version that cannot be loaded, or that reads other
    /// metrics, leaves the serving model as it was. The swap takes effect between two scoring
    /// rounds, and the version it replaces is kept for [`Engine::rollback`]. After a rollback,
    /// only an `explicit` reload (an operator's request) serves the rejected version again; the
    /// poller takes only a version newer than it.
    pub async fn reload(&self, explicit: bool) -> Result<Option<(u64, u64)>> {
        // One reload at a time (the poller and a request could both swap in the same version,
        // leaving it as its own previous one).
        let _turn = self.reload_turn.lock().await;
        let config = self.config.clone();
        let loaded = tokio::task::spawn_blocking(move || ServingModel::load(&config))
            .await
            .map_err(|e| ServeError::Config(format!("loading the model stopped: {e}")))?;
        let current = self.model();
        let fresh = loaded.map_err(|e| {
            self.exposition.model_load_errors.inc();
            ServeError::Unprocessable(format!("{e}; still serving {}", current.id()))
        })?;
        // (An explicit reload lifts a rollback's hold, once it succeeds: below.)
        let rejected = *self.rejected.lock().expect("rejected lock");
        let held = !explicit && rejected.is_some_and(|r| fresh.version <= r);
        if fresh.version <= current.version || held {
            if explicit && fresh.version == current.version {
                *self.rejected.lock().expect("rejected lock") = None;
            }
            return Ok(None);
        }
        if fresh.metrics() != current.metrics() {
            self.exposition.model_load_errors.inc();
            return Err(ServeError::Unprocessable(format!(
                "{} reads the metrics {:?}, not {:?} as {} does; serve it under another name \
                 (still serving {})",
                fresh.id(),
                fresh.metrics(),
                current.metrics(),
                current.id(),
                current.id()
            )));
        }
        let versions = (current.version, fresh.version);
        *self.rejected.lock().expect("rejected lock") = None;
        self.swap(Arc::new(fresh));
        Ok(Some(versions))
    }

    /// The turn of a job that makes a new version (`what`: retrain, tune): on shard 0 only (421
    /// elsewhere: the others take its versions from the store), one job at a time (409), and
    /// not while an operator's rollback holds (409).
    pub(crate) fn version_job_turn(&self, what: &str) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        if let Some(shard) = self.config.shard.filter(|s| s.index != 0) {
            return Err(ServeError::Misdirected(format!(
                "shard {} does not {what}; instance 0 does (the others take its versions)",
                shard.index
            )));
        }
        let turn = self.retrain_turn.try_lock().map_err(|_| {
            ServeError::Conflict("a retraining or tuning is already running".into())
        })?;
        if self.rolled_back() {
            return Err(ServeError::Conflict(format!(
                "an operator rolled back to {}; no {what} until POST /api/v1/models/reload",
                self.model().id()
            )));
        }
        Ok(turn)
    }

    /// Whether an operator rolled back and has not reloaded since.
    pub fn rolled_back(&self) -> bool {
        self.rejected.lock().expect("rejected lock").is_some()
    }

    /// Writes `candidate` (made from version `based_on`, its rule already fitted) to the model
    /// store as the model's next version and serves exactly it, if version `based_on` is still
    /// in service and nothing was rolled back meanwhile; else writes nothing (409). Returns the
    /// version written.
    /// The write and the swap run in a task of their own, so that a job stopped while it waits
    /// (a shutdown, a client gone) cannot leave a version written but not served.
    pub async fn install(self: &Arc<Self>, based_on: u64, candidate: ServingModel) -> Result<u64> {
        let engine = self.clone();
        tokio::spawn(async move { engine.install_now(based_on, candidate).await })
            .await
            .map_err(|e| ServeError::Config(format!("installing the model stopped: {e}")))?
    }

    async fn install_now(&self, based_on: u64, candidate: ServingModel) -> Result<u64> {
        let _turn = self.reload_turn.lock().await;
        let current = self.model();
        if current.version != based_on || self.rolled_back() {
            return Err(ServeError::Conflict(format!(
                "{} is in service now, not the version {based_on} this was made from, or an \
                 operator rolled back: nothing written",
                current.id()
            )));
        }
        let (models, name) = (self.config.models.clone(), self.config.model.clone());
        let mut candidate = tokio::task::spawn_blocking(move || {
            DirStore::new(models)
                .put(&name, &candidate.model)
                .map(|version| ServingModel {
                    version,
                    ..candidate
                })
        })
        .await
        .map_err(|e| ServeError::Config(format!("writing the model stopped: {e}")))??;
        candidate.name = self.config.model.clone();
        let version = candidate.version;
        self.swap(Arc::new(candidate));
        Ok(version)
    }

    /// Serves the version served before the current one again; returns (from, to).
    pub async fn rollback(&self, name: &str) -> Result<(u64, u64)> {
        let _turn = self.reload_turn.lock().await;
        let current = self.model();
        if name != current.name {
            return Err(ServeError::NotFound(format!(
                "model `{name}` is not in service (`{}` is)",
                current.name
            )));
        }
        let previous = self.previous_model().ok_or_else(|| {
            ServeError::Conflict(format!(
                "{} has no earlier version in service to roll back to",
                current.id()
            ))
        })?;
        let versions = (current.version, previous.version);
        *self.rejected.lock().expect("rejected lock") = Some(current.version);
        self.swap(previous);
        Ok(versions)
    }

    fn swap(&self, next: Arc<ServingModel>) {
        let before = std::mem::replace(&mut *self.model.write().expect("model lock"), next.clone());
        tracing::info!(from = %before.id(), to = %next.id(), "model swapped");
        self.exposition.model_version.set(next.version as i64);
        *self.previous.lock().expect("previous lock") = Some(before);
        self.wake.notify_one();
    }

    /// Checks and keeps `series` for `tenant`: the whole request or nothing. Answers 429 when
    /// too many steps wait to be scored or too many requests wait for their turn.
    pub async fn ingest(&self, tenant: &str, series: Vec<Series>) -> Result<IngestReport> {
        self.ingest_as(tenant, series, Senders::Strict).await
    }

    /// [`Engine::ingest`], with what `senders` asks of values for steps already taken.
    pub async fn ingest_as(
        &self,
        tenant: &str,
        series: Vec<Series>,
        senders: Senders,
    ) -> Result<IngestReport> {
        let overloaded = |what: String| ServeError::Overloaded {
            message: format!("{what}; retry later"),
            retry_after_s: self.config.limits.retry_after_s,
        };
        let _waiting = self.waiting.try_acquire().map_err(|_| {
            overloaded(format!(
                "{} ingest requests are already waiting",
                self.config.limits.waiting_requests
            ))
        })?;
        let _turn = self.ingest_turn.lock().await;
        let pending = self.pending_steps.load(Ordering::Relaxed);
        if pending >= self.config.limits.pending_steps {
            return Err(overloaded(format!(
                "{pending} steps are waiting to be scored"
            )));
        }
        let model = self.model();
        let metrics = model.metrics();
        let batch = ingest::to_batch(
            series,
            &self.config.labels,
            metrics,
            self.config.shard.as_ref(),
        )?;
        let mut report = IngestReport {
            ignored: batch.ignored,
            ..Default::default()
        };
        // Sort every point: new, a retry of what is kept, or refused.
        let (mut rows, mut late, mut new_entities) = (Vec::new(), Vec::new(), Vec::new());
        {
            let streams = self.streams.lock().expect("streams lock");
            // Each entity's stream looked up once, not once per point.
            let known: Vec<Option<&Stream>> = batch
                .entities
                .iter()
                .map(|(entity, _)| streams.get(&(tenant.to_string(), entity.clone())))
                .collect();
            for (index, (entity, labels)) in batch.entities.iter().enumerate() {
                if known[index].is_none() {
                    new_entities.push((index, entity.clone(), labels.clone()));
                }
            }
            for p in &batch.points {
                let entity = &batch.entities[p.entity].0;
                let admit =
                    known[p.entity].map_or(Admit::New, |s| s.admit(p.ts, p.metric, p.value));
                match admit {
                    Admit::New => rows.push(*p),
                    Admit::Duplicate => report.duplicates += 1,
                    // A pull asks again for what it has had: a value for a step already
                    // taken is left out (the step keeps what it was scored with).
                    Admit::Conflict(_) | Admit::Late if senders == Senders::Repeating => {
                        report.skipped += 1
                    }
                    Admit::Conflict(have) => {
                        return Err(ServeError::BadRequest(format!(
                        "{} of entity `{entity}` at {} ms already has the value {have}, not {}; \
                             a series has one value per time",
                        metrics[p.metric], p.ts, p.value
                    )))
                    }
                    Admit::Late => late.push(*p),
                }
            }
        }
        for p in &late {
            let entity = &batch.entities[p.entity].0;
            let stored = self
                .store
                .sample_value(tenant, entity, p.ts, p.metric as i64)
                .await?;
            if stored != Some(p.value) {
                return Err(ServeError::BadRequest(format!(
                    "{} of entity `{entity}` at {} ms is out of order: that step is already scored; \
                     send samples in time order (nothing of this request was kept)",
                    metrics[p.metric], p.ts
                )));
            }
            report.duplicates += 1;
        }
        let samples: Vec<SampleRow> = rows
            .iter()
            .map(|p| SampleRow {
                entity: batch.entities[p.entity].0.clone(),
                ts: p.ts,
                metric: p.metric as i64,
                value: p.value,
            })
            .collect();
        let entities: Vec<(String, Labels)> = new_entities
            .iter()
            .map(|(_, e, l)| (e.clone(), l.clone()))
            .collect();
        self.store
            .write_samples(tenant, &entities, &samples, now_ms())
            .await?;
        // Kept: now the streams see them.
        let now = Instant::now();
        let m = metrics.len();
        let mut fresh_steps = 0;
        {
            let mut streams = self.streams.lock().expect("streams lock");
            for (_, entity, labels) in new_entities {
                streams
                    .entry((tenant.to_string(), entity))
                    .or_insert_with(|| {
                        Stream::new(labels, StreamMemory::default(), model.id(), None)
                    });
            }
            // Entity by entity, each stream looked up once.
            rows.sort_by_key(|p| p.entity);
            for same_entity in rows.chunk_by(|a, b| a.entity == b.entity) {
                let key = (
                    tenant.to_string(),
                    batch.entities[same_entity[0].entity].0.clone(),
                );
                let stream = streams
                    .get_mut(&key)
                    .expect("every entity has a stream by now");
                for p in same_entity {
                    if stream.insert(p.ts, p.metric, p.value, m, now) {
                        fresh_steps += 1;
                    }
                }
            }
        }
        let pending = self.pending_steps.fetch_add(fresh_steps, Ordering::Relaxed) + fresh_steps;
        self.exposition.pending_steps.set(pending as i64);
        self.exposition.ignored_samples.inc_by(batch.ignored);
        report.kept = rows.len();
        self.wake.notify_one();
        Ok(report)
    }

    /// Every stream's ready steps, claimed.
    fn claim_ready(&self, model: &ServingModel) -> Vec<(Key, Claim)> {
        let (grace, window, m) = (self.config.grace_ms, model.window(), model.metrics().len());
        let mut streams = self.streams.lock().expect("streams lock");
        let id = model.id();
        let mut claims: Vec<(Key, Claim)> = streams
            .iter_mut()
            .filter_map(|(key, stream)| {
                if stream.model != id {
                    // A new version (or a rollback) takes over between two steps.
                    let memory = std::mem::take(&mut stream.memory);
                    stream.memory = memory.for_another_model(window, m);
                    stream.model = id.clone();
                }
                stream.claim(grace, window, m).map(|c| (key.clone(), c))
            })
            .collect();
        // Dropped steps leave the streams at the claim.
        let dropped: usize = claims.iter().map(|(_, c)| c.dropped.len()).sum();
        if dropped > 0 {
            self.exposition.dropped_steps.inc_by(dropped as u64);
            self.steps_left(dropped);
        }
        claims.sort_by(|a, b| a.0.cmp(&b.0));
        claims
    }

    /// Scores every ready step once; returns how many were scored.
    pub async fn score_ready(&self) -> Result<usize> {
        let model = self.model();
        // Claimed while no ingest request is between admitting its samples and handing them to
        // the streams: a sample admitted for a step is in the step before the step is claimed.
        let claims = {
            let _turn = self.ingest_turn.lock().await;
            self.claim_ready(&model)
        };
        if claims.is_empty() {
            return Ok(0);
        }
        let scoring = model.clone();
        let keys: Vec<Key> = claims.iter().map(|(k, _)| k.clone()).collect();
        let results = tokio::task::spawn_blocking(move || {
            claims
                .into_iter()
                .map(|((tenant, entity), claim)| {
                    let last = claim.steps.last().map(|s| s.ts);
                    let scored = if claim.steps.is_empty() {
                        Err(String::new())
                    } else {
                        score::score_claim(&scoring, &entity, claim)
                    };
                    ((tenant, entity), last, scored)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let results = match results {
            Ok(results) => results,
            Err(e) => {
                // The claims are given back, to be scored in the next round.
                let mut streams = self.streams.lock().expect("streams lock");
                for key in &keys {
                    if let Some(stream) = streams.get_mut(key) {
                        stream.release();
                    }
                }
                return Err(ServeError::Config(format!("the scorer stopped: {e}")));
            }
        };
        let mut rows: Vec<(String, ScoreRow)> = Vec::new();
        let mut states = Vec::new();
        let mut commits: Vec<(Key, i64, StreamMemory, Vec<ScoreRow>)> = Vec::new();
        for ((tenant, entity), last, scored) in results {
            let Some(last_ts) = last else { continue };
            let memory = match scored {
                Ok(scored) => {
                    rows.extend(scored.rows.iter().map(|r| (tenant.clone(), r.clone())));
                    commits.push((
                        (tenant.clone(), entity.clone()),
                        last_ts,
                        scored.memory.clone(),
                        scored.rows,
                    ));
                    scored.memory
                }
                Err(why) => {
                    // The steps are passed over, the stream keeps its state: scoring them again
                    // would fail again.
                    tracing::error!(%tenant, %entity, error = %why, "steps could not be scored and are skipped");
                    self.exposition.scoring_errors.inc();
                    let memory = self
                        .streams
                        .lock()
                        .expect("streams lock")
                        .get(&(tenant.clone(), entity.clone()))
                        .map(|s| s.memory.clone())
                        .unwrap_or_default();
                    commits.push((
                        (tenant.clone(), entity.clone()),
                        last_ts,
                        memory.clone(),
                        Vec::new(),
                    ));
                    memory
                }
            };
            states.push(SavedStream {
                tenant,
                entity,
                model: model.id(),
                last_ts,
                state: serde_json::to_string(&memory).expect("stream memory encodes"),
            });
        }
        if let Err(e) = self.store.save_scored(&rows, &states).await {
            let mut streams = self.streams.lock().expect("streams lock");
            for key in &keys {
                if let Some(stream) = streams.get_mut(key) {
                    stream.release();
                }
            }
            return Err(e);
        }
        let scored = rows.len();
        let alarms = rows.iter().filter(|(_, r)| r.alarm).count();
        let now = Instant::now();
        let mut left = 0;
        {
            let mut streams = self.streams.lock().expect("streams lock");
            for ((tenant, entity), last_ts, memory, scored_rows) in commits {
                let Some(stream) = streams.get_mut(&(tenant.clone(), entity.clone())) else {
                    continue;
                };
                let before = stream.pending_steps();
                let arrived = stream.commit(last_ts, memory);
                left += before - stream.pending_steps();
                for at in arrived {
                    self.exposition
                        .scoring_latency
                        .observe(now.duration_since(at).as_secs_f64());
                }
                if !scored_rows.is_empty() {
                    self.publish(&tenant, &entity, &stream.labels, &model, &scored_rows);
                }
            }
        }
        self.steps_left(left);
        self.exposition.scored_steps.inc_by(scored as u64);
        self.exposition.alarms.inc_by(alarms as u64);
        Ok(scored)
    }

    /// A claim's scored steps, out: the newest on `/metrics`, every one to the remote-write
    /// peer, and the alarm's start and end to Alertmanager (configured ones).
    fn publish(
        &self,
        tenant: &str,
        entity: &str,
        labels: &Labels,
        model: &ServingModel,
        rows: &[ScoreRow],
    ) {
        let mut base: Labels = labels.clone();
        base.retain(|(n, _)| n != "for" && n != "tenant");
        base.push(("for".into(), model.name.clone()));
        base.push(("tenant".into(), tenant.into()));
        let parts = |row: &ScoreRow| -> Vec<(String, f64)> {
            model
                .metrics()
                .iter()
                .zip(&row.contributions)
                .map(|(metric, part)| (metric.clone(), f64::from(*part)))
                .collect()
        };
        let newest = rows.last().expect("a claim scores at least one step");
        self.exposition
            .set_score(tenant, base.clone(), newest.anomaly_score, parts(newest));
        if self.outbound.wants_scores() {
            for row in rows {
                self.outbound.score(ScoredStep {
                    labels: base.clone(),
                    ts: row.ts,
                    anomaly_score: row.anomaly_score,
                    contributions: parts(row),
                });
            }
        }
        // Alerts are for what is happening: a backfill's old alarms are stored, not paged.
        let recent = self
            .config
            .alertmanager
            .as_ref()
            .is_some_and(|am| now_ms() - newest.ts <= 4 * 1000 * am.resend_s.max(1) as i64);
        if self.outbound.wants_alarms() && recent {
            let change = |row: &ScoreRow| AlarmChange {
                tenant: tenant.into(),
                entity: entity.into(),
                labels: base.clone(),
                alarm: row.alarm,
                ts: row.ts,
                anomaly_score: row.anomaly_score,
                top_metric: parts(row)
                    .into_iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(m, _)| m)
                    .unwrap_or_default(),
            };
            // An alarm inside the claim is told even when the claim ends quiet.
            if let Some(first_alarm) = rows.iter().find(|r| r.alarm) {
                self.outbound.alarm(change(first_alarm));
            }
            self.outbound.alarm(change(newest));
        }
    }

    /// Scores what becomes ready until `stop` turns true, then scores what is ready and returns.
    pub async fn run_scorer(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let stopping = *stop.borrow();
            match self.score_ready().await {
                Ok(n) if n > 0 => continue,
                Ok(_) if stopping => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "scoring round failed; retrying");
                    if stopping {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// `n` steps left the streams (scored or dropped).
    fn steps_left(&self, n: usize) {
        let before = self
            .pending_steps
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(n))
            })
            .expect("the update always gives a value");
        self.exposition
            .pending_steps
            .set(before.saturating_sub(n) as i64);
    }

    /// Steps waiting to be scored.
    pub fn pending_steps(&self) -> usize {
        self.pending_steps.load(Ordering::Relaxed)
    }
}
