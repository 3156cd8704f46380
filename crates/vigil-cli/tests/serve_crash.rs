//! `vigil serve` killed with SIGKILL under load, then restarted over the same store: every
//! write that got a 2xx (remote-write samples and feedback) is there, and the streams resume —
//! the scores, thresholds and alarms equal those of an uninterrupted run. Once with SQLite, once
//! with PostgreSQL.

mod common;
mod serve_support;

use serve_support::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigil_serve::ingest::{remote_write, Series};

const STEPS: usize = 400;
const ENTITIES: usize = 2;
const T0: i64 = 1_700_000_000_000;

fn step_request(t: usize) -> Vec<u8> {
    let values = if t % 37 == 5 { anomalous(t) } else { normal(t) };
    let series: Vec<Series> = (0..ENTITIES)
        .flat_map(|e| {
            METRICS.iter().zip(values).map(move |(name, v)| Series {
                labels: vec![
                    ("__name__".into(), name.to_string()),
                    ("instance".into(), format!("e{e}")),
                ],
                points: vec![(T0 + t as i64 * 1000, v + e as f64)],
            })
        })
        .collect();
    remote_write::encode(&series)
}

fn write_step(address: &str, t: usize) -> bool {
    let headers = [
        ("Content-Type", remote_write::CONTENT_TYPE),
        ("Content-Encoding", "snappy"),
    ];
    matches!(
        http("POST", address, "/api/v1/write", &headers, &step_request(t)),
        Ok((204, _))
    )
}

fn config(dir: &Path, port: u16, store: &str) {
    std::fs::write(
        dir.join("vigil.toml"),
        format!("listen = \"127.0.0.1:{port}\"\nstore = \"{store}\"\nmodels = \"models\"\nmodel = \"m\"\nthreshold = \"spot\"\n"),
    )
    .unwrap();
}

fn all_scored(address: &str) -> Vec<Vec<serde_json::Value>> {
    wait_for("every step scored", Duration::from_secs(60), || {
        (0..ENTITIES).all(|e| entity_rows(address, &format!("e{e}"), "scores").len() == STEPS)
    });
    (0..ENTITIES)
        .map(|e| entity_rows(address, &format!("e{e}"), "scores"))
        .collect()
}

fn killed_and_restarted_loses_nothing_acknowledged(
    crash_store: &str,
    calm_store: &str,
    dir: &Path,
) {
    train_model(dir);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    config(dir, port, crash_store);
    let vigil = Arc::new(Mutex::new(start_vigil(dir, &address)));
    let acked_steps = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // Feedback under load beside the samples; what got a 201 is recorded.
    let acked_feedback = Arc::new(Mutex::new(Vec::<i64>::new()));
    let poster = {
        let (address, acked, done, steps) = (
            address.clone(),
            acked_feedback.clone(),
            done.clone(),
            acked_steps.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0i64;
            while !done.load(Ordering::SeqCst) {
                if steps.load(Ordering::SeqCst) == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                n += 1;
                let body = format!("{{\"entity\":\"e0\",\"start\":{},\"end\":{},\"label\":\"not_anomaly\",\"comment\":\"n{n}\"}}", T0 + n, T0 + n + 10);
                if let Ok((201, reply)) = http(
                    "POST",
                    &address,
                    "/api/v1/feedback",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                ) {
                    let row: serde_json::Value = serde_json::from_str(&reply).unwrap();
                    assert_eq!(row["comment"], format!("n{n}"));
                    acked.lock().unwrap().push(row["id"].as_i64().unwrap());
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    // The writer sends steps in order, each until it gets a 204 (a restart in between).
    let writer = {
        let (address, acked) = (address.clone(), acked_steps.clone());
        std::thread::spawn(move || {
            for t in 0..STEPS {
                let mut tries = 0;
                while !write_step(&address, t) {
                    tries += 1;
                    assert!(tries < 3000, "step {t} was never accepted");
                    std::thread::sleep(Duration::from_millis(10));
                }
                acked.store(t + 1, Ordering::SeqCst);
            }
        })
    };
    wait_for("150 steps written", Duration::from_secs(60), || {
        acked_steps.load(Ordering::SeqCst) >= 150
    });
    vigil.lock().unwrap().kill();
    let killed_at = acked_steps.load(Ordering::SeqCst);
    let feedback_before = acked_feedback.lock().unwrap().len();
    *vigil.lock().unwrap() = start_vigil(dir, &address);
    writer.join().unwrap();
    done.store(true, Ordering::SeqCst);
    poster.join().unwrap();
    assert!(killed_at < STEPS, "the writer finished before the kill");
    assert!(
        feedback_before > 0,
        "no feedback was acknowledged before the kill"
    );
    let crashed = all_scored(&address);
    // Every acknowledged sample is stored (the writer re-sent only what got no 204).
    for e in 0..ENTITIES {
        let samples = entity_rows(&address, &format!("e{e}"), "samples");
        assert_eq!(samples.len(), STEPS * METRICS.len());
    }
    // Every acknowledged feedback is stored, as it was acknowledged.
    let body = http("GET", &address, "/api/v1/feedback?entity=e0", &[], b"")
        .unwrap()
        .1;
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stored: Vec<i64> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    for id in acked_feedback.lock().unwrap().iter() {
        assert!(stored.contains(id), "acknowledged feedback {id} is missing");
    }
    vigil.lock().unwrap().kill();

    // The same steps into a service that is never killed.
    config(dir, port, calm_store);
    let _calm = start_vigil(dir, &address);
    for t in 0..STEPS {
        assert!(write_step(&address, t));
    }
    let calm = all_scored(&address);
    for e in 0..ENTITIES {
        // The first step that differs, not the 400 of them.
        if let Some(i) = (0..STEPS).find(|&i| crashed[e][i] != calm[e][i]) {
            panic!(
                "entity e{e}, step {i}: the killed service stored {} where an uninterrupted run stored {}",
                crashed[e][i], calm[e][i]
            );
        }
        assert!(calm[e].iter().any(|r| r["alarm"] == true));
    }
}

#[test]
fn with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_and_restarted_loses_nothing_acknowledged(
        "sqlite://crash.db",
        "sqlite://calm.db",
        dir.path(),
    );
}

#[test]
fn with_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let (crash, calm) = (
        format!("vigil_crash_{}", std::process::id()),
        format!("vigil_calm_{}", std::process::id()),
    );
    let (crash_url, calm_url) = (create_database(&crash), create_database(&calm));
    killed_and_restarted_loses_nothing_acknowledged(&crash_url, &calm_url, dir.path());
    drop_database(&crash);
    drop_database(&calm);
}
