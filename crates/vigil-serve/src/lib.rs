//! vigil's online service (`vigil serve`): metrics stream in (Prometheus remote-write,
//! VictoriaMetrics import), each entity's steps are scored as they complete by the model in
//! service, scores and alarms go out on `/metrics` as `anomaly_score` (1.0 is the alarm
//! boundary) for the rules on-call people already run, and operators' feedback comes back.
//! Everything acknowledged is in a durable store (SQLite or PostgreSQL) first.
//!
//! Layout: `config` (TOML settings), `auth` (tokens, tenants), `ingest/` (formats to points:
//! remote-write, import, CSV, the `query_range` pull), `shard` (instances' shares of entities),
//! `demo` (`vigil serve --demo`),
//! `engine/` (streams, readiness, scoring), `store/` (SQL, migrations), `exposition`
//! (`/metrics`), `outbound/` (alarms to Alertmanager, scores by remote-write), `feedback`, `retrain` (scheduled retraining), `tune` (the feedback loop), `http` (routes), `ui` (the web UI's embedded files, `ui/`),
//! `server` (start, serve, shut down).

pub mod auth;
pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod exposition;
pub mod feedback;
pub mod http;
pub mod ingest;
pub mod outbound;
pub mod retrain;
pub mod server;
pub mod shard;
pub mod store;
pub mod tune;
pub mod ui;

pub use config::ServeConfig;
pub use engine::Engine;
pub use error::{Result, ServeError};
pub use server::{serve, Service};
