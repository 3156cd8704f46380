//! `vigil serve` among the real programs operators run (Debian's `prometheus` and
//! `prometheus-alertmanager`): an exporter serves generated metrics with an injected anomaly,
//! Prometheus scrapes it and remote-writes to vigil, scrapes vigil's `/metrics`, and the rule
//! `anomaly_score > 1` (docs/examples/vigil-rules.yml) fires into Alertmanager, asserted through
//! Alertmanager's API. Once with SQLite, once with PostgreSQL as vigil's store.

mod common;
mod serve_support;

use serve_support::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Scrapes answered with normal values before the anomaly starts.
const NORMAL_SCRAPES: usize = 15;

/// Serves `cpu`, `mem` and `net` at /metrics: each scrape the next step of [`normal`], anomalous
/// from the [`NORMAL_SCRAPES`]th on. Returns the scrape counter.
fn start_exporter(port: u16) -> Arc<AtomicUsize> {
    let scrapes = Arc::new(AtomicUsize::new(0));
    let counter = scrapes.clone();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let t = counter.fetch_add(1, Ordering::SeqCst);
            let values = if t < NORMAL_SCRAPES {
                normal(t)
            } else {
                anomalous(t)
            };
            let body: String = METRICS
                .iter()
                .zip(values)
                .map(|(name, v)| format!("# TYPE {name} gauge\n{name} {v}\n"))
                .collect();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    scrapes
}

fn write_peer_configs(dir: &Path, exporter: u16, vigil: u16, alertmanager: u16) {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/vigil-rules.yml"
    ))
    .unwrap();
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [rules.yml]\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{alertmanager}']\n\
             remote_write:\n  - url: http://127.0.0.1:{vigil}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n\
             \x20   write_relabel_configs:\n      - source_labels: [job]\n        regex: exporter\n        action: keep\n\
             scrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n\
             \x20 - job_name: vigil\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{vigil}']\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route:\n  receiver: quiet\n  group_wait: 1s\nreceivers:\n  - name: quiet\n",
    )
    .unwrap();
}

/// Alertmanager's alerts named `name`.
fn alerts_named(alertmanager: &str, name: &str) -> Vec<serde_json::Value> {
    let Ok((200, body)) = http("GET", alertmanager, "/api/v2/alerts", &[], b"") else {
        return vec![];
    };
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    alerts
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .collect()
}

/// Alerts fired by the rule `anomaly_score > 1` (docs/examples/vigil-rules.yml).
fn vigil_anomaly_alerts(alertmanager: &str) -> Vec<serde_json::Value> {
    alerts_named(alertmanager, "VigilAnomaly")
}

fn an_injected_anomaly_reaches_alertmanager_through_prometheus(store: &str, dir: &Path) {
    let (exporter_port, vigil_port, prometheus_port, am_port) =
        (free_port(), free_port(), free_port(), free_port());
    train_model(dir);
    std::fs::write(
        dir.join("vigil.toml"),
        format!(
            "listen = \"127.0.0.1:{vigil_port}\"\nstore = \"{store}\"\nmodels = \"models\"\nmodel = \"m\"\ngrace_ms = 5000\n\
             [alertmanager]\nurl = \"http://127.0.0.1:{am_port}\"\nresend_s = 2\n\
             [remote_write_out]\nurl = \"http://127.0.0.1:{prometheus_port}/api/v1/write\"\nlabels = {{ source = \"vigil-push\" }}\n"
        ),
    )
    .unwrap();
    write_peer_configs(dir, exporter_port, vigil_port, am_port);
    let vigil_address = format!("127.0.0.1:{vigil_port}");
    let am_address = format!("127.0.0.1:{am_port}");
    let _vigil = start_vigil(dir, &vigil_address);
    let _alertmanager = Proc::spawn(
        "prometheus-alertmanager",
        &[
            "--config.file=alertmanager.yml".into(),
            format!("--storage.path={}", dir.join("am-data").display()),
            format!("--web.listen-address={am_address}"),
            "--cluster.listen-address=".into(),
        ],
        dir,
        "alertmanager",
    );
    let scrapes = start_exporter(exporter_port);
    let prometheus = Proc::spawn(
        "prometheus",
        &[
            "--config.file=prometheus.yml".into(),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
            // vigil pushes its scores back by remote-write.
            "--web.enable-remote-write-receiver".into(),
        ],
        dir,
        "prometheus",
    );
    let exporter_instance = format!("127.0.0.1:{exporter_port}");
    // Normal steps arrive through remote-write and are scored; nothing fires.
    wait_for(
        "vigil to score remote-written steps",
        Duration::from_secs(60),
        || {
            http("GET", &vigil_address, "/api/v1/entities", &[], b"")
                .ok()
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                .is_some_and(|v| v["entities"][0]["latest"].is_array())
        },
    );
    wait_for("Alertmanager to answer", Duration::from_secs(30), || {
        http("GET", &am_address, "/-/ready", &[], b"").is_ok()
    });
    assert!(
        scrapes.load(Ordering::SeqCst) < NORMAL_SCRAPES,
        "the normal phase was over before vigil scored a step"
    );
    let entities = http("GET", &vigil_address, "/api/v1/entities", &[], b"")
        .unwrap()
        .1;
    assert!(entities.contains(&exporter_instance), "{entities}");
    assert!(
        vigil_anomaly_alerts(&am_address).is_empty(),
        "an alert fired on normal data"
    );
    assert!(
        alerts_named(&am_address, "VigilAlarm").is_empty(),
        "vigil pushed an alarm on normal data"
    );
    // The anomaly: the rule fires and Alertmanager holds the alert, labelled with the entity.
    wait_for(
        "VigilAnomaly in Alertmanager",
        Duration::from_secs(90),
        || !vigil_anomaly_alerts(&am_address).is_empty(),
    );
    let alert = &vigil_anomaly_alerts(&am_address)[0];
    assert_eq!(
        alert["labels"]["instance"],
        exporter_instance.as_str(),
        "{alert}"
    );
    assert_eq!(alert["labels"]["for"], "m", "{alert}");
    assert_eq!(alert["labels"]["job"], "exporter", "{alert}");
    assert!(scrapes.load(Ordering::SeqCst) >= NORMAL_SCRAPES);
    // vigil's own push holds the alarm too, with the entity's labels and a summary.
    wait_for(
        "VigilAlarm pushed by vigil",
        Duration::from_secs(30),
        || !alerts_named(&am_address, "VigilAlarm").is_empty(),
    );
    let pushed = &alerts_named(&am_address, "VigilAlarm")[0];
    assert_eq!(
        pushed["labels"]["instance"],
        exporter_instance.as_str(),
        "{pushed}"
    );
    assert!(
        pushed["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("anomalous"),
        "{pushed}"
    );
    // Scores remote-written by vigil, with their steps' timestamps, are in Prometheus.
    let prometheus_address = format!("127.0.0.1:{prometheus_port}");
    let query =
        "/api/v1/query?query=max_over_time(anomaly_score%7Bsource%3D%22vigil-push%22%7D%5B10m%5D)";
    let mut pushed_max = 0.0;
    wait_for(
        "vigil's pushed scores in Prometheus",
        Duration::from_secs(30),
        || {
            let Ok((200, body)) = http("GET", &prometheus_address, query, &[], b"") else {
                return false;
            };
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            pushed_max = answer["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            pushed_max > 1.0
        },
    );
    let (_, result) = http("GET", &prometheus_address, query, &[], b"").unwrap();
    assert!(
        result.contains(&exporter_instance) && result.contains("\"for\":\"m\""),
        "{result}"
    );
    // Every alarm vigil stored is a step the exporter served anomalous (its cpu four times
    // the normal at most 61).
    let get = |what: &str| entity_rows(&vigil_address, &exporter_instance, what);
    let cpu_at: std::collections::HashMap<i64, f64> = get("samples")
        .iter()
        .filter(|s| s[1] == 0)
        .map(|s| (s[0].as_i64().unwrap(), s[2].as_f64().unwrap()))
        .collect();
    let alarmed: Vec<i64> = get("scores")
        .iter()
        .filter(|r| r["alarm"] == true)
        .map(|r| r["ts"].as_i64().unwrap())
        .collect();
    assert!(!alarmed.is_empty(), "vigil stored no alarm");
    for ts in alarmed {
        assert!(
            cpu_at[&ts] > 100.0,
            "step {ts} alarmed with cpu {}",
            cpu_at[&ts]
        );
    }
    drop(prometheus);
}

#[test]
fn with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    an_injected_anomaly_reaches_alertmanager_through_prometheus("sqlite://vigil.db", dir.path());
}

#[test]
fn with_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("vigil_peers_{}", std::process::id());
    let url = create_database(&name);
    an_injected_anomaly_reaches_alertmanager_through_prometheus(&url, dir.path());
    drop_database(&name);
}

/// vigil pulls what Prometheus scraped through its `query_range` API (no remote-write), and
/// scores it.
#[test]
fn pulled_from_prometheus_query_range() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (exporter_port, vigil_port, prometheus_port) = (free_port(), free_port(), free_port());
    train_model(dir);
    std::fs::write(
        dir.join("vigil.toml"),
        format!(
            "listen = \"127.0.0.1:{vigil_port}\"\nstore = \"sqlite://vigil.db\"\nmodels = \"models\"\nmodel = \"m\"\n\
             [[pull]]\nurl = \"http://127.0.0.1:{prometheus_port}\"\nstep_s = 1\nevery_s = 1\nlag_s = 1\nbackfill_s = 20\n\
             queries = {{ cpu = \"cpu\", mem = \"mem\", net = \"net\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
        ),
    )
    .unwrap();
    let _scrapes = start_exporter(exporter_port);
    let _prometheus = Proc::spawn(
        "prometheus",
        &[
            "--config.file=prometheus.yml".into(),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
        ],
        dir,
        "prometheus",
    );
    let vigil_address = format!("127.0.0.1:{vigil_port}");
    let _vigil = start_vigil(dir, &vigil_address);
    let exporter_instance = format!("127.0.0.1:{exporter_port}");
    let scored = || entity_rows(&vigil_address, &exporter_instance, "scores").len();
    wait_for(
        "vigil to score pulled steps",
        Duration::from_secs(60),
        || scored() >= 5,
    );
    let (_, metrics) = http("GET", &vigil_address, "/metrics", &[], b"").unwrap();
    let pulled: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigil_ingested_samples_total{format=\"pull\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pulled samples counted in\n{metrics}"));
    assert!(pulled >= 15.0, "{pulled} samples pulled");
}
