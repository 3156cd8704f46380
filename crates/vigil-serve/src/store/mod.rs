//! The durable store: entities, raw samples, scores and alarms, each stream's threshold state,
//! and feedback, every table keyed by tenant. One async SQL layer (sqlx's `Any` driver with
//! runtime queries, so that building vigil needs no database) over SQLite in WAL mode (the
//! default: one file, nothing to install) or PostgreSQL (several instances on one database).
//! Every write that a request acknowledges is one committed transaction.

mod migrations;

pub use migrations::MIGRATIONS;

use crate::error::{Result, ServeError};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Rows per multi-row INSERT: 1000 rows of at most 10 values stay under both backends' limit
/// on bound parameters (SQLite 32766, PostgreSQL 65535).
const ROWS_PER_INSERT: usize = 1000;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Seconds each kind of store call took (`vigil_store_latency_seconds`).
    observe: Option<std::sync::Arc<dyn Fn(&'static str, f64) + Send + Sync>>,
}

/// A sample to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub entity: String,
    pub ts: i64,
    pub metric: i64,
    pub value: f64,
}

/// One scored step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScoreRow {
    pub entity: String,
    pub ts: i64,
    /// `name@version` of the model that scored it.
    pub model: String,
    pub score: f64,
    pub threshold: f64,
    /// score / threshold: 1.0 is the alarm boundary.
    pub anomaly_score: f64,
    pub alarm: bool,
    /// How many of the step's metrics were missing and filled with their last value.
    pub filled: i64,
    /// Each metric's part of the score, in the model's metric order.
    pub contributions: Vec<f32>,
}

/// What a stream carries between steps, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedStream {
    pub tenant: String,
    pub entity: String,
    pub model: String,
    pub last_ts: i64,
    /// JSON of [`crate::engine::StreamMemory`].
    pub state: String,
}

/// An entity and the labels its output series carry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EntityRow {
    pub entity: String,
    pub labels: Vec<(String, String)>,
    pub first_seen: i64,
    /// Its newest scored step, if any: (ts, anomaly_score, alarm).
    pub latest: Option<(i64, f64, bool)>,
    /// Alarmed steps in the `recent_ms` before its newest step (data time).
    pub recent_alarms: i64,
    /// The newest of those, if any.
    pub last_alarm: Option<i64>,
}

/// Feedback as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeedbackRow {
    pub id: i64,
    pub entity: String,
    pub start: i64,
    pub end: i64,
    pub label: String,
    pub kind: String,
    pub comment: String,
    pub author: String,
    pub received_at: i64,
}

impl Store {
    /// Opens (creating a SQLite file if missing) and migrates the store at `url`.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(ServeError::Config(
                    "store: `sqlite://` needs a file name".into(),
                ));
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("{url}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(ServeError::Config(format!(
                "store `{url}` is neither `sqlite://FILE` nor `postgres://...`"
            )));
        };
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time whatever the pool; readers run beside it in WAL.
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // FULL: a commit is on disk before the request is answered, so an
                        // acknowledged write survives a power cut, not only a killed process.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| {
                ServeError::Config(format!("store: cannot open `{}`: {e}", redact(&url)))
            })?;
        migrations::migrate(&pool, backend)
            .await
            .map_err(|e| ServeError::Config(format!("store: {e}")))?;
        Ok(Store {
            pool,
            backend,
            observe: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Reports each call's duration to `observe` (the service's store-latency histogram).
    pub fn observed_by(
        mut self,
        observe: std::sync::Arc<dyn Fn(&'static str, f64) + Send + Sync>,
    ) -> Store {
        self.observe = Some(observe);
        self
    }

    fn timed(&self, op: &'static str, started: Instant) {
        if let Some(observe) = &self.observe {
            observe(op, started.elapsed().as_secs_f64());
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Keeps new entities (the first labels seen win) and samples, in one transaction.
    pub async fn write_samples(
        &self,
        tenant: &str,
        entities: &[(String, Vec<(String, String)>)],
        samples: &[SampleRow],
        now_ms: i64,
    ) -> Result<()> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        for (entity, labels) in entities {
            sqlx::query(
                "INSERT INTO entities (tenant, entity, labels, first_seen) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, entity) DO NOTHING",
            )
            .bind(tenant)
            .bind(entity)
            .bind(serde_json::to_string(labels).expect("labels encode"))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in samples.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                self.backend,
                "INSERT INTO samples (tenant, entity, ts, metric, value) VALUES ",
                5,
                chunk.len(),
                " ON CONFLICT (tenant, entity, ts, metric) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for s in chunk {
                query = query
                    .bind(tenant)
                    .bind(&s.entity)
                    .bind(s.ts)
                    .bind(s.metric)
                    .bind(s.value);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.timed("write_samples", started);
        Ok(())
    }

    /// The stored value of one metric of an entity at `ts`, if any.
    pub async fn sample_value(
        &self,
        tenant: &str,
        entity: &str,
        ts: i64,
        metric: i64,
    ) -> Result<Option<f64>> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM samples WHERE tenant = $1 AND entity = $2 AND ts = $3 AND metric = $4",
        )
        .bind(tenant)
        .bind(entity)
        .bind(ts)
        .bind(metric)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The tenant's newest stored sample's time, if any (where a restarted pull goes on from).
    pub async fn newest_sample_ts(&self, tenant: &str) -> Result<Option<i64>> {
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT CAST(MAX(ts) AS BIGINT) FROM samples WHERE tenant = $1")
                .bind(tenant)
                .fetch_one(&self.pool)
                .await?;
        Ok(newest)
    }

    /// Every stored sample not yet scored (after its stream's last scored step), by tenant,
    /// entity and time: what a restarted service scores first.
    pub async fn unscored_samples(&self) -> Result<Vec<(String, SampleRow)>> {
        let rows = sqlx::query(
            "SELECT s.tenant, s.entity, s.ts, s.metric, s.value FROM samples s \
             LEFT JOIN stream_states st ON st.tenant = s.tenant AND st.entity = s.entity \
             WHERE st.last_ts IS NULL OR s.ts > st.last_ts \
             ORDER BY s.tenant, s.entity, s.ts, s.metric",
        )
        .fetch_all(&self.pool)
        .await?;
        decoded(&rows, |r| {
            Ok((
                r.try_get("tenant")?,
                SampleRow {
                    entity: r.try_get("entity")?,
                    ts: r.try_get("ts")?,
                    metric: r.try_get("metric")?,
                    value: r.try_get("value")?,
                },
            ))
        })
    }

    /// Every stream's saved state (what a restarted service continues from).
    pub async fn stream_states(&self) -> Result<Vec<SavedStream>> {
        let rows = sqlx::query("SELECT tenant, entity, model, last_ts, state FROM stream_states")
            .fetch_all(&self.pool)
            .await?;
        decoded(&rows, |r| {
            Ok(SavedStream {
                tenant: r.try_get("tenant")?,
                entity: r.try_get("entity")?,
                model: r.try_get("model")?,
                last_ts: r.try_get("last_ts")?,
                state: r.try_get("state")?,
            })
        })
    }

    /// Every stream's (tenant, entity, newest scored step), without its state.
    pub async fn stream_heads(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query("SELECT tenant, entity, last_ts FROM stream_states")
            .fetch_all(&self.pool)
            .await?;
        decoded(&rows, |r| {
            Ok((
                r.try_get("tenant")?,
                r.try_get("entity")?,
                r.try_get("last_ts")?,
            ))
        })
    }

    /// The times of an entity's alarmed steps in `[from, to]` (from the index of alarms).
    pub async fn alarmed_steps(
        &self,
        tenant: &str,
        entity: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT ts FROM scores WHERE tenant = $1 AND entity = $2 AND ts >= $3 AND ts <= $4 \
             AND alarm = 1",
        )
        .bind(tenant)
        .bind(entity)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        decoded(&rows, |r| r.try_get("ts"))
    }

    /// Every tenant's entities with their labels (for the output series after a restart).
    pub async fn all_entities(&self) -> Result<Vec<(String, String, Vec<(String, String)>)>> {
        let rows = sqlx::query("SELECT tenant, entity, labels FROM entities")
            .fetch_all(&self.pool)
            .await?;
        decoded(&rows, |r| {
            let labels: String = r.try_get("labels")?;
            Ok((
                r.try_get("tenant")?,
                r.try_get("entity")?,
                serde_json::from_str(&labels).unwrap_or_default(),
            ))
        })
    }

    /// Keeps scored steps and the states they leave their streams in, in one transaction: after
    /// a crash a stream resumes from its last kept step with the state of that step.
    pub async fn save_scored(
        &self,
        tenant_rows: &[(String, ScoreRow)],
        states: &[SavedStream],
    ) -> Result<()> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        for chunk in tenant_rows.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                self.backend,
                "INSERT INTO scores (tenant, entity, ts, model, score, threshold, anomaly_score, \
                 alarm, filled, contributions) VALUES ",
                10,
                chunk.len(),
                " ON CONFLICT (tenant, entity, ts) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for (tenant, r) in chunk {
                query = query
                    .bind(tenant)
                    .bind(&r.entity)
                    .bind(r.ts)
                    .bind(&r.model)
                    .bind(r.score)
                    .bind(r.threshold)
                    .bind(r.anomaly_score)
                    .bind(i64::from(r.alarm))
                    .bind(r.filled)
                    .bind(serde_json::to_string(&r.contributions).expect("numbers encode"));
            }
            query.execute(&mut *tx).await?;
        }
        for s in states {
            sqlx::query(
                "INSERT INTO stream_states (tenant, entity, model, last_ts, state) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, entity) DO UPDATE SET \
                 model = excluded.model, last_ts = excluded.last_ts, state = excluded.state",
            )
            .bind(&s.tenant)
            .bind(&s.entity)
            .bind(&s.model)
            .bind(s.last_ts)
            .bind(&s.state)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.timed("save_scored", started);
        Ok(())
    }

    /// An entity's scored steps in `[from, to]`, oldest first, at most `limit`.
    pub async fn scores(
        &self,
        tenant: &str,
        entity: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<ScoreRow>> {
        let rows = sqlx::query(
            "SELECT entity, ts, model, score, threshold, anomaly_score, alarm, filled, contributions \
             FROM scores WHERE tenant = $1 AND entity = $2 AND ts >= $3 AND ts <= $4 \
             ORDER BY ts LIMIT $5",
        )
        .bind(tenant)
        .bind(entity)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        decoded(&rows, |r| {
            let contributions: String = r.try_get("contributions")?;
            Ok(ScoreRow {
                entity: r.try_get("entity")?,
                ts: r.try_get("ts")?,
                model: r.try_get("model")?,
                score: r.try_get("score")?,
                threshold: r.try_get("threshold")?,
                anomaly_score: r.try_get("anomaly_score")?,
                alarm: r.try_get::<i64, _>("alarm")? != 0,
                filled: r.try_get("filled")?,
                contributions: serde_json::from_str(&contributions).unwrap_or_default(),
            })
        })
    }

    /// An entity's raw samples in `[from, to]` as (ts, metric, value), oldest first; the
    /// first `limit` of them.
    pub async fn samples(
        &self,
        tenant: &str,
        entity: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64, f64)>> {
        self.samples_ordered(tenant, entity, from, to, limit, "ASC")
            .await
    }

    /// [`Store::samples`], but the last `limit` of them (still oldest first).
    pub async fn newest_samples(
        &self,
        tenant: &str,
        entity: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64, f64)>> {
        let mut rows = self
            .samples_ordered(tenant, entity, from, to, limit, "DESC")
            .await?;
        rows.reverse();
        Ok(rows)
    }

    async fn samples_ordered(
        &self,
        tenant: &str,
        entity: &str,
        from: i64,
        to: i64,
        limit: i64,
        order: &'static str,
    ) -> Result<Vec<(i64, i64, f64)>> {
        let sql = format!(
            "SELECT ts, metric, value FROM samples WHERE tenant = $1 AND entity = $2 AND ts >= $3 \
             AND ts <= $4 ORDER BY ts {order}, metric {order} LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant)
            .bind(entity)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        decoded(&rows, |r| {
            Ok((r.try_get("ts")?, r.try_get("metric")?, r.try_get("value")?))
        })
    }

    /// The tenant's entities (or only `only`), sorted by name, with their newest score and their
    /// alarmed steps in the `recent_ms` before it (read from the partial index of alarms: the
    /// cost is the alarms in the window, not the steps).
    pub async fn entities(
        &self,
        tenant: &str,
        recent_ms: i64,
        only: Option<&str>,
    ) -> Result<Vec<EntityRow>> {
        let filter = if only.is_some() {
            "AND e.entity = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT e.entity, e.labels, e.first_seen, sc.ts, sc.anomaly_score, sc.alarm, \
               (SELECT COUNT(*) FROM scores a WHERE a.tenant = e.tenant AND a.entity = e.entity \
                  AND a.ts > st.last_ts - $2 AND a.ts <= st.last_ts AND a.alarm = 1) AS recent_alarms, \
               (SELECT MAX(a.ts) FROM scores a WHERE a.tenant = e.tenant AND a.entity = e.entity \
                  AND a.ts > st.last_ts - $2 AND a.ts <= st.last_ts AND a.alarm = 1) AS last_alarm \
             FROM entities e \
             LEFT JOIN stream_states st ON st.tenant = e.tenant AND st.entity = e.entity \
             LEFT JOIN scores sc ON sc.tenant = e.tenant AND sc.entity = e.entity AND sc.ts = st.last_ts \
             WHERE e.tenant = $1 {filter} ORDER BY e.entity"
        );
        let mut query = sqlx::query(&sql).bind(tenant).bind(recent_ms);
        if let Some(entity) = only {
            query = query.bind(entity);
        }
        let rows = query.fetch_all(&self.pool).await?;
        decoded(&rows, |r| {
            let labels: String = r.try_get("labels")?;
            let ts: Option<i64> = r.try_get("ts")?;
            let latest = match ts {
                Some(ts) => Some((
                    ts,
                    r.try_get::<f64, _>("anomaly_score")?,
                    r.try_get::<i64, _>("alarm")? != 0,
                )),
                None => None,
            };
            Ok(EntityRow {
                entity: r.try_get("entity")?,
                labels: serde_json::from_str(&labels).unwrap_or_default(),
                first_seen: r.try_get("first_seen")?,
                latest,
                recent_alarms: r.try_get("recent_alarms")?,
                last_alarm: r.try_get("last_alarm")?,
            })
        })
    }

    pub async fn entity_exists(&self, tenant: &str, entity: &str) -> Result<bool> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT entity FROM entities WHERE tenant = $1 AND entity = $2")
                .bind(tenant)
                .bind(entity)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Keeps one piece of feedback and returns its id (ids grow: the larger, the later).
    pub async fn add_feedback(&self, tenant: &str, row: &FeedbackRow) -> Result<i64> {
        let started = Instant::now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO feedback (tenant, entity, start_ts, end_ts, label, kind, comment, author, \
             received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING CAST(id AS BIGINT)",
        )
        .bind(tenant)
        .bind(&row.entity)
        .bind(row.start)
        .bind(row.end)
        .bind(&row.label)
        .bind(&row.kind)
        .bind(&row.comment)
        .bind(&row.author)
        .bind(row.received_at)
        .fetch_one(&self.pool)
        .await?;
        self.timed("add_feedback", started);
        Ok(id)
    }

    /// Every (tenant, entity) with feedback.
    pub async fn feedback_entities(&self) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT DISTINCT tenant, entity FROM feedback ORDER BY tenant, entity")
                .fetch_all(&self.pool)
                .await?;
        decoded(&rows, |r| Ok((r.try_get("tenant")?, r.try_get("entity")?)))
    }

    /// The newest feedback id, 0 when there is none (ids grow: new feedback has a larger one).
    pub async fn newest_feedback_id(&self) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT CAST(MAX(id) AS BIGINT) FROM feedback")
            .fetch_one(&self.pool)
            .await?;
        Ok(id.unwrap_or(0))
    }

    /// An entity's feedback history, oldest first.
    pub async fn feedback(&self, tenant: &str, entity: &str) -> Result<Vec<FeedbackRow>> {
        let rows = sqlx::query(
            "SELECT CAST(id AS BIGINT) AS id, entity, start_ts, end_ts, label, kind, comment, \
             author, received_at FROM feedback WHERE tenant = $1 AND entity = $2 ORDER BY id",
        )
        .bind(tenant)
        .bind(entity)
        .fetch_all(&self.pool)
        .await?;
        decoded(&rows, |r| {
            Ok(FeedbackRow {
                id: r.try_get("id")?,
                entity: r.try_get("entity")?,
                start: r.try_get("start_ts")?,
                end: r.try_get("end_ts")?,
                label: r.try_get("label")?,
                kind: r.try_get("kind")?,
                comment: r.try_get("comment")?,
                author: r.try_get("author")?,
                received_at: r.try_get("received_at")?,
            })
        })
    }
}

/// Each row through `decode`; the first column that does not decode fails them all.
fn decoded<T>(
    rows: &[sqlx::any::AnyRow],
    decode: impl Fn(&sqlx::any::AnyRow) -> std::result::Result<T, sqlx::Error>,
) -> Result<Vec<T>> {
    rows.iter()
        .map(decode)
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// `head ($1, …, $k), ($k+1, …), … tail` for `rows` rows of `k` values; for SQLite `?` in
/// place of each `$N`: sqlx binds a named parameter by asking SQLite each parameter's name,
/// a walk of the statement's parameter list, so 5,000 `$N` cost 5,000² steps (measured: two
/// thirds of the service's time under load went there).
fn insert_sql(backend: Backend, head: &str, k: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * k * 5 + tail.len());
    sql.push_str(head);
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..k {
            if col > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * k + col + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// A store URL without its password, for messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_in_order_and_passwords_are_hidden() {
        assert_eq!(
            insert_sql(Backend::Postgres, "I ", 2, 2, " T"),
            "I ($1,$2),($3,$4) T"
        );
        assert_eq!(
            insert_sql(Backend::Sqlite, "I ", 2, 2, " T"),
            "I (?,?),(?,?) T"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }
}
