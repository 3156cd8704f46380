//! The HTTP API (axum): ingest, queries, feedback, `/metrics` and health.
//!
//! | route | scope | what |
//! |---|---|---|
//! | `POST /api/v1/write` | write | Prometheus remote-write 1.0 (204) |
//! | `POST /api/v1/import` | write | VictoriaMetrics JSON lines, also for backfill (204) |
//! | `POST /api/v1/import/csv?entity=E` | write | backfill one entity from CSV (204) |
//! | `POST /api/v1/feedback` | write | feedback on a range (201) |
//! | `GET /api/v1/feedback?entity=E` | read | an entity's feedback history and what is in force |
//! | `GET /api/v1/entities?recent_ms=` | read | the tenant's entities, their newest scores and recent alarms |
//! | `GET /api/v1/entities/{entity}?recent_ms=` | read | one of them |
//! | `GET /api/v1/entities/{entity}/scores?from=&to=` | read | scored steps |
//! | `GET /api/v1/entities/{entity}/samples?from=&to=` | read | raw samples |
//! | `GET /api/v1/status` | read | the model in service, its rule, the queue |
//! | `POST /api/v1/models/reload` | write, all tenants | serve the store's newest version |
//! | `POST /api/v1/models/{name}/rollback` | write, all tenants | serve the previous version again |
//! | `POST /api/v1/models/retrain` | write, all tenants | retrain now on recent data (`[retrain]`) |
//! | `POST /api/v1/models/{name}/tune` | write, all tenants | fine-tune now from the feedback in force |
//! | `GET /metrics` | read | anomaly scores and the service's health (OpenMetrics) |
//! | `GET /-/healthy` | none | liveness |
//! | `GET /ui/` | none | the web UI (its files; the data it shows comes from the routes above) |

use crate::auth::authorize;
use crate::config::Scope;
use crate::engine::{now_ms, Engine};
use crate::error::{Result, ServeError};
use crate::feedback::{effective, FeedbackRequest};
use crate::ingest::{import, remote_write};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

type AppState = State<Arc<Engine>>;
/// A query string, or why it could not be read (answered 400 with the form it should take).
type QueryResult<T> = std::result::Result<Query<T>, axum::extract::rejection::QueryRejection>;

pub fn router(engine: Arc<Engine>) -> Router {
    let limit = engine.config.limits.body_bytes;
    Router::new()
        .route("/api/v1/write", post(remote_write_handler))
        .route("/api/v1/import", post(import_handler))
        .route("/api/v1/import/csv", post(csv_handler))
        .route("/api/v1/feedback", post(post_feedback).get(get_feedback))
        .route("/api/v1/entities", get(entities))
        .route("/api/v1/entities/{entity}", get(entity))
        .route("/api/v1/entities/{entity}/scores", get(scores))
        .route("/api/v1/entities/{entity}/samples", get(samples))
        .route("/api/v1/status", get(status))
        .route("/api/v1/models/reload", post(reload_model))
        .route("/api/v1/models/retrain", post(retrain_model))
        .route("/api/v1/models/{name}/tune", post(tune_model))
        .route("/api/v1/models/{name}/rollback", post(rollback_model))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "vigil is healthy\n" }))
        .merge(crate::ui::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(engine)
}

/// The body, or 413 when it is over the limit (axum stops reading it there).
fn body(engine: &Engine, body: std::result::Result<Bytes, BytesRejection>) -> Result<Bytes> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ServeError::TooLarge(format!(
            "the body is over the {} byte limit; send smaller batches (or raise limits.body_bytes)",
            engine.config.limits.body_bytes
        )),
        _ => ServeError::BadRequest(format!("the body could not be read: {e}")),
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Ingest's common end: counted by format and status, 204 when kept.
async fn ingest(
    engine: &Engine,
    format: &'static str,
    headers: &HeaderMap,
    decode: impl FnOnce() -> Result<Vec<crate::ingest::Series>>,
) -> Response {
    let outcome = async {
        let tenant = authorize(&engine.config, headers, Scope::Write)?;
        let series = decode()?;
        engine.ingest(&tenant, series).await
    }
    .await;
    let status = match &outcome {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(e) => e.status(),
    };
    engine
        .exposition
        .ingest_requests
        .get_or_create(&vec![
            ("format".into(), format.into()),
            ("code".into(), status.as_u16().to_string()),
        ])
        .inc();
    match outcome {
        Ok(report) => {
            engine
                .exposition
                .ingested_samples
                .get_or_create(&vec![("format".into(), format.into())])
                .inc_by(report.kept as u64);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn remote_write_handler(
    State(engine): AppState,
    headers: HeaderMap,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let decode = || {
        let raw = body(&engine, raw)?;
        remote_write::check_headers(
            header_str(&headers, header::CONTENT_TYPE),
            header_str(&headers, header::CONTENT_ENCODING),
        )?;
        remote_write::decode(&raw, engine.config.limits.decoded_bytes)
    };
    ingest(&engine, "remote_write", &headers, decode).await
}

async fn import_handler(
    State(engine): AppState,
    headers: HeaderMap,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let decode = || import::decode(&body(&engine, raw)?);
    ingest(&engine, "import", &headers, decode).await
}

async fn csv_handler(
    State(engine): AppState,
    headers: HeaderMap,
    query: QueryResult<EntityQuery>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let decode = || {
        let Query(query) =
            query.map_err(|e| ServeError::BadRequest(format!("{e}; use ?entity=NAME")))?;
        if let Some(shard) = engine.config.shard.filter(|s| !s.owns(&query.entity)) {
            return Err(ServeError::Misdirected(format!(
                "entity `{}` is shard {}'s of {}, not this instance's ({}); send it there",
                query.entity,
                crate::shard::hashmod(&query.entity, shard.count),
                shard.count,
                shard.index
            )));
        }
        crate::ingest::csv_upload::decode(
            &body(&engine, raw)?,
            &query.entity,
            &engine.config.labels.entity,
        )
    };
    ingest(&engine, "csv", &headers, decode).await
}

async fn post_feedback(
    State(engine): AppState,
    headers: HeaderMap,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let tenant = authorize(&engine.config, &headers, Scope::Write)?;
    let request = FeedbackRequest::parse(&body(&engine, raw)?)?;
    let mut row = request.to_row(now_ms())?;
    if !engine.store.entity_exists(&tenant, &row.entity).await? {
        return Err(unknown_entity(&row.entity));
    }
    row.id = engine.store.add_feedback(&tenant, &row).await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

fn unknown_entity(entity: &str) -> ServeError {
    ServeError::NotFound(format!(
        "entity `{entity}` has sent no data to this tenant; check the name and X-Scope-OrgID"
    ))
}

#[derive(Deserialize)]
struct EntityQuery {
    entity: String,
}

async fn get_feedback(
    State(engine): AppState,
    headers: HeaderMap,
    query: QueryResult<EntityQuery>,
) -> Result<Response> {
    let tenant = authorize(&engine.config, &headers, Scope::Read)?;
    let Query(query) =
        query.map_err(|e| ServeError::BadRequest(format!("{e}; use ?entity=NAME")))?;
    if !engine.store.entity_exists(&tenant, &query.entity).await? {
        return Err(unknown_entity(&query.entity));
    }
    let history = engine.store.feedback(&tenant, &query.entity).await?;
    let in_force = effective(&history);
    Ok(Json(serde_json::json!({
        "entity": query.entity,
        "history": history,
        "effective": in_force,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct RecentQuery {
    /// How far back from each entity's newest step its alarms count as recent (default 1 h).
    recent_ms: Option<i64>,
}

/// The longest `recent_ms`: a week of alarms per entity is as far as an overview looks.
const MAX_RECENT_MS: i64 = 7 * 86_400_000;

async fn entities(
    State(engine): AppState,
    headers: HeaderMap,
    query: QueryResult<RecentQuery>,
) -> Result<Response> {
    let tenant = authorize(&engine.config, &headers, Scope::Read)?;
    let recent_ms = recent_window(query)?;
    let rows = engine.store.entities(&tenant, recent_ms, None).await?;
    Ok(
        Json(serde_json::json!({ "tenant": tenant, "recent_ms": recent_ms, "entities": rows }))
            .into_response(),
    )
}

/// One entity as `GET /api/v1/entities` lists it.
async fn entity(
    State(engine): AppState,
    headers: HeaderMap,
    Path(entity): Path<String>,
    query: QueryResult<RecentQuery>,
) -> Result<Response> {
    let tenant = authorize(&engine.config, &headers, Scope::Read)?;
    let recent_ms = recent_window(query)?;
    let row = engine
        .store
        .entities(&tenant, recent_ms, Some(&entity))
        .await?
        .pop()
        .ok_or_else(|| unknown_entity(&entity))?;
    Ok(
        Json(serde_json::json!({ "tenant": tenant, "recent_ms": recent_ms, "entity": row }))
            .into_response(),
    )
}

fn recent_window(query: QueryResult<RecentQuery>) -> Result<i64> {
    let Query(query) =
        query.map_err(|e| ServeError::BadRequest(format!("{e}; use ?recent_ms=MS")))?;
    match query.recent_ms.unwrap_or(3_600_000) {
        ms if (1..=MAX_RECENT_MS).contains(&ms) => Ok(ms),
        ms => Err(ServeError::BadRequest(format!(
            "recent_ms is {ms}; give milliseconds from 1 to {MAX_RECENT_MS} (a week)"
        ))),
    }
}

#[derive(Deserialize)]
struct RangeQuery {
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<i64>,
}

impl RangeQuery {
    fn bounds(&self) -> (i64, i64, i64) {
        (
            self.from.unwrap_or(i64::MIN),
            self.to.unwrap_or(i64::MAX),
            self.limit.unwrap_or(10_000).clamp(1, 100_000),
        )
    }
}

fn range_query(query: QueryResult<RangeQuery>) -> Result<RangeQuery> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ServeError::BadRequest(format!("{e}; use ?from=MS&to=MS&limit=N")))
}

/// What `GET /api/v1/entities/{entity}/...` returns.
#[derive(Clone, Copy)]
enum EntityData {
    Scores,
    Samples,
}

async fn scores(
    State(engine): AppState,
    headers: HeaderMap,
    Path(entity): Path<String>,
    query: QueryResult<RangeQuery>,
) -> Result<Response> {
    entity_data(&engine, &headers, entity, query, EntityData::Scores).await
}

async fn samples(
    State(engine): AppState,
    headers: HeaderMap,
    Path(entity): Path<String>,
    query: QueryResult<RangeQuery>,
) -> Result<Response> {
    entity_data(&engine, &headers, entity, query, EntityData::Samples).await
}

/// An entity's scored steps or raw samples in a range, with the model's metric names.
async fn entity_data(
    engine: &Engine,
    headers: &HeaderMap,
    entity: String,
    query: QueryResult<RangeQuery>,
    what: EntityData,
) -> Result<Response> {
    let tenant = authorize(&engine.config, headers, Scope::Read)?;
    let (from, to, limit) = range_query(query)?.bounds();
    if !engine.store.entity_exists(&tenant, &entity).await? {
        return Err(unknown_entity(&entity));
    }
    let store = &engine.store;
    let (key, rows) = match what {
        EntityData::Scores => (
            "scores",
            json(store.scores(&tenant, &entity, from, to, limit).await?),
        ),
        EntityData::Samples => (
            "samples",
            json(store.samples(&tenant, &entity, from, to, limit).await?),
        ),
    };
    let model = engine.model();
    let mut body = serde_json::json!({ "entity": entity, "metrics": model.metrics() });
    body[key] = rows;
    Ok(Json(body).into_response())
}

fn json<T: serde::Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).expect("rows encode as JSON")
}

async fn status(State(engine): AppState, headers: HeaderMap) -> Result<Response> {
    authorize(&engine.config, &headers, Scope::Read)?;
    let model = engine.model();
    Ok(Json(serde_json::json!({
        "model": model.name,
        "version": model.version,
        "previous_version": engine.previous_model().map(|m| m.version),
        "detector": model.model.detector.kind(),
        "threshold": model.threshold,
        "metrics": model.metrics(),
        "pending_steps": engine.pending_steps(),
        "last_retrain": engine.last_retrain(),
    }))
    .into_response())
}

async fn reload_model(State(engine): AppState, headers: HeaderMap) -> Result<Response> {
    crate::auth::authorize_admin(&engine.config, &headers)?;
    let swapped = engine.reload(true).await?;
    let model = engine.model();
    Ok(Json(serde_json::json!({
        "model": model.name,
        "version": model.version,
        "previous": swapped.map(|(before, _)| before),
        "swapped": swapped.is_some(),
    }))
    .into_response())
}

async fn retrain_model(State(engine): AppState, headers: HeaderMap) -> Result<Response> {
    crate::auth::authorize_admin(&engine.config, &headers)?;
    // Its own task: a client that gives up does not cut it short between the write and the
    // swap, nor free the turn while its fit still runs.
    let report = tokio::spawn(async move { crate::retrain::retrain(&engine).await })
        .await
        .map_err(|e| ServeError::Config(format!("retraining stopped: {e}")))??;
    Ok(Json(report).into_response())
}

async fn tune_model(
    State(engine): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response> {
    crate::auth::authorize_admin(&engine.config, &headers)?;
    // Its own task, as a retraining is (see `retrain_model`).
    let report = tokio::spawn(async move { crate::tune::tune(&engine, &name).await })
        .await
        .map_err(|e| ServeError::Config(format!("tuning stopped: {e}")))??;
    Ok(Json(report).into_response())
}

async fn rollback_model(
    State(engine): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response> {
    crate::auth::authorize_admin(&engine.config, &headers)?;
    let (from, to) = engine.rollback(&name).await?;
    Ok(Json(serde_json::json!({ "model": name, "version": to, "previous": from })).into_response())
}

async fn metrics(State(engine): AppState, headers: HeaderMap) -> Result<Response> {
    let tenants = crate::auth::visible_tenants(&engine.config, &headers)?;
    Ok((
        [(header::CONTENT_TYPE, crate::exposition::CONTENT_TYPE)],
        engine.exposition.render(tenants.as_deref()),
    )
        .into_response())
}
