//! The feedback loop: operators' feedback fine-tunes the model in service; the tuned model is
//! checked on feedback held back, served as a new version, and a rollback restores the old one;
//! a model that cannot continue training, or no feedback, makes no version; the policy tunes by
//! itself once enough feedback has come in.

#[macro_use]
mod support;

use axum::http::StatusCode;
use support::*;
use vigil_models::{DirStore, ModelStore};
use vigil_serve::config::TuneConfig;

on_both_stores!(feedback_tunes_a_new_version_that_a_rollback_undoes);

/// e1 breaks over steps 150..=159; the rest is normal.
fn broken(e: usize, t: usize) -> [f64; 3] {
    if e == 1 && (150..160).contains(&t) {
        anomalous(e, t)
    } else {
        normal(e, t)
    }
}

async fn give(h: &Harness, entity: &str, from: i64, to: i64, label: &str) {
    let body = format!(
        "{{\"entity\":\"{entity}\",\"start\":{},\"end\":{},\"label\":\"{label}\"}}",
        T0 + from * STEP_MS,
        T0 + to * STEP_MS
    );
    let (status, answer) = h.post("/api/v1/feedback", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn feedback_tunes_a_new_version_that_a_rollback_undoes(backend: Backend) {
    let h = Harness::serving(backend, &windowed_model(5), |_| {}).await;
    h.write(&fleet_series(2, 0..200, broken)).await;
    h.score().await;
    // Five pieces, in the order they are taken: e0's two, then e1's three; the fifth (e1's
    // alarm from step 155, marked normal) is held back, and the serving model alarmed there.
    give(&h, "e0", 10, 30, "not_anomaly").await;
    give(&h, "e0", 40, 60, "not_anomaly").await;
    give(&h, "e1", 100, 120, "not_anomaly").await;
    give(&h, "e1", 150, 154, "not_anomaly").await;
    give(&h, "e1", 155, 159, "not_anomaly").await;

    let report = h.post_ok("/api/v1/models/m/tune").await;
    assert_eq!(report["from"], "m@1");
    assert_eq!(report["pieces"], 4, "{report}");
    assert_eq!(report["held_back"], 1);
    // The fleet's 400 recent steps, then 21 + 21 + 21 + 5 steps of feedback, each piece after
    // 4 steps of context (window 5).
    assert_eq!(report["steps"], 400 + 68 + 4 * 4, "{report}");
    assert_eq!(
        report["accuracy_before"], 0.0,
        "the serving model alarmed: {report}"
    );
    assert_eq!(report["swapped"], true, "{report}");
    assert_eq!(report["version"], 2);
    assert_eq!(h.engine.model().version, 2);
    let stored = DirStore::new(&h.config.models).get("m", Some(2)).unwrap();
    assert_eq!(stored.manifest.lineage["tuned_from_feedback"], "m@1");
    assert!(stored.manifest.lineage.contains_key("fine_tuned_from"));

    // The old version comes back on a rollback.
    let (status, body) = h.post("/api/v1/models/m/rollback", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.engine.model().version, 1);
    let (_, metrics) = h.get("/metrics").await;
    assert!(
        metrics.contains("vigil_tunes_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_feedback_or_a_model_that_cannot_continue_makes_no_version() {
    let h = Harness::serving(Backend::Sqlite, &windowed_model(5), |_| {}).await;
    h.write(&fleet_series(1, 0..50, normal)).await;
    h.score().await;
    let (status, body) = h.post("/api/v1/models/m/tune", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("no feedback"), "{body}");
    let (status, _) = h.post("/api/v1/models/other/tune", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.finish().await;

    // PCA is fitted in one pass: refused with what to do instead.
    let pca = Harness::new(Backend::Sqlite, |_| {}).await;
    pca.write(&fleet_series(1, 0..50, normal)).await;
    pca.score().await;
    give(&pca, "e0", 10, 20, "not_anomaly").await;
    let (status, body) = pca.post("/api/v1/models/m/tune", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("cannot continue training"), "{body}");
    assert_eq!(
        DirStore::new(&pca.config.models).versions("m").unwrap(),
        [1]
    );
    pca.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_tunes_once_enough_feedback_has_come_in() {
    let h = Harness::serving(Backend::Sqlite, &windowed_model(5), |c| {
        c.tune = Some(TuneConfig {
            after_feedback: 2,
            check_every_s: 1,
            ..TuneConfig::default()
        })
    })
    .await;
    h.write(&fleet_series(2, 0..200, broken)).await;
    h.score().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let policy = tokio::spawn(vigil_serve::tune::run(h.engine.clone(), stopped));
    give(&h, "e0", 10, 30, "not_anomaly").await;
    // One piece is not enough.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(h.engine.model().version, 1);
    // (Held back, the second piece: the alarm marked normal, which the serving model gets
    // wrong, so the tuned one cannot do worse and is served.)
    give(&h, "e1", 150, 159, "not_anomaly").await;
    h.await_version_from(2, policy, stop).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tuned_model_that_misses_held_back_anomalies_is_not_served() {
    // Told that the first half of e1's break is normal, and held back: its second half, marked
    // anomalous. A model that learns the break as normal stops alarming on it: worse.
    let h = Harness::serving(Backend::Sqlite, &windowed_model(5), |c| {
        c.tune = Some(TuneConfig {
            epochs: Some(30),
            ..TuneConfig::default()
        })
    })
    .await;
    h.write(&fleet_series(2, 0..200, broken)).await;
    h.score().await;
    give(&h, "e1", 150, 154, "not_anomaly").await;
    give(&h, "e1", 155, 159, "anomaly").await;
    let report = h.post_ok("/api/v1/models/m/tune").await;
    assert_eq!(report["held_back"], 1, "{report}");
    assert_eq!(report["accuracy_before"], 1.0, "{report}");
    assert_eq!(report["swapped"], false, "{report}");
    assert!(report["version"].is_null());
    assert!(
        report["reason"].as_str().unwrap().contains("worse"),
        "{report}"
    );
    assert_eq!(h.engine.model().version, 1);
    assert_eq!(DirStore::new(&h.config.models).versions("m").unwrap(), [1]);
    let (_, metrics) = h.get("/metrics").await;
    assert!(
        metrics.contains("vigil_tunes_total{outcome=\"worse\"} 1"),
        "{metrics}"
    );
    h.finish().await;
}
