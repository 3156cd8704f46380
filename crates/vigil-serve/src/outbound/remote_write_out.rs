//! Scores pushed by Prometheus remote-write to a configured URL (Prometheus with
//! `--web.enable-remote-write-receiver`, VictoriaMetrics, Mimir...), with each step's own
//! timestamp — what a scraped gauge cannot carry. Series: `anomaly_score` and
//! `anomaly_score_contribution{metric}`, with the entity's output labels plus the configured
//! ones. Failed pushes are retried with backoff while the peer answers 5xx or 429 or does not
//! answer (as Prometheus' own sender does); a 4xx drops the batch, counted. The queue is bounded:
//! when the peer is away for long, the oldest scores are dropped (counted) — they stay in the
//! store.

use super::client::HttpClient;
use crate::config::RemoteWriteOutConfig;
use crate::exposition::{Exposition, Labels};
use crate::ingest::{remote_write, Series};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A scored step to push.
#[derive(Debug, Clone)]
pub struct ScoredStep {
    pub labels: Labels,
    pub ts: i64,
    pub anomaly_score: f64,
    /// (metric, contribution).
    pub contributions: Vec<(String, f64)>,
}

/// The series of `steps`, with `extra` labels added.
pub fn to_series(steps: &[ScoredStep], extra: &Labels) -> Vec<Series> {
    let mut series: std::collections::BTreeMap<Labels, Vec<(i64, f64)>> = Default::default();
    for step in steps {
        let mut base: Labels = step.labels.clone();
        base.extend(extra.iter().cloned());
        let mut score = base.clone();
        score.push(("__name__".into(), "anomaly_score".into()));
        score.sort();
        series
            .entry(score)
            .or_default()
            .push((step.ts, step.anomaly_score));
        for (metric, part) in &step.contributions {
            let mut labels = base.clone();
            labels.push(("__name__".into(), "anomaly_score_contribution".into()));
            labels.push(("metric".into(), metric.clone()));
            labels.sort();
            series.entry(labels).or_default().push((step.ts, *part));
        }
    }
    series
        .into_iter()
        .map(|(labels, mut points)| {
            points.sort_by_key(|p| p.0);
            Series { labels, points }
        })
        .collect()
}

/// Steps at most per push.
const MAX_STEPS_PER_PUSH: usize = 2000;

pub async fn run(
    config: RemoteWriteOutConfig,
    mut steps: mpsc::Receiver<ScoredStep>,
    exposition: Arc<Exposition>,
    mut stop: watch::Receiver<bool>,
) {
    let client = HttpClient::default();
    let extra: Labels = config.labels.clone().into_iter().collect();
    let to = vec![("to".to_string(), "remote_write".to_string())];
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            first = steps.recv() => match first {
                Some(step) => batch.push(step),
                None => return,
            },
            _ = stop.changed() => {}
        }
        let stopping = *stop.borrow();
        while batch.len() < MAX_STEPS_PER_PUSH {
            match steps.try_recv() {
                Ok(step) => batch.push(step),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if stopping {
                return;
            }
            continue;
        }
        let body = remote_write::encode(&to_series(&batch, &extra));
        let headers = [
            ("Content-Type", remote_write::CONTENT_TYPE),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ("User-Agent", "vigil"),
        ];
        let mut backoff = Duration::from_millis(100);
        loop {
            match client
                .post(&config.url, &headers, body.clone(), Duration::from_secs(10))
                .await
            {
                Ok((200..=299, _)) => {
                    exposition
                        .pushed_steps
                        .get_or_create(&to)
                        .inc_by(batch.len() as u64);
                    break;
                }
                Ok((status, answer)) if status != 429 && status < 500 => {
                    exposition.push_errors.get_or_create(&to).inc();
                    tracing::error!(
                        status,
                        answer,
                        "the remote-write peer refused scores; dropped"
                    );
                    break;
                }
                outcome => {
                    exposition.push_errors.get_or_create(&to).inc();
                    if *stop.borrow() && backoff > Duration::from_secs(2) {
                        tracing::warn!(
                            ?outcome,
                            "stopping with scores not pushed (they are in the store)"
                        );
                        return;
                    }
                    tracing::warn!(?outcome, "remote-write push failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_become_one_series_per_label_set_in_time_order() {
        let step = |ts, score| ScoredStep {
            labels: vec![("instance".into(), "a".into()), ("for".into(), "m".into())],
            ts,
            anomaly_score: score,
            contributions: vec![("cpu".into(), score / 2.0)],
        };
        let series = to_series(
            &[step(20, 2.0), step(10, 1.0)],
            &vec![("source".into(), "vigil".into())],
        );
        assert_eq!(series.len(), 2);
        let score = series
            .iter()
            .find(|s| {
                s.labels
                    .contains(&("__name__".into(), "anomaly_score".into()))
            })
            .unwrap();
        assert_eq!(score.points, vec![(10, 1.0), (20, 2.0)]);
        assert!(score.labels.contains(&("source".into(), "vigil".into())));
        let part = series
            .iter()
            .find(|s| s.labels.contains(&("metric".into(), "cpu".into())))
            .unwrap();
        assert_eq!(part.points, vec![(10, 0.5), (20, 1.0)]);
    }
}
