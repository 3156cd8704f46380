//! The load behind `bench/serve.sh`: remote-writes `ENTITIES` entities × `METRICS` metrics to a
//! running `vigil serve`, one step of every entity per round, as fast as the service
//! acknowledges, for `SECONDS`; then waits until every step is scored and prints one JSON line:
//! samples acknowledged per second, samples scored per second (from the first request to the
//! last step scored), and the ingest-to-score latency quantiles read off the service's
//! `vigil_scoring_latency_seconds` histogram.
//!
//!     serve_load train-csv FILE METRICS STEPS    # normal data to train the bench's model on
//!     serve_load ADDRESS ENTITIES METRICS SECONDS [ENTITIES_PER_REQUEST] [IN_FLIGHT]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_serve::ingest::{remote_write, Series};
use vigil_serve::outbound::client::HttpClient;

const T0: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 10_000;
/// Rounds sent whatever the time: two windows of the bench's model and some.
const MIN_ROUNDS: usize = 12;

/// Metric `m` of entity `e` at step `t`: daily-like waves that the metrics share.
fn value(e: usize, t: usize, m: usize) -> f64 {
    let phase = (t as f64 + 7.0 * e as f64) * std::f64::consts::TAU / 60.0;
    let wobble = ((t * 7919 + e * 104_729 + m * 31) % 1000) as f64 / 1000.0 - 0.5;
    50.0 + 10.0 * (phase + m as f64 * 0.3).sin() + wobble
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .or(default)
        .unwrap_or_else(|| panic!("argument {i} is missing or not a number; see the file's header"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("train-csv") {
        let (metrics, steps): (usize, usize) = (arg(&args, 2, None), arg(&args, 3, None));
        let mut csv = (0..metrics)
            .map(|m| format!("m{m}"))
            .collect::<Vec<_>>()
            .join(",")
            + "\n";
        for t in 0..steps {
            let row: Vec<String> = (0..metrics)
                .map(|m| value(t % 10, t, m).to_string())
                .collect();
            csv += &(row.join(",") + "\n");
        }
        std::fs::write(&args[1], csv).expect("the CSV is written");
        return;
    }
    let address = args.first().expect("ADDRESS").clone();
    let (entities, metrics, seconds): (usize, usize, f64) = (
        arg(&args, 1, None),
        arg(&args, 2, None),
        arg(&args, 3, None),
    );
    let per_request: usize = arg(&args, 4, Some(100));
    let in_flight: usize = arg(&args, 5, Some(4));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(
        address,
        entities,
        metrics,
        seconds,
        per_request,
        in_flight,
    ));
}

async fn run(
    address: String,
    entities: usize,
    metrics: usize,
    seconds: f64,
    per_request: usize,
    in_flight: usize,
) {
    let client = HttpClient::default();
    let url = format!("http://{address}/api/v1/write");
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut rounds = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    // Whole rounds only, and at least a few model windows of them (USAD's is 5 steps): an
    // entity's first steps wait for a window before they are scored.
    while rounds < MIN_ROUNDS || start.elapsed().as_secs_f64() < seconds {
        for first in (0..entities).step_by(per_request.max(1)) {
            let series: Vec<Series> = (first..(first + per_request).min(entities))
                .flat_map(|e| {
                    (0..metrics).map(move |m| Series {
                        labels: vec![
                            ("__name__".into(), format!("m{m}")),
                            ("instance".into(), format!("host-{e}")),
                        ],
                        points: vec![(T0 + rounds as i64 * STEP_MS, value(e, rounds, m))],
                    })
                })
                .collect();
            let samples = series.len() as u64;
            let body = remote_write::encode(&series);
            while tasks.len() >= in_flight {
                tasks.join_next().await;
            }
            let (client, url, acked, refused) =
                (client.clone(), url.clone(), acked.clone(), refused.clone());
            tasks.spawn(async move {
                let headers = [
                    ("Content-Type", remote_write::CONTENT_TYPE),
                    ("Content-Encoding", "snappy"),
                ];
                loop {
                    match client
                        .post(&url, &headers, body.clone(), Duration::from_secs(60))
                        .await
                    {
                        Ok((204, _)) => {
                            acked.fetch_add(samples, Ordering::Relaxed);
                            return;
                        }
                        Ok((429, _)) | Ok((503, _)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        other => {
                            refused.fetch_add(samples, Ordering::Relaxed);
                            eprintln!("refused: {other:?}");
                            return;
                        }
                    }
                }
            });
        }
        // A round's requests all answered before the next round's steps (steps in order).
        while tasks.join_next().await.is_some() {}
        rounds += 1;
    }
    while tasks.join_next().await.is_some() {}
    let sent_for = start.elapsed().as_secs_f64();
    // Every acknowledged step scored: the queue drained (asked of /api/v1/status, which costs
    // nothing; /metrics, with every entity's series, once at the end).
    let status_url = format!("http://{address}/api/v1/status");
    let (mut last_pending, mut unchanged_since) = (u64::MAX, Instant::now());
    let unscored = loop {
        let (_, body) = client
            .get(&status_url, Duration::from_secs(60), 1 << 20)
            .await
            .expect("/api/v1/status answers");
        let status: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
        let pending = status["pending_steps"].as_u64().unwrap_or(u64::MAX);
        if pending == 0 {
            break 0;
        }
        // Steps that wait for something that will not come (a window never completed).
        if pending != last_pending {
            (last_pending, unchanged_since) = (pending, Instant::now());
        } else if unchanged_since.elapsed() > Duration::from_secs(10) {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Up to the last step scored (not the wait that found the rest would not be).
    let scored_for = if unscored == 0 {
        start.elapsed().as_secs_f64()
    } else {
        (unchanged_since - start).as_secs_f64()
    };
    let metrics_url = format!("http://{address}/metrics");
    let (_, text) = client
        .get(&metrics_url, Duration::from_secs(60), 1 << 30)
        .await
        .expect("/metrics answers");
    let scored_steps = find(&text, "vigil_scored_steps_total ").unwrap_or(0.0);
    let acked = acked.load(Ordering::Relaxed) as f64;
    println!(
        "{}",
        serde_json::json!({
            "entities": entities,
            "metrics": metrics,
            "rounds": rounds,
            "samples_acknowledged": acked,
            "samples_refused": refused.load(Ordering::Relaxed),
            "sending_s": sent_for,
            "ingest_samples_per_s": acked / sent_for,
            "scored_steps": scored_steps,
            "unscored_steps": unscored,
            "scored_samples_per_s": scored_steps * metrics as f64 / scored_for,
            "until_all_scored_s": scored_for,
            "latency_p50_s": quantile(&text, 0.5),
            "latency_p99_s": quantile(&text, 0.99),
        })
    );
}

fn find(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The `q` quantile of `vigil_scoring_latency_seconds`: the upper bound of the bucket where the
/// cumulative count reaches it (a histogram's resolution: buckets double).
fn quantile(text: &str, q: f64) -> Option<f64> {
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("vigil_scoring_latency_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| *le)
}
