//! The store's schema, versioned: each migration once, in order, recorded in `vigil_migrations`
//! in the same transaction as its statements. Written as SQL for each backend because the two
//! spell a few things differently (an identity column, a blob); sqlx's own migrator would want
//! one folder of files per backend and a compile-time macro or files shipped beside the binary,
//! where these are four strings compiled in.

use super::Backend;
use sqlx::AnyPool;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every table but the ones that differ is written once and shared.
const SHARED_V1: &str = "
CREATE TABLE entities (
    tenant TEXT NOT NULL, entity TEXT NOT NULL, labels TEXT NOT NULL, first_seen BIGINT NOT NULL,
    PRIMARY KEY (tenant, entity));
CREATE TABLE samples (
    tenant TEXT NOT NULL, entity TEXT NOT NULL, ts BIGINT NOT NULL, metric BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, entity, ts, metric));
CREATE TABLE scores (
    tenant TEXT NOT NULL, entity TEXT NOT NULL, ts BIGINT NOT NULL, model TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL, threshold DOUBLE PRECISION NOT NULL,
    anomaly_score DOUBLE PRECISION NOT NULL, alarm BIGINT NOT NULL, filled BIGINT NOT NULL,
    contributions TEXT NOT NULL,
    PRIMARY KEY (tenant, entity, ts));
CREATE TABLE stream_states (
    tenant TEXT NOT NULL, entity TEXT NOT NULL, model TEXT NOT NULL, last_ts BIGINT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tenant, entity));
";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "entities, samples, scores, stream states, feedback",
        sqlite: "
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, entity TEXT NOT NULL,
    start_ts BIGINT NOT NULL, end_ts BIGINT NOT NULL, label TEXT NOT NULL, kind TEXT NOT NULL,
    comment TEXT NOT NULL, author TEXT NOT NULL, received_at BIGINT NOT NULL);
CREATE INDEX feedback_by_entity ON feedback (tenant, entity, id);",
        postgres: "
CREATE TABLE feedback (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT NOT NULL,
    entity TEXT NOT NULL, start_ts BIGINT NOT NULL, end_ts BIGINT NOT NULL, label TEXT NOT NULL,
    kind TEXT NOT NULL, comment TEXT NOT NULL, author TEXT NOT NULL, received_at BIGINT NOT NULL);
CREATE INDEX feedback_by_entity ON feedback (tenant, entity, id);",
    },
    Migration {
        version: 2,
        name: "an index of alarmed steps (the overview's recent alarms)",
        // Partial in both: counting an entity's recent alarms reads its alarms, not its steps.
        sqlite: ALARMS_V2,
        postgres: ALARMS_V2,
    },
];

const ALARMS_V2: &str = "CREATE INDEX scores_alarms ON scores (tenant, entity, ts) WHERE alarm = 1";

fn statements(backend: Backend, migration: &Migration) -> Vec<String> {
    let own = match backend {
        Backend::Sqlite => migration.sqlite,
        Backend::Postgres => migration.postgres,
    };
    let shared = if migration.version == 1 {
        SHARED_V1
    } else {
        ""
    };
    [shared, own]
        .iter()
        .flat_map(|sql| sql.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Applies the migrations the store has not had. A store written by a newer vigil (a version
/// this one does not know) is refused rather than used half-understood.
pub async fn migrate(pool: &AnyPool, backend: Backend) -> Result<Vec<i64>, String> {
    let fail = |e: sqlx::Error| e.to_string();
    let mut tx = pool.begin().await.map_err(fail)?;
    // Two instances starting at once on one PostgreSQL: one migrates, the other waits for it
    // (a lock held until the transaction ends; its number is vigil's own).
    if backend == Backend::Postgres {
        sqlx::query(
            "SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock(7264455700)) AS locked",
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS vigil_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
    )
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    let done: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM vigil_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await
            .map_err(fail)?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(newer) = done.iter().find(|v| **v > known) {
        return Err(format!(
            "the store has schema version {newer}, written by a newer vigil (this one knows up \
             to {known}); use that vigil or another store"
        ));
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        for statement in statements(backend, migration) {
            sqlx::query(&statement)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    format!("migration {} ({}): {e}", migration.version, migration.name)
                })?;
        }
        sqlx::query("INSERT INTO vigil_migrations (version, name) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        applied.push(migration.version);
    }
    tx.commit().await.map_err(fail)?;
    Ok(applied)
}
