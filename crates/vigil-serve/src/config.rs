//! `vigil serve`'s settings: a TOML file, every key optional (`docs/serve.md` lists them).

use crate::error::ServeError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use vigil_core::threshold::ThresholdMethod;

/// The service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: String,
    /// The durable store: `sqlite://FILE` (WAL mode, created if missing) or `postgres://...`.
    pub store: String,
    /// The model store: a folder of `NAME/VERSION/` model directories (`vigil train --model`
    /// writes one such directory; `vigil serve` serves the newest version of `model`).
    pub models: PathBuf,
    /// The name of the model every entity is scored with.
    pub model: String,
    /// The threshold rule, by name (`auto`, `spot`, `dspot`, `pot`, `quantile`) or as a table
    /// (`{ method = "spot", q = 1e-3, level = 0.98 }`). Default: the rule stored with the model
    /// at training, else `auto`.
    pub threshold: Option<ThresholdSetting>,
    /// How often (seconds) the model store is checked for a newer version of `model`, which
    /// then takes over between two steps (0: only on `POST /api/v1/models/reload`).
    pub model_poll_s: u64,
    /// How series map to entities and metrics.
    pub labels: LabelRules,
    /// How long (in the data's own time, milliseconds) a step waits for its late metrics once a
    /// later step of the entity has arrived; then it is scored, what is missing filled with the
    /// metric's last value.
    pub grace_ms: i64,
    pub limits: Limits,
    /// Push alarms straight to an Alertmanager (beside the rule route through `/metrics`).
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Push every scored step by remote-write (with its own timestamp).
    pub remote_write_out: Option<RemoteWriteOutConfig>,
    /// Pull from Prometheus-compatible `query_range` APIs on a schedule.
    pub pull: Vec<PullConfig>,
    /// This instance's share of the entities, when several share one PostgreSQL store.
    pub shard: Option<crate::shard::ShardConfig>,
    /// Bearer tokens; none means no authentication (only on loopback: see `docs/serve.md`).
    pub tokens: Vec<Token>,
    /// Scheduled retraining of the model on recent data.
    pub retrain: Option<RetrainConfig>,
    /// Tuning the model from operators' feedback (`POST /api/v1/models/{name}/tune` works
    /// without it, with these defaults).
    pub tune: Option<TuneConfig>,
}

/// The feedback loop (`crate::tune`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuneConfig {
    /// Tune once this many pieces of feedback have come in since the last tuning (0: only on
    /// request).
    pub after_feedback: usize,
    /// How often (seconds) new feedback is counted.
    pub check_every_s: u64,
    /// The share of the feedback held back to check the tuned model (every `1/share`-th piece).
    pub check_share: f64,
    /// Epochs of fine-tuning (default: the detector's).
    pub epochs: Option<usize>,
    /// The most steps of one piece of feedback tuned on (its newest).
    pub max_piece_steps: usize,
    /// Recent steps of the fleet tuned on beside the feedback (as a retraining gathers them:
    /// alarms and marked ranges labelled): they keep the model and the threshold it is
    /// calibrated with on the fleet's normal, not on the marked ranges alone. 0: none.
    pub normal_steps: usize,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            after_feedback: 0,
            check_every_s: 30,
            check_share: 0.2,
            epochs: None,
            max_piece_steps: 10_000,
            normal_steps: 2_000,
        }
    }
}

/// Scheduled retraining (`crate::retrain`): vmanomaly's `fit_every` and `fit_window`, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrainConfig {
    /// How often the model is trained again (wall-clock seconds; the first after one period).
    pub fit_every_s: u64,
    /// How much data before each entity's newest scored step it is trained on (data time).
    pub fit_window_s: u64,
    pub method: RetrainMethod,
    /// At most this many steps over the fleet, an equal share each (at least 256 steps: a larger
    /// fleet gives a sample of its entities, drawn anew each time).
    pub max_steps: usize,
    /// Fewer steps than this (after leaving out alarms, anomalies and maintenance): no new
    /// version.
    pub min_steps: usize,
}

impl Default for RetrainConfig {
    fn default() -> Self {
        RetrainConfig {
            fit_every_s: 86_400,
            fit_window_s: 7 * 86_400,
            method: RetrainMethod::Fresh,
            max_steps: 50_000,
            min_steps: 1_000,
        }
    }
}

/// How a retraining learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrainMethod {
    /// A new model of the same detector and settings, fitted on the window (as vmanomaly does).
    Fresh,
    /// The model in service continued on the window from its weights (neural detectors only).
    FineTune,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:9470".into(),
            store: "sqlite://vigil-serve.db".into(),
            models: PathBuf::from("models"),
            model: "default".into(),
            threshold: None,
            model_poll_s: 30,
            labels: LabelRules::default(),
            grace_ms: 30_000,
            limits: Limits::default(),
            alertmanager: None,
            remote_write_out: None,
            pull: Vec::new(),
            shard: None,
            tokens: Vec::new(),
            retrain: None,
            tune: None,
        }
    }
}

/// A threshold rule by name or in full.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ThresholdSetting {
    Name(String),
    Rule(ThresholdMethod),
}

impl ThresholdSetting {
    pub fn method(&self) -> Result<ThresholdMethod, ServeError> {
        let method = match self {
            ThresholdSetting::Name(name) => name
                .parse::<ThresholdMethod>()
                .map_err(|e| ServeError::Config(format!("threshold: {e}")))?,
            ThresholdSetting::Rule(rule) => *rule,
        };
        // A service judges each step as it comes: rules that need the whole series cannot. Tried
        // on a made-up calibration, which also checks the rule's parameters.
        let calibration: Vec<f64> = (0..1000).map(|i| f64::from(i % 97)).collect();
        let mut probe = None;
        vigil_core::threshold::decide_stream(method, &calibration, &[], &mut probe)
            .map(|_| method)
            .map_err(|e| ServeError::Config(format!("threshold: {e}")))
    }
}

/// Which labels name an entity and a metric.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LabelRules {
    /// The label whose value is the entity (default `instance`).
    pub entity: String,
    /// Labels that are part of a metric's name beside `__name__`: with `["mode"]`,
    /// `cpu{mode="idle"}` and `cpu{mode="user"}` are two metrics, named so in the model.
    pub metric_labels: Vec<String>,
}

impl Default for LabelRules {
    fn default() -> Self {
        LabelRules {
            entity: "instance".into(),
            metric_labels: Vec::new(),
        }
    }
}

/// What bounds the service's memory and requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body in bytes (413 above).
    pub body_bytes: usize,
    /// Largest remote-write body once decompressed (413 above).
    pub decoded_bytes: usize,
    /// Most steps waiting to be scored across all entities; ingest answers 429 above it.
    pub pending_steps: usize,
    /// Most ingest requests waiting for their turn; 429 above it.
    pub waiting_requests: usize,
    /// Seconds a 429 asks the sender to wait (`Retry-After`).
    pub retry_after_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 16 << 20,
            decoded_bytes: 128 << 20,
            pending_steps: 1_000_000,
            waiting_requests: 64,
            retry_after_s: 5,
        }
    }
}

/// Where and how alarms are pushed to Alertmanager.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    /// The alerts' `alertname` label.
    #[serde(default = "default_alertname")]
    pub alertname: String,
    /// Seconds between re-sends of the alerts still active.
    #[serde(default = "default_resend_s")]
    pub resend_s: u64,
    /// vigil's own address as operators reach it, for the alerts' `generatorURL`.
    #[serde(default)]
    pub external_url: Option<String>,
}

fn default_alertname() -> String {
    "VigilAlarm".into()
}

fn default_resend_s() -> u64 {
    60
}

/// Where scored steps are remote-written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteOutConfig {
    /// The receiver's URL, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub url: String,
    /// Labels added to every pushed series (as Prometheus' `external_labels`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A `query_range` source pulled on a schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Model metric -> PromQL expression; each result series is that metric of the entity its
    /// labels name.
    pub queries: std::collections::BTreeMap<String, String>,
    /// The range queries' step (seconds).
    #[serde(default = "default_pull_step_s")]
    pub step_s: u64,
    /// Seconds between pulls.
    #[serde(default = "default_pull_step_s")]
    pub every_s: u64,
    /// Seconds to stay behind now, for samples the server has not yet got (a scrape interval
    /// or more: a point pulled before all its samples are in is not asked for again).
    #[serde(default = "default_lag_s")]
    pub lag_s: u64,
    /// How far back the first pull reaches (seconds).
    #[serde(default = "default_backfill_s")]
    pub backfill_s: u64,
    /// Most points per series per request (Prometheus refuses more than 11,000).
    #[serde(default = "default_max_points")]
    pub max_points: u64,
    /// The tenant the pulled data belongs to.
    #[serde(default = "default_pull_tenant")]
    pub tenant: String,
}

fn default_pull_step_s() -> u64 {
    60
}

fn default_lag_s() -> u64 {
    60
}

fn default_backfill_s() -> u64 {
    3600
}

fn default_max_points() -> u64 {
    11_000
}

fn default_pull_tenant() -> String {
    "default".into()
}

/// A bearer token and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub token: String,
    /// `read` (queries, /metrics), `write` (ingest, feedback), or both.
    pub scopes: Vec<Scope>,
    /// The tenants it may act for; empty means every tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl ServeConfig {
    /// Reads `path`, naming the file and the key that is wrong.
    pub fn from_file(path: &Path) -> Result<ServeConfig, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Config(format!("{}: cannot be read ({e})", path.display())))?;
        let config: ServeConfig = toml::from_str(&text)
            .map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what TOML's types cannot.
    pub fn validate(&self) -> Result<(), ServeError> {
        let bad = |m: String| Err(ServeError::Config(m));
        if self.grace_ms < 0 {
            return bad(format!("grace_ms must be 0 or more, not {}", self.grace_ms));
        }
        if self.limits.body_bytes < 1024
            || self.limits.pending_steps == 0
            || self.limits.waiting_requests == 0
        {
            return bad("limits: body_bytes must be at least 1024, pending_steps and waiting_requests at least 1".into());
        }
        if self.labels.entity.is_empty() {
            return bad("labels.entity must name a label".into());
        }
        if let Some(t) = self.tokens.iter().find(|t| t.token.len() < 16) {
            return bad(format!(
                "a token of {} characters is too easy to guess; use at least 16",
                t.token.len()
            ));
        }
        if let Some(am) = &self.alertmanager {
            crate::outbound::client::check_url("alertmanager.url", &am.url)
                .map_err(ServeError::Config)?;
        }
        if let Some(rw) = &self.remote_write_out {
            crate::outbound::client::check_url("remote_write_out.url", &rw.url)
                .map_err(ServeError::Config)?;
        }
        if let Some(retrain) = &self.retrain {
            let ten_years = 10 * 366 * 86_400;
            if !(1..=ten_years).contains(&retrain.fit_every_s)
                || !(1..=ten_years).contains(&retrain.fit_window_s)
            {
                return bad(format!(
                    "retrain: fit_every_s and fit_window_s must be from 1 to {ten_years} (ten years)"
                ));
            }
            if retrain.min_steps == 0 || retrain.max_steps < retrain.min_steps {
                return bad(format!(
                    "retrain: min_steps ({}) must be at least 1 and at most max_steps ({})",
                    retrain.min_steps, retrain.max_steps
                ));
            }
        }
        if let Some(tune) = &self.tune {
            if !(tune.check_share > 0.0 && tune.check_share <= 0.5)
                || tune.check_every_s == 0
                || tune.max_piece_steps == 0
                || tune.epochs == Some(0)
            {
                return bad(format!(
                    "tune: check_share must be in (0, 0.5] (got {}), check_every_s, \
                     max_piece_steps and epochs at least 1",
                    tune.check_share
                ));
            }
        }
        if let Some(shard) = self.shard {
            if shard.count == 0 || shard.index >= shard.count {
                return bad(format!(
                    "shard: index {} must be below count {} (and count at least 1)",
                    shard.index, shard.count
                ));
            }
        }
        for pull in &self.pull {
            crate::outbound::client::check_url("pull.url", &pull.url)
                .map_err(ServeError::Config)?;
            // Bounds that keep the milliseconds far from overflowing (and no one needs more).
            let year = 366 * 86_400;
            if pull.step_s > year
                || pull.lag_s > year
                || pull.backfill_s > 100 * year
                || pull.every_s > year
            {
                return bad(format!(
                    "pull from {}: step_s, every_s and lag_s are at most a year, backfill_s 100 years",
                    pull.url
                ));
            }
            if pull.queries.is_empty() || pull.step_s == 0 || pull.max_points < 2 {
                return bad(format!(
                    "pull from {}: give at least one query, a step_s of 1 or more and max_points of 2 or more",
                    pull.url
                ));
            }
        }
        if let Some(threshold) = &self.threshold {
            threshold.method()?;
        }
        vigil_models::store::check_model_name(&self.model)
            .map_err(|e| ServeError::Config(format!("model: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_reads_with_defaults_and_a_wrong_key_is_named() {
        let config: ServeConfig = toml::from_str(
            "model = \"usad\"\nthreshold = \"spot\"\n[labels]\nmetric_labels = [\"mode\"]\n\
             [[tokens]]\ntoken = \"0123456789abcdef\"\nscopes = [\"read\"]\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.labels.entity, "instance");
        assert_eq!(config.tokens[0].scopes, vec![Scope::Read]);
        let wrong = toml::from_str::<ServeConfig>("grace = 3")
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("unknown field `grace`"), "{wrong}");
        let batch_only = ServeConfig {
            threshold: Some(ThresholdSetting::Name("pot-batch".into())),
            ..ServeConfig::default()
        };
        assert!(batch_only.validate().is_err());
        let table: ServeConfig =
            toml::from_str("threshold = { method = \"spot\", q = 1e-3, level = 0.98 }").unwrap();
        assert!(table.validate().is_ok());
    }
}
