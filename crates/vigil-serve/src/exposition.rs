//! `/metrics`: every entity's `anomaly_score` (1.0 is the alarm boundary) and each metric's
//! part of its score, as Prometheus series that keep the input's labels and add `for` (the
//! model) and `tenant`; and the service's own health. Encoded by the Prometheus organisation's
//! `prometheus-client` (OpenMetrics text). A caller sees the scores of the tenants its token
//! may act for only, so each scrape registers the newest scores it may see afresh.

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

pub type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// An entity's newest step as published: `anomaly_score` and each metric's contribution.
struct Published {
    anomaly_score: f64,
    contributions: Vec<(String, f64)>,
}

pub struct Exposition {
    /// The service's health, the same for every caller.
    registry: Registry,
    /// tenant -> the output labels of an entity -> its newest step.
    scores: Mutex<HashMap<String, HashMap<Labels, Published>>>,
    pub ingested_samples: Family<Labels, Counter>,
    pub ingest_requests: Family<Labels, Counter>,
    pub ignored_samples: Counter,
    pub pending_steps: Gauge,
    pub scored_steps: Counter,
    pub alarms: Counter,
    pub dropped_steps: Counter,
    pub scoring_errors: Counter,
    pub model_version: Gauge,
    pub pushed_steps: Family<Labels, Counter>,
    pub push_errors: Family<Labels, Counter>,
    pub push_dropped: Family<Labels, Counter>,
    pub model_load_errors: Counter,
    pub retrains: Family<Labels, Counter>,
    pub tunes: Family<Labels, Counter>,
    pub scoring_latency: Histogram,
    pub store_latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for Exposition {
    fn default() -> Self {
        Self::new()
    }
}

impl Exposition {
    pub fn new() -> Exposition {
        let mut registry = Registry::default();
        let exposition = Exposition {
            scores: Mutex::new(HashMap::new()),
            ingested_samples: Family::default(),
            ingest_requests: Family::default(),
            ignored_samples: Counter::default(),
            pending_steps: Gauge::default(),
            scored_steps: Counter::default(),
            alarms: Counter::default(),
            dropped_steps: Counter::default(),
            scoring_errors: Counter::default(),
            model_version: Gauge::default(),
            pushed_steps: Family::default(),
            push_errors: Family::default(),
            push_dropped: Family::default(),
            model_load_errors: Counter::default(),
            retrains: Family::default(),
            tunes: Family::default(),
            scoring_latency: latency_histogram(),
            store_latency: Family::new_with_constructor(latency_histogram),
            registry: Registry::default(),
        };
        registry.register(
            "vigil_ingested_samples",
            "Samples kept, by ingest format",
            exposition.ingested_samples.clone(),
        );
        registry.register(
            "vigil_ingest_requests",
            "Ingest requests, by format and HTTP status",
            exposition.ingest_requests.clone(),
        );
        registry.register(
            "vigil_ignored_samples",
            "Samples of series naming no entity or none of the model's metrics, and staleness markers",
            exposition.ignored_samples.clone(),
        );
        registry.register(
            "vigil_pending_steps",
            "Steps arrived and waiting to be scored (the scoring queue's depth)",
            exposition.pending_steps.clone(),
        );
        registry.register(
            "vigil_scored_steps",
            "Steps scored and stored",
            exposition.scored_steps.clone(),
        );
        registry.register("vigil_alarms", "Steps alarmed", exposition.alarms.clone());
        registry.register(
            "vigil_dropped_steps",
            "Steps not scored: a metric was missing and had no earlier value to fill it",
            exposition.dropped_steps.clone(),
        );
        registry.register(
            "vigil_scoring_errors",
            "Claims the model could not score (the log says why)",
            exposition.scoring_errors.clone(),
        );
        registry.register(
            "vigil_model_version",
            "The version of the model in service",
            exposition.model_version.clone(),
        );
        registry.register(
            "vigil_retrains",
            "Scheduled or requested retrainings, by outcome (ok, refused: too little data or a model that cannot train, failed)",
            exposition.retrains.clone(),
        );
        registry.register(
            "vigil_tunes",
            "Tunings from feedback, by outcome (ok, worse: not served, refused, failed)",
            exposition.tunes.clone(),
        );
        registry.register(
            "vigil_pushed_steps",
            "Scored steps pushed, by destination",
            exposition.pushed_steps.clone(),
        );
        registry.register(
            "vigil_push_errors",
            "Pushes a destination did not accept (retried, or dropped on a 4xx)",
            exposition.push_errors.clone(),
        );
        registry.register(
            "vigil_push_dropped",
            "Updates dropped because a destination's queue was full",
            exposition.push_dropped.clone(),
        );
        registry.register(
            "vigil_model_load_errors",
            "New model versions that could not be served (the serving one stayed)",
            exposition.model_load_errors.clone(),
        );
        registry.register(
            "vigil_scoring_latency_seconds",
            "From a step's first sample arriving to its score being stored",
            exposition.scoring_latency.clone(),
        );
        registry.register(
            "vigil_store_latency_seconds",
            "Store calls' durations, by call",
            exposition.store_latency.clone(),
        );
        Exposition {
            registry,
            ..exposition
        }
    }

    /// Publishes an entity's newest step: `labels` are its output labels (with `tenant`).
    pub fn set_score(
        &self,
        tenant: &str,
        labels: Labels,
        anomaly_score: f64,
        contributions: Vec<(String, f64)>,
    ) {
        self.scores
            .lock()
            .expect("scores lock")
            .entry(tenant.to_string())
            .or_default()
            .insert(
                labels,
                Published {
                    anomaly_score,
                    contributions,
                },
            );
    }

    /// The OpenMetrics text: the scores of `tenants`, and the service's health (every tenant's
    /// traffic together, so only for a caller that may see every tenant: `None`).
    pub fn render(&self, tenants: Option<&[String]>) -> String {
        // The scores are written straight as text: building prometheus-client families of
        // every entity on each scrape took seconds at 10,000 entities (39 series each), while
        // holding the lock the scorer publishes through (measured by bench/serve.sh).
        let mut scores = String::new();
        let mut parts = String::new();
        for (tenant, entities) in self.scores.lock().expect("scores lock").iter() {
            if tenants.is_some_and(|allowed| !allowed.contains(tenant)) {
                continue;
            }
            for (labels, published) in entities {
                let labels = label_text(labels);
                let _ = writeln!(
                    scores,
                    "anomaly_score{{{labels}}} {}",
                    value_text(published.anomaly_score)
                );
                for (metric, part) in &published.contributions {
                    let _ = writeln!(
                        parts,
                        "anomaly_score_contribution{{{labels},metric=\"{}\"}} {}",
                        escape(metric),
                        value_text(*part)
                    );
                }
            }
        }
        let mut text = String::with_capacity(scores.len() + parts.len() + 4096);
        text.push_str("# HELP anomaly_score The newest step's score over its threshold: 1.0 and above is an alarm.\n");
        text.push_str("# TYPE anomaly_score gauge\n");
        text.push_str(&scores);
        text.push_str("# HELP anomaly_score_contribution Each metric's part of the newest step's score (before dividing by the threshold).\n");
        text.push_str("# TYPE anomaly_score_contribution gauge\n");
        text.push_str(&parts);
        if tenants.is_none() {
            encode_registry(&mut text, &self.registry).expect("writing to a String cannot fail");
        }
        encode_eof(&mut text).expect("writing to a String cannot fail");
        text
    }
}

/// `name="value",...` with the values escaped.
fn label_text(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A sample value as OpenMetrics spells it.
fn value_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value:?}")
    }
}

/// A label value as the text format spells it: a `"`, `\\` or line break (a metric named
/// `cpu{mode="idle"}`, an input label's value) is escaped, or one entity's labels would make the
/// whole scrape unreadable.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The content type of [`Exposition::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_health_is_for_callers_who_see_every_tenant() {
        let exposition = Exposition::new();
        let labels = vec![("instance".to_string(), "a\"b\\c\nd".to_string())];
        exposition.set_score("t", labels, 2.0, vec![("cpu{mode=\"idle\"}".into(), 1.0)]);
        let all = exposition.render(None);
        assert!(
            all.contains("anomaly_score{instance=\"a\\\"b\\\\c\\nd\"} 2.0"),
            "{all}"
        );
        assert!(all.contains("metric=\"cpu{mode=\\\"idle\\\"}\""), "{all}");
        assert!(all.contains("vigil_pending_steps"));
        let one = exposition.render(Some(&["t".to_string()]));
        assert!(
            one.contains("anomaly_score{") && !one.contains("vigil_pending_steps"),
            "{one}"
        );
        assert!(!exposition
            .render(Some(&["u".to_string()]))
            .contains("anomaly_score{"));
    }
}
