//! Pulling from a Prometheus-compatible `query_range` API on a schedule (for data that nobody
//! remote-writes): each configured query is one model metric (its alias), each result series
//! one entity's values of it by the label rules. Long ranges are split into requests under the
//! server's limit on points per series (Prometheus refuses more than 11,000). A restarted
//! service pulls its first range again; what it already has is taken as a sender's retry.

use crate::config::PullConfig;
use crate::engine::{now_ms, Engine, Senders};
use crate::ingest::Series;
use crate::outbound::client::HttpClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// `[from, to]` (ms) cut into ranges of at most `max_points` steps of `step_ms`.
pub fn chunks(from: i64, to: i64, step_ms: i64, max_points: i64) -> Vec<(i64, i64)> {
    let span = step_ms.max(1) * (max_points.max(2) - 1);
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + span).min(to);
        out.push((start, end));
        start = end + step_ms.max(1);
    }
    out
}

/// A query string component, percent-encoded (RFC 3986 unreserved characters kept). One small
/// function, where a URL crate would bring a parser this one request does not need.
pub fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The series of a `query_range` answer, named `alias`; values that are not finite numbers
/// (NaN, ±Inf) are left out as gaps.
pub fn parse_matrix(body: &str, alias: &str) -> Result<Vec<Series>, String> {
    let answer: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    if answer["status"] != "success" {
        return Err(format!("the server answered {}", answer["error"]));
    }
    let results = answer["data"]["result"]
        .as_array()
        .ok_or("the answer has no data.result list (a range query gives a matrix)")?;
    Ok(results
        .iter()
        .map(|r| {
            let mut labels: Vec<(String, String)> = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(n, _)| n.as_str() != "__name__")
                        .map(|(n, v)| (n.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            labels.push(("__name__".into(), alias.to_string()));
            let points = r["values"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|pair| {
                            let seconds = pair[0].as_f64()?;
                            let value: f64 = pair[1].as_str()?.parse().ok()?;
                            value
                                .is_finite()
                                .then_some(((seconds * 1000.0).round() as i64, value))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Series { labels, points }
        })
        .collect())
}

/// Pulls every `every_s` until `stop`: from `backfill_s` before the start on, or from after
/// the tenant's newest stored sample when that is later (a restarted service does not ask for
/// what it has).
pub async fn run(config: PullConfig, engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let client = HttpClient::default();
    let step_ms = (config.step_s * 1000) as i64;
    // Aligned to the step, so that every entity's metrics share timestamps.
    let align = |t: i64| t - t.rem_euclid(step_ms.max(1));
    let mut cursor = align(now_ms() - config.backfill_s as i64 * 1000);
    match engine.store.newest_sample_ts(&config.tenant).await {
        Ok(Some(newest)) => cursor = cursor.max(align(newest) + step_ms),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "the newest stored sample is unknown; pulling the whole backfill")
        }
    }
    loop {
        let to = align(now_ms() - config.lag_s as i64 * 1000);
        if to >= cursor {
            // A stop ends a pull between two requests' awaits; what was kept is kept.
            tokio::select! {
                pulled = pull_range(&client, &config, &engine, &mut cursor, to, step_ms) => {
                    if let Err(e) = pulled {
                        tracing::error!(url = %config.url, error = %e, "pull failed; the rest of the range is pulled next time");
                    }
                }
                _ = stop.changed() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(config.every_s.max(1))) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Most bytes of one `query_range` answer (a larger one names the settings to narrow).
const MAX_ANSWER_BYTES: usize = 256 << 20;

/// Pulls `[*cursor, to]` chunk by chunk, moving the cursor past each chunk taken.
async fn pull_range(
    client: &HttpClient,
    config: &PullConfig,
    engine: &Engine,
    cursor: &mut i64,
    to: i64,
    step_ms: i64,
) -> Result<(), String> {
    for (start, end) in chunks(*cursor, to, step_ms, config.max_points as i64) {
        let mut series = Vec::new();
        for (alias, expr) in &config.queries {
            let url = format!(
                "{}/api/v1/query_range?query={}&start={}&end={}&step={}",
                config.url.trim_end_matches('/'),
                encode_component(expr),
                start as f64 / 1000.0,
                end as f64 / 1000.0,
                step_ms as f64 / 1000.0
            );
            let (status, body) = client
                .get(&url, Duration::from_secs(30), MAX_ANSWER_BYTES)
                .await?;
            if status != 200 {
                let start: String = body.chars().take(500).collect();
                return Err(format!("{url} answered {status}: {start}"));
            }
            series.extend(parse_matrix(&body, alias)?);
        }
        let report = engine
            .ingest_as(&config.tenant, series, Senders::Repeating)
            .await
            .map_err(|e| format!("the pulled range {start}..{end} was not taken: {e}"))?;
        engine
            .exposition
            .ingested_samples
            .get_or_create(&vec![("format".into(), "pull".into())])
            .inc_by(report.kept as u64);
        *cursor = end + step_ms;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ranges_are_cut_under_the_point_limit_without_gaps_or_overlaps() {
        assert_eq!(chunks(0, 100, 10, 11_000), vec![(0, 100)]);
        let cut = chunks(0, 250, 10, 11);
        assert_eq!(cut, vec![(0, 100), (110, 210), (220, 250)]);
        for (start, end) in &cut {
            // At most 11 points: the steps from start to end, both included.
            assert!((end - start) / 10 < 11);
        }
        assert!(chunks(10, 0, 10, 11).is_empty());
    }

    #[test]
    fn a_matrix_becomes_series_named_by_alias_without_non_finite_points() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"node_cpu","instance":"a"},"values":[[1.5,"1"],[2.5,"NaN"],[3.5,"+Inf"],[4.5,"2"]]}]}}"#;
        let series = parse_matrix(body, "cpu").unwrap();
        assert_eq!(series[0].points, vec![(1500, 1.0), (4500, 2.0)]);
        assert!(series[0]
            .labels
            .contains(&("__name__".into(), "cpu".into())));
        assert!(series[0].labels.contains(&("instance".into(), "a".into())));
        assert!(parse_matrix(r#"{"status":"error","error":"bad"}"#, "cpu").is_err());
        assert_eq!(
            encode_component("rate(x{a=\"b\"}[1m])"),
            "rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29"
        );
    }
}
