//! Scheduled retraining: the model is trained again on recent data, leaving out what alarmed
//! and what operators marked anomalous or maintenance; the new version is written to the model
//! store and takes over between two steps while scoring goes on; too little data makes no
//! version; the schedule runs by itself.

#[macro_use]
mod support;

use axum::http::StatusCode;
use std::collections::HashSet;
use support::*;
use vigil_models::{DirStore, ModelStore};
use vigil_serve::config::{RetrainConfig, RetrainMethod};

on_both_stores!(retraining_learns_recent_normal_data_and_takes_over_between_steps);

fn retraining(min_steps: usize) -> RetrainConfig {
    RetrainConfig {
        fit_every_s: 3600,
        // Every step of the test (200 steps of 10 s).
        fit_window_s: 10_000,
        method: RetrainMethod::Fresh,
        max_steps: 10_000,
        min_steps,
    }
}

/// e1 breaks at step 150; the rest is normal.
fn spiked(e: usize, t: usize) -> [f64; 3] {
    if e == 1 && t == 150 {
        anomalous(e, t)
    } else {
        normal(e, t)
    }
}

async fn alarmed_steps(h: &Harness, entity: &str) -> HashSet<i64> {
    let scores = h
        .get_json(&format!("/api/v1/entities/{entity}/scores"))
        .await;
    scores["scores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["alarm"] == true)
        .map(|r| r["ts"].as_i64().unwrap())
        .collect()
}

async fn retraining_learns_recent_normal_data_and_takes_over_between_steps(backend: Backend) {
    let h = Harness::new(backend, |c| c.retrain = Some(retraining(100))).await;
    h.write(&fleet_series(2, 0..200, spiked)).await;
    assert_eq!(h.score().await, 400);
    // e0's steps 20..=29 were maintenance.
    let (status, body) = h
        .post(
            "/api/v1/feedback",
            &format!(
                "{{\"entity\":\"e0\",\"start\":{},\"end\":{},\"label\":\"not_anomaly\",\"kind\":\"maintenance\"}}",
                T0 + 20 * STEP_MS,
                T0 + 29 * STEP_MS
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let maintenance: HashSet<i64> = (20..30).map(|t| T0 + t * STEP_MS).collect();
    let e0_alarms = alarmed_steps(&h, "e0").await;
    let e1_alarms = alarmed_steps(&h, "e1").await;
    assert!(
        e1_alarms.contains(&(T0 + 150 * STEP_MS)),
        "the spike alarms"
    );
    let left_out = e0_alarms.union(&maintenance).count() + e1_alarms.len();

    let report = h.post_ok("/api/v1/models/retrain").await;
    assert_eq!(report["from"], "m@1");
    assert_eq!(report["version"], 2);
    assert_eq!(report["method"], "fresh");
    assert_eq!(report["entities"], 2);
    assert_eq!(report["left_out"], left_out, "{report}");
    assert_eq!(report["steps"], 400 - left_out, "{report}");
    let status = h.get_json("/api/v1/status").await;
    assert_eq!(status["version"], 2, "{status}");
    assert_eq!(status["previous_version"], 1);
    assert_eq!(status["last_retrain"]["version"], 2);
    // The store holds it: the same detector, trained on exactly those steps, with its origin.
    let stored = DirStore::new(&h.config.models).get("m", Some(2)).unwrap();
    assert_eq!(stored.manifest.detector, "pca");
    assert_eq!(stored.manifest.training.train_steps, 400 - left_out);
    assert_eq!(stored.manifest.lineage["retrained_from"], "m@1");

    // Scoring goes on with the new version.
    h.write(&fleet_series(2, 200..210, normal)).await;
    assert_eq!(h.score().await, 20);
    let scores = h.get_json("/api/v1/entities/e0/scores").await;
    let rows = scores["scores"].as_array().unwrap();
    assert_eq!(rows.last().unwrap()["model"], "m@2");
    let (_, metrics) = h.get("/metrics").await;
    assert!(
        metrics.contains("vigil_retrains_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_recent_data_makes_no_version_and_says_why() {
    let h = Harness::new(Backend::Sqlite, |c| c.retrain = Some(retraining(1_000))).await;
    h.write(&fleet_series(1, 0..50, normal)).await;
    h.score().await;
    let (status, body) = h.post("/api/v1/models/retrain", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("only 50 steps") && body.contains("min_steps is 1000"),
        "{body}"
    );
    assert_eq!(h.get_json("/api/v1/status").await["version"], 1);
    assert_eq!(DirStore::new(&h.config.models).versions("m").unwrap(), [1]);
    // Without a [retrain] table, asking is refused with what to add.
    let plain = Harness::new(Backend::Sqlite, |_| {}).await;
    let (status, body) = plain.post("/api/v1/models/retrain", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("[retrain]"), "{body}");
    h.finish().await;
    plain.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_retrains_by_itself_and_stops_with_the_service() {
    let h = Harness::new(Backend::Sqlite, |c| {
        c.retrain = Some(RetrainConfig {
            fit_every_s: 1,
            ..retraining(100)
        })
    })
    .await;
    h.write(&fleet_series(2, 0..100, normal)).await;
    h.score().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let schedule = tokio::spawn(vigil_serve::retrain::run(h.engine.clone(), stopped));
    h.await_version_from(2, schedule, stop).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fine_tune_continues_a_neural_model_and_a_classical_one_is_refused() {
    let fine_tune = |c: &mut vigil_serve::ServeConfig| {
        c.retrain = Some(RetrainConfig {
            method: RetrainMethod::FineTune,
            ..retraining(100)
        })
    };
    let h = Harness::serving(Backend::Sqlite, &windowed_model(3), fine_tune).await;
    h.write(&fleet_series(2, 0..160, spiked)).await;
    h.score().await;
    let report = h.post_ok("/api/v1/models/retrain").await;
    assert_eq!(report["method"], "fine_tune");
    // Every step is trained on; the alarmed ones labelled anomalous, not left out.
    assert_eq!(report["steps"], 320, "{report}");
    let labelled = report["left_out"].as_u64().unwrap();
    assert!(labelled > 0, "the spike is labelled: {report}");
    let stored = DirStore::new(&h.config.models).get("m", Some(2)).unwrap();
    assert_eq!(stored.manifest.detector, "usad");
    assert_eq!(stored.manifest.training.labelled_anomalous as u64, labelled);
    assert!(stored.manifest.lineage.contains_key("fine_tuned_from"));
    h.finish().await;

    let pca = Harness::new(Backend::Sqlite, fine_tune).await;
    pca.write(&fleet_series(2, 0..120, normal)).await;
    pca.score().await;
    let (status, body) = pca.post("/api/v1/models/retrain", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("cannot continue training"), "{body}");
    assert_eq!(pca.get_json("/api/v1/status").await["version"], 1);
    pca.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_and_max_steps_bound_what_is_learnt() {
    // A window of 500 s is each entity's newest 50 steps.
    let h = Harness::new(Backend::Sqlite, |c| {
        c.retrain = Some(RetrainConfig {
            fit_window_s: 500,
            ..retraining(10)
        })
    })
    .await;
    h.write(&fleet_series(2, 0..200, normal)).await;
    h.score().await;
    let report = h.post_ok("/api/v1/models/retrain").await;
    let (steps, left_out) = (
        report["steps"].as_u64().unwrap(),
        report["left_out"].as_u64().unwrap(),
    );
    assert_eq!(steps + left_out, 100, "{report}");
    assert_eq!(report["entities"], 2);
    h.finish().await;

    // max_steps 300 over two entities of 200 steps: all of one, the newest of the other.
    let h = Harness::new(Backend::Sqlite, |c| {
        c.retrain = Some(RetrainConfig {
            max_steps: 300,
            ..retraining(10)
        })
    })
    .await;
    h.write(&fleet_series(2, 0..200, normal)).await;
    h.score().await;
    let report = h.post_ok("/api/v1/models/retrain").await;
    let steps = report["steps"].as_u64().unwrap();
    assert!((290..=300).contains(&steps), "{report}");
    assert_eq!(report["entities"], 2);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_holds_against_the_poller_and_pauses_retraining_until_a_reload() {
    let h = Harness::new(Backend::Sqlite, |c| c.retrain = Some(retraining(100))).await;
    h.write(&fleet_series(2, 0..200, normal)).await;
    h.score().await;
    assert_eq!(h.post("/api/v1/models/retrain", "").await.0, StatusCode::OK);
    assert_eq!(h.engine.model().version, 2);
    let (status, body) = h.post("/api/v1/models/m/rollback", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The poller sees version 2 in the store and leaves the rollback be.
    assert_eq!(h.engine.reload(false).await.unwrap(), None);
    assert_eq!(h.engine.model().version, 1);
    let (status, body) = h.post("/api/v1/models/retrain", "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("rolled back"), "{body}");
    assert_eq!(
        DirStore::new(&h.config.models).versions("m").unwrap(),
        [1, 2]
    );
    // An operator's reload serves the newest again, and retraining resumes from it.
    assert_eq!(h.post("/api/v1/models/reload", "").await.0, StatusCode::OK);
    assert_eq!(h.engine.model().version, 2);
    let (status, body) = h.post("/api/v1/models/retrain", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"from\":\"m@2\""), "{body}");
    assert_eq!(h.engine.model().version, 3);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_classifier_is_not_retrained_or_tuned_on_its_own_alarms() {
    // MTAD-FL's Local model, trained on labelled data: every 25th step breaks and is labelled.
    let steps = 300;
    let values: Vec<f64> = (0..steps)
        .flat_map(|t| {
            if t % 25 == 7 {
                anomalous(0, t)
            } else {
                normal(0, t)
            }
        })
        .collect();
    let mut series =
        vigil_core::Series::new(METRICS.iter().map(|m| m.to_string()).collect(), values).unwrap();
    series.labels = Some((0..steps).map(|t| u8::from(t % 25 == 7)).collect());
    let spec = vigil_models::TrainSpec {
        detector: "mtad-local".into(),
        config: Some(serde_json::json!({
            "conv1_filters": 4, "conv2_filters": 8, "conv3_filters": 4, "epochs": 1
        })),
        ..vigil_models::TrainSpec::default()
    };
    let model = vigil_models::train(series, &spec, None).unwrap();
    for method in [RetrainMethod::Fresh, RetrainMethod::FineTune] {
        let h = Harness::serving(Backend::Sqlite, &model, |c| {
            c.retrain = Some(RetrainConfig {
                method,
                ..retraining(10)
            })
        })
        .await;
        h.write(&fleet_series(2, 0..60, spiked)).await;
        h.score().await;
        let (status, body) = h.post("/api/v1/models/retrain", "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("supervised classifier: retrained"), "{body}");
        assert!(!body.contains("  "), "one line, no runs of spaces: {body}");
        // Tuning from feedback would learn the same alarms as targets.
        let (status, body) = h.post("/api/v1/models/m/tune", "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("supervised classifier: tuned"), "{body}");
        assert_eq!(h.get_json("/api/v1/status").await["version"], 1);
        h.finish().await;
    }
}
