//! Alarms pushed straight to an Alertmanager (`POST /api/v2/alerts`), for operators who want
//! them without a rule (the rule `anomaly_score > 1` on `/metrics` is the main route, as
//! Alertmanager's docs advise). An entity's alert starts at its first alarmed step, is re-sent
//! while the alarm lasts (its `endsAt` a few re-sends ahead, so Alertmanager resolves it by
//! itself if vigil goes away), and is resolved at the first quiet step.

use super::client::HttpClient;
use crate::config::AlertmanagerConfig;
use crate::exposition::{Exposition, Labels};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// An entity's alarm turning on (or still on) or off.
#[derive(Debug, Clone)]
pub struct AlarmChange {
    pub tenant: String,
    pub entity: String,
    /// The entity's output labels (with `for` and `tenant`).
    pub labels: Labels,
    pub alarm: bool,
    /// The step's time (ms).
    pub ts: i64,
    pub anomaly_score: f64,
    /// The metric with the largest part of the score.
    pub top_metric: String,
}

struct Active {
    labels: Labels,
    entity: String,
    starts_at: i64,
    anomaly_score: f64,
    top_metric: String,
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn alert(config: &AlertmanagerConfig, active: &Active, ends_at: i64) -> serde_json::Value {
    let mut labels: serde_json::Map<String, serde_json::Value> = active
        .labels
        .iter()
        .map(|(n, v)| (n.clone(), json!(v)))
        .collect();
    labels.insert("alertname".into(), json!(config.alertname));
    let mut alert = json!({
        "labels": labels,
        "annotations": {
            "summary": format!(
                "{} is anomalous (anomaly_score {:.3}, mostly {})",
                active.entity, active.anomaly_score, active.top_metric
            ),
            "anomaly_score": format!("{}", active.anomaly_score),
            "top_metric": active.top_metric,
        },
        "startsAt": rfc3339(active.starts_at),
        "endsAt": rfc3339(ends_at),
    });
    if let Some(base) = &config.external_url {
        alert["generatorURL"] = json!(format!(
            "{}/api/v1/entities/{}/scores",
            base.trim_end_matches('/'),
            active.entity
        ));
    }
    alert
}

/// Runs until `stop`, then resolves nothing (Alertmanager ends what is not re-sent).
pub async fn run(
    config: AlertmanagerConfig,
    mut changes: mpsc::Receiver<AlarmChange>,
    exposition: Arc<Exposition>,
    mut stop: watch::Receiver<bool>,
) {
    let client = HttpClient::default();
    let url = format!("{}/api/v2/alerts", config.url.trim_end_matches('/'));
    let resend = Duration::from_secs(config.resend_s.max(1));
    let mut active: HashMap<(String, String), Active> = HashMap::new();
    let mut ticker = tokio::time::interval(resend);
    ticker.tick().await;
    loop {
        let mut batch = Vec::new();
        let now = Utc::now().timestamp_millis();
        let ahead = now + 4 * resend.as_millis() as i64;
        tokio::select! {
            change = changes.recv() => {
                let Some(change) = change else { return };
                let key = (change.tenant.clone(), change.entity.clone());
                match (change.alarm, active.contains_key(&key)) {
                    (true, true) => {
                        let a = active.get_mut(&key).expect("checked");
                        a.anomaly_score = change.anomaly_score;
                        a.top_metric = change.top_metric;
                    }
                    (true, false) => {
                        let a = Active {
                            labels: change.labels,
                            entity: change.entity,
                            starts_at: change.ts,
                            anomaly_score: change.anomaly_score,
                            top_metric: change.top_metric,
                        };
                        batch.push(alert(&config, &a, ahead));
                        active.insert(key, a);
                    }
                    (false, true) => {
                        let a = active.remove(&key).expect("checked");
                        batch.push(alert(&config, &a, now));
                    }
                    (false, false) => {}
                }
            }
            _ = ticker.tick() => {
                batch.extend(active.values().map(|a| alert(&config, a, ahead)));
            }
            _ = stop.changed() => return,
        }
        if batch.is_empty() {
            continue;
        }
        let body = serde_json::to_vec(&batch).expect("alerts encode");
        let outcome = client
            .post(
                &url,
                &[("Content-Type", "application/json")],
                body,
                Duration::from_secs(10),
            )
            .await;
        if !matches!(outcome, Ok((200..=299, _))) {
            // The next re-send carries every active alert again.
            exposition
                .push_errors
                .get_or_create(&vec![("to".into(), "alertmanager".into())])
                .inc();
            tracing::warn!(outcome = ?outcome, "alerts not accepted by Alertmanager");
        }
    }
}
