//! The service end to end through its HTTP API, each test against SQLite and PostgreSQL:
//! ingest, streaming scores and alarms, `/metrics`, feedback, tenants, restarts, and the bad
//! input it must refuse without keeping half of anything.

#[macro_use]
mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::*;
use vigil_serve::ingest::{remote_write, Series};

on_both_stores!(
    remote_written_steps_are_scored_and_an_injected_anomaly_alarms,
    bad_input_is_refused_with_its_status_and_nothing_is_kept,
    a_tenant_cannot_read_or_write_another_tenants_data,
    feedback_is_kept_and_the_latest_wins,
    a_restarted_service_continues_each_stream_as_one_run,
    a_full_queue_answers_429_with_retry_after,
    late_metrics_wait_for_the_grace_period_then_take_their_last_value,
    a_new_version_takes_over_between_steps_and_can_be_rolled_back,
    a_windowed_model_waits_for_its_window_and_carries_it_across_restarts_and_versions,
    bad_labels_and_times_are_refused_and_odd_label_values_stay_readable_on_metrics,
    a_csv_backfill_is_scored_and_a_bad_one_keeps_nothing,
);

/// Two instances on one PostgreSQL share the entities by Prometheus' hashmod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_on_one_postgresql_score_disjoint_shares_of_the_entities() {
    use vigil_serve::shard::ShardConfig;
    let first = Harness::new(Backend::Postgres, |c| {
        c.shard = Some(ShardConfig { count: 2, index: 0 })
    })
    .await;
    let store = first.config.store.clone();
    // Its own SQLite store is never opened: the config points it at the first's database.
    let second = Harness::new(Backend::Sqlite, |c| {
        c.store = store;
        c.shard = Some(ShardConfig { count: 2, index: 1 });
    })
    .await;
    // Both get every entity's samples; each keeps and scores its own.
    for h in [&first, &second] {
        assert_eq!(
            h.write(&fleet_series(8, 0..5, normal)).await.0,
            StatusCode::NO_CONTENT
        );
        h.score().await;
    }
    let scored = |h: &Harness| {
        let h = h.engine.clone();
        async move {
            let mut mine = Vec::new();
            for e in 0..8 {
                let rows = h
                    .store
                    .scores("default", &format!("e{e}"), i64::MIN, i64::MAX, 100)
                    .await
                    .unwrap();
                if !rows.is_empty() {
                    mine.push(e);
                }
            }
            mine
        }
    };
    let all: Vec<usize> = scored(&first).await;
    assert_eq!(
        all.len(),
        8,
        "together the two shards scored every entity: {all:?}"
    );
    let owners: Vec<u64> = (0..8)
        .map(|e| vigil_serve::shard::hashmod(&format!("e{e}"), 2))
        .collect();
    assert!(owners.contains(&0) && owners.contains(&1), "{owners:?}");
    let (_, text) = first.get("/metrics").await;
    let shown = text
        .lines()
        .filter(|l| l.starts_with("anomaly_score{"))
        .count();
    assert_eq!(shown, owners.iter().filter(|o| **o == 0).count(), "{text}");
    // Every entity's steps were scored once: five scores each, by its shard.
    for e in 0..8 {
        let rows = first
            .engine
            .store
            .scores("default", &format!("e{e}"), i64::MIN, i64::MAX, 100)
            .await
            .unwrap();
        assert_eq!(rows.len(), 5, "e{e}");
    }
    // ... and each by its own shard only (a second scoring of a step would not add a row: the
    // counters tell).
    for (h, index) in [(&first, 0), (&second, 1)] {
        let owned = owners.iter().filter(|o| **o == index).count();
        let (_, text) = h.get("/metrics").await;
        assert!(
            text.contains(&format!("vigil_scored_steps_total {}\n", 5 * owned)),
            "shard {index}: {text}"
        );
    }
    // A CSV upload for another shard's entity is sent back, naming the owner.
    let foreign = (0..8).find(|e| owners[*e] == 1).unwrap();
    let request = axum::http::Request::post(format!("/api/v1/import/csv?entity=e{foreign}"))
        .body(Body::from("timestamp,cpu,mem,net\n1,1,2,3\n"))
        .unwrap();
    let (status, _, body) = first.send(request).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    assert!(body.contains("shard 1"), "{body}");
    second.engine.store.close().await;
    first.finish().await;
}

async fn remote_written_steps_are_scored_and_an_injected_anomaly_alarms(backend: Backend) {
    let h = Harness::new(backend, |_| {}).await;
    assert_eq!(
        h.write(&fleet_series(2, 0..200, normal)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.score().await, 400);
    let spike = |e: usize, t: usize| {
        if e == 1 && t == 200 {
            anomalous(e, t)
        } else {
            normal(e, t)
        }
    };
    assert_eq!(
        h.write(&fleet_series(2, 200..201, spike)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.score().await, 2);
    let scores = h.get_json("/api/v1/entities/e1/scores").await;
    let rows = scores["scores"].as_array().unwrap();
    assert_eq!(rows.len(), 201);
    let last = &rows[200];
    assert_eq!(last["alarm"], true, "{last}");
    assert!(last["anomaly_score"].as_f64().unwrap() >= 1.0);
    let normal_alarms = rows[..200].iter().filter(|r| r["alarm"] == true).count();
    assert!(
        normal_alarms <= 4,
        "{normal_alarms} of 200 normal steps alarmed"
    );
    assert_eq!(scores["metrics"], serde_json::json!(["cpu", "mem", "net"]));
    assert_eq!(last["contributions"].as_array().unwrap().len(), 3);
    // The overview lists both entities with their newest score.
    let overview = h.get_json("/api/v1/entities").await;
    let entities = overview["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 2);
    assert_eq!(entities[1]["latest"][2], true);
    // Recent alarms: e1's alarmed steps in the hour before its newest (the spike and any of the
    // normal ones); none of the normal steps counted when the hour is a single step.
    let recent = rows
        .iter()
        .filter(|r| {
            r["alarm"] == true && r["ts"].as_i64() > last["ts"].as_i64().map(|t| t - 3_600_000)
        })
        .count();
    assert_eq!(entities[1]["recent_alarms"], recent as i64, "{overview}");
    assert_eq!(entities[1]["last_alarm"], last["ts"], "{overview}");
    let one = h.get_json("/api/v1/entities/e1?recent_ms=1").await;
    assert_eq!(one["entity"]["entity"], "e1");
    assert_eq!(one["entity"]["recent_alarms"], 1, "{one}");
    assert_eq!(one["entity"]["latest"], entities[1]["latest"]);
    assert_eq!(h.get("/api/v1/entities/e9").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get("/api/v1/entities?recent_ms=0").await.0,
        StatusCode::BAD_REQUEST
    );
    // /metrics: the entity's score with the input's labels, the model and the tenant.
    let (status, text) = h.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let line = text
        .lines()
        .find(|l| l.starts_with("anomaly_score{") && l.contains("instance=\"e1\""))
        .unwrap_or_else(|| panic!("no anomaly_score of e1 in\n{text}"));
    assert!(
        line.contains("job=\"node\"")
            && line.contains("for=\"m\"")
            && line.contains("tenant=\"default\""),
        "{line}"
    );
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 1.0, "{line}");
    assert!(text.contains("anomaly_score_contribution{") && text.contains("metric=\"cpu\""));
    assert!(text.contains("vigil_scored_steps_total 402"), "{text}");
    assert!(
        text.contains("vigil_ingested_samples_total{format=\"remote_write\"} 1206"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
    h.finish().await;
}

fn one_step(entity: &str, metric: &str, ts: i64, value: f64) -> Series {
    Series {
        labels: vec![
            ("__name__".into(), metric.into()),
            ("instance".into(), entity.into()),
        ],
        points: vec![(ts, value)],
    }
}

async fn bad_input_is_refused_with_its_status_and_nothing_is_kept(backend: Backend) {
    let token = "write-and-read-0123456789";
    let h = Harness::new(backend, |c| {
        c.limits.body_bytes = 64 * 1024;
        c.tokens = vec![
            vigil_serve::config::Token {
                token: token.into(),
                scopes: vec![
                    vigil_serve::config::Scope::Read,
                    vigil_serve::config::Scope::Write,
                ],
                tenants: vec!["default".into()],
            },
            vigil_serve::config::Token {
                token: "read-only-0123456789".into(),
                scopes: vec![vigil_serve::config::Scope::Read],
                tenants: vec![],
            },
        ];
    })
    .await;
    let auth = ("authorization", format!("Bearer {token}"));
    let write = |series: &[Series], extra: &[(&str, &str)]| {
        let mut headers = vec![(auth.0, auth.1.as_str())];
        headers.extend_from_slice(extra);
        remote_write_request(series, &headers)
    };
    let good = fleet_series(1, 0..5, normal);
    assert_eq!(h.send(write(&good, &[])).await.0, StatusCode::NO_CONTENT);
    h.score().await;
    let kept = (
        h.count("samples").await,
        h.count("entities").await,
        h.count("feedback").await,
    );
    let raw = |body: Vec<u8>, content_type: &str, encoding: &str| {
        Request::post("/api/v1/write")
            .header("authorization", auth.1.as_str())
            .header("content-type", content_type)
            .header("content-encoding", encoding)
            .body(Body::from(body))
            .unwrap()
    };
    let feedback = |json: &str, tenant: &str| {
        Request::post("/api/v1/feedback")
            .header("authorization", auth.1.as_str())
            .header("x-scope-orgid", tenant)
            .header("content-type", "application/json")
            .body(Body::from(json.to_string()))
            .unwrap()
    };
    let ts = |t: i64| T0 + t * STEP_MS;
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "bad snappy",
            raw(
                b"not snappy at all".to_vec(),
                remote_write::CONTENT_TYPE,
                "snappy",
            ),
            StatusCode::BAD_REQUEST,
            "snappy",
        ),
        (
            "bad protobuf",
            raw(
                snap::raw::Encoder::new().compress_vec(&[0xff; 32]).unwrap(),
                remote_write::CONTENT_TYPE,
                "snappy",
            ),
            StatusCode::BAD_REQUEST,
            "WriteRequest",
        ),
        (
            "wrong content type",
            raw(remote_write::encode(&good), "application/json", "snappy"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            "NaN sample",
            write(&[one_step("e0", "cpu", ts(9), f64::NAN)], &[]),
            StatusCode::BAD_REQUEST,
            "finite",
        ),
        (
            "infinite sample",
            write(&[one_step("e0", "cpu", ts(9), f64::INFINITY)], &[]),
            StatusCode::BAD_REQUEST,
            "finite",
        ),
        (
            "out of order",
            write(
                &[
                    one_step("e0", "cpu", ts(9), 1.0),
                    one_step("e0", "mem", ts(2), 1.0),
                ],
                &[],
            ),
            StatusCode::BAD_REQUEST,
            "out of order",
        ),
        (
            "conflicting duplicate",
            write(
                &[
                    one_step("e0", "cpu", ts(9), 1.0),
                    one_step("e0", "cpu", ts(9), 2.0),
                ],
                &[],
            ),
            StatusCode::BAD_REQUEST,
            "two values",
        ),
        (
            "oversize body",
            raw(vec![0u8; 80 * 1024], remote_write::CONTENT_TYPE, "snappy"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
        (
            "no token",
            remote_write_request(&good, &[]),
            StatusCode::UNAUTHORIZED,
            "Bearer",
        ),
        (
            "bad token",
            remote_write_request(&good, &[("authorization", "Bearer not-a-token-at-all")]),
            StatusCode::UNAUTHORIZED,
            "not one of",
        ),
        (
            "read-only token writing",
            remote_write_request(&good, &[("authorization", "Bearer read-only-0123456789")]),
            StatusCode::FORBIDDEN,
            "write",
        ),
        (
            "wrong tenant",
            write(&good, &[("x-scope-orgid", "other")]),
            StatusCode::FORBIDDEN,
            "tenant",
        ),
        (
            "malformed feedback",
            feedback("{\"entity\":\"e0\",", "default"),
            StatusCode::BAD_REQUEST,
            "feedback",
        ),
        (
            "feedback in the future",
            feedback(
                &format!(
                    "{{\"entity\":\"e0\",\"start\":{},\"end\":{},\"label\":\"anomaly\"}}",
                    ts(0),
                    i64::MAX / 2
                ),
                "default",
            ),
            StatusCode::BAD_REQUEST,
            "future",
        ),
        (
            "feedback on an unknown entity",
            feedback(
                &format!(
                    "{{\"entity\":\"nobody\",\"start\":{},\"label\":\"anomaly\"}}",
                    ts(0)
                ),
                "default",
            ),
            StatusCode::NOT_FOUND,
            "nobody",
        ),
        (
            "bad tenant name",
            feedback("{}", "a b"),
            StatusCode::BAD_REQUEST,
            "X-Scope-OrgID",
        ),
    ];
    assert!(cases.len() >= 12);
    for (what, request, status, says) in cases {
        let (got, headers, body) = h.send(request).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(
            body.contains(says),
            "{what}: `{body}` does not say `{says}`"
        );
        if got == StatusCode::UNAUTHORIZED {
            assert_eq!(headers["www-authenticate"], "Bearer", "{what}");
        }
        let now = (
            h.count("samples").await,
            h.count("entities").await,
            h.count("feedback").await,
        );
        assert_eq!(now, kept, "{what} kept something");
    }
    // A sender's retry of what is kept is accepted and changes nothing; the service still serves.
    assert_eq!(h.send(write(&good, &[])).await.0, StatusCode::NO_CONTENT);
    assert_eq!(h.count("samples").await, kept.0);
    assert_eq!(
        h.send(write(&fleet_series(1, 5..6, normal), &[])).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.count("samples").await, kept.0 + 3);
    h.finish().await;
}

async fn a_tenant_cannot_read_or_write_another_tenants_data(backend: Backend) {
    use vigil_serve::config::{Scope, Token};
    let h = Harness::new(backend, |c| {
        c.tokens = ["a", "b"]
            .map(|t| Token {
                token: format!("token-of-tenant-{t}-0123"),
                scopes: vec![Scope::Read, Scope::Write],
                tenants: vec![t.into()],
            })
            .to_vec();
    })
    .await;
    let as_tenant = |t: &str, request: axum::http::request::Builder| {
        request
            .header("authorization", format!("Bearer token-of-tenant-{t}-0123"))
            .header("x-scope-orgid", t)
    };
    let a_write = remote_write_request(
        &fleet_series(1, 0..3, normal),
        &[
            ("authorization", "Bearer token-of-tenant-a-0123"),
            ("x-scope-orgid", "a"),
        ],
    );
    assert_eq!(h.send(a_write).await.0, StatusCode::NO_CONTENT);
    h.score().await;
    let get = |t: &str, path: &str| {
        as_tenant(t, Request::get(path))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = h.send(get("a", "/api/v1/entities")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"e0\""));
    // B sees no entity of A's, and A's entity does not exist for B.
    let (_, _, body) = h.send(get("b", "/api/v1/entities")).await;
    assert!(!body.contains("e0"), "{body}");
    for path in ["/api/v1/entities/e0/scores", "/api/v1/entities/e0"] {
        assert_eq!(
            h.send(get("b", path)).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // The UI's files hold no data and need no token; what they show, the API answers by token.
    let (status, page) = h.get("/ui/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("app.js"), "{page}");
    assert_eq!(h.get("/api/v1/entities").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.send(get("b", "/api/v1/feedback?entity=e0")).await.0,
        StatusCode::NOT_FOUND
    );
    // B's token cannot act as A.
    let b_as_a = Request::get("/api/v1/entities")
        .header("authorization", "Bearer token-of-tenant-b-0123")
        .header("x-scope-orgid", "a")
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(b_as_a).await.0, StatusCode::FORBIDDEN);
    // B's feedback on "e0" is refused; B writing its own e0 keeps A's untouched.
    let fb = as_tenant("b", Request::post("/api/v1/feedback"))
        .body(Body::from(format!(
            "{{\"entity\":\"e0\",\"start\":{T0},\"label\":\"anomaly\"}}"
        )))
        .unwrap();
    assert_eq!(h.send(fb).await.0, StatusCode::NOT_FOUND);
    let b_write = remote_write_request(
        &fleet_series(1, 0..3, |_, _| [1.0, 2.0, 3.0]),
        &[
            ("authorization", "Bearer token-of-tenant-b-0123"),
            ("x-scope-orgid", "b"),
        ],
    );
    assert_eq!(h.send(b_write).await.0, StatusCode::NO_CONTENT);
    h.score().await;
    let (_, _, a_samples) = h.send(get("a", "/api/v1/entities/e0/samples")).await;
    let a_samples: serde_json::Value = serde_json::from_str(&a_samples).unwrap();
    assert_eq!(
        a_samples["samples"][0][2].as_f64().unwrap(),
        normal(0, 0)[0]
    );
    // /metrics shows each token only its tenants' scores.
    let (_, _, metrics_b) = h
        .send(
            Request::get("/metrics")
                .header("authorization", "Bearer token-of-tenant-b-0123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(!metrics_b.contains("tenant=\"a\""), "{metrics_b}");
    assert!(metrics_b.contains("tenant=\"b\""), "{metrics_b}");
    // The service's health is every tenant's traffic: not for a token of some tenants.
    assert!(!metrics_b.contains("vigil_ingest_requests"), "{metrics_b}");
    let (_, _, metrics_a) = h
        .send(
            Request::get("/metrics")
                .header("authorization", "Bearer token-of-tenant-a-0123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(metrics_a.contains("tenant=\"a\""), "{metrics_a}");
    h.finish().await;
}

async fn feedback_is_kept_and_the_latest_wins(backend: Backend) {
    let h = Harness::new(backend, |_| {}).await;
    h.write(&fleet_series(1, 0..50, normal)).await;
    let post = |json: String| {
        Request::post("/api/v1/feedback")
            .header("content-type", "application/json")
            .body(Body::from(json))
            .unwrap()
    };
    let (status, _, body) = h
        .send(post(format!(
            "{{\"entity\":\"e0\",\"start\":{},\"end\":{},\"label\":\"anomaly\",\"comment\":\"disk full\",\"author\":\"ops\"}}",
            T0,
            T0 + 20 * STEP_MS
        )))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["label"], "anomaly");
    let (status, _, _) = h
        .send(post(format!(
            "{{\"entity\":\"e0\",\"start\":{},\"end\":{},\"label\":\"not_anomaly\",\"kind\":\"range\"}}",
            T0 + 5 * STEP_MS,
            T0 + 8 * STEP_MS
        )))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let got = h.get_json("/api/v1/feedback?entity=e0").await;
    assert_eq!(got["history"].as_array().unwrap().len(), 2);
    assert_eq!(got["history"][0]["comment"], "disk full");
    let spans: Vec<(i64, i64, String)> = got["effective"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["start"].as_i64().unwrap(),
                e["end"].as_i64().unwrap(),
                e["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        vec![
            (T0, T0 + 5 * STEP_MS - 1, "anomaly".into()),
            (T0 + 5 * STEP_MS, T0 + 8 * STEP_MS, "not_anomaly".into()),
            (T0 + 8 * STEP_MS + 1, T0 + 20 * STEP_MS, "anomaly".into()),
        ]
    );
    // Kept across a restart.
    let h = h.restart().await;
    assert_eq!(
        h.get_json("/api/v1/feedback?entity=e0").await["history"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    h.finish().await;
}

async fn a_restarted_service_continues_each_stream_as_one_run(backend: Backend) {
    // Under SPOT the threshold learns from every step: a stream cut by a restart must end
    // with the thresholds and alarms of one uninterrupted run.
    let spot = |c: &mut vigil_serve::ServeConfig| {
        c.threshold = Some(vigil_serve::config::ThresholdSetting::Name("spot".into()))
    };
    let value = |e: usize, t: usize| {
        if t.is_multiple_of(37) {
            anomalous(e, t)
        } else {
            normal(e, t)
        }
    };
    let whole = Harness::new(backend, spot).await;
    whole.write(&fleet_series(2, 0..300, value)).await;
    whole.score().await;
    let expected = whole.get_json("/api/v1/entities/e1/scores").await;
    whole.finish().await;

    let cut = Harness::new(backend, spot).await;
    cut.write(&fleet_series(2, 0..120, value)).await;
    cut.score().await;
    // Steps that arrived but were not scored before the stop are scored after it.
    cut.write(&fleet_series(2, 120..200, value)).await;
    let cut = cut.restart().await;
    cut.write(&fleet_series(2, 200..300, value)).await;
    cut.score().await;
    let got = cut.get_json("/api/v1/entities/e1/scores").await;
    assert_eq!(got["scores"].as_array().unwrap().len(), 300);
    assert_eq!(got["scores"], expected["scores"]);
    cut.finish().await;
}

async fn a_full_queue_answers_429_with_retry_after(backend: Backend) {
    let h = Harness::new(backend, |c| c.limits.pending_steps = 10).await;
    // Not scored: the first write fills the queue.
    assert_eq!(
        h.write(&fleet_series(1, 0..12, normal)).await.0,
        StatusCode::NO_CONTENT
    );
    let before = h.count("samples").await;
    let (status, headers, body) = h
        .send(remote_write_request(&fleet_series(1, 12..13, normal), &[]))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(h.count("samples").await, before);
    h.score().await;
    assert_eq!(
        h.write(&fleet_series(1, 12..13, normal)).await.0,
        StatusCode::NO_CONTENT
    );
    h.finish().await;
}

async fn late_metrics_wait_for_the_grace_period_then_take_their_last_value(backend: Backend) {
    let h = Harness::new(backend, |c| c.grace_ms = 2 * STEP_MS).await;
    h.write(&fleet_series(1, 0..10, normal)).await;
    assert_eq!(h.score().await, 10);
    // Step 10 lacks `net`; steps 11 and 12 come whole.
    let partial: Vec<Series> = fleet_series(1, 10..11, normal)
        .into_iter()
        .filter(|s| s.labels[0].1 != "net")
        .collect();
    h.write(&partial).await;
    h.write(&fleet_series(1, 11..12, normal)).await;
    assert_eq!(
        h.score().await,
        0,
        "step 10 waits: its grace has not passed"
    );
    h.write(&fleet_series(1, 12..13, normal)).await;
    assert_eq!(h.score().await, 3);
    let scores = h.get_json("/api/v1/entities/e0/scores").await;
    let filled: Vec<i64> = scores["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["filled"].as_i64().unwrap())
        .collect();
    assert_eq!(filled[10..], [1, 0, 0]);
    // The late `net` of step 10 is now out of order.
    let late = fleet_series(1, 10..11, normal)
        .into_iter()
        .filter(|s| s.labels[0].1 == "net")
        .collect::<Vec<_>>();
    assert_eq!(h.write(&late).await.0, StatusCode::BAD_REQUEST);
    h.finish().await;
}

async fn a_new_version_takes_over_between_steps_and_can_be_rolled_back(backend: Backend) {
    let h = Harness::new(backend, |c| {
        c.threshold = Some(vigil_serve::config::ThresholdSetting::Name("spot".into()))
    })
    .await;
    assert_eq!(
        h.post("/api/v1/models/m/rollback", "").await.0,
        StatusCode::CONFLICT,
        "nothing to roll back to"
    );
    assert_eq!(
        h.post("/api/v1/models/other/rollback", "").await.0,
        StatusCode::NOT_FOUND
    );
    h.write(&fleet_series(1, 0..20, normal)).await;
    h.score().await;
    // Nothing newer in the store: nothing changes.
    let (status, body) = h.post("/api/v1/models/reload", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"swapped\":false"), "{body}");
    let models = vigil_models::DirStore::new(h.config.models.clone());
    vigil_models::ModelStore::put(&models, "m", &trained_model(300)).unwrap();
    let (status, body) = h.post("/api/v1/models/reload", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("\"version\":2") && body.contains("\"previous\":1"),
        "{body}"
    );
    h.write(&fleet_series(1, 20..30, normal)).await;
    h.score().await;
    let scores = h.get_json("/api/v1/entities/e0/scores").await;
    let models_used: Vec<&str> = scores["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert_eq!(models_used[..20], ["m@1"; 20]);
    assert_eq!(models_used[20..], ["m@2"; 10]);
    // A version that cannot be loaded leaves the serving one in place, and scoring goes on.
    let broken = h.config.models.join("m").join("3");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("manifest.json"), "{ not a manifest").unwrap();
    let (status, body) = h.post("/api/v1/models/reload", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("still serving m@2"), "{body}");
    assert_eq!(h.get_json("/api/v1/status").await["version"], 2);
    h.write(&fleet_series(1, 30..35, normal)).await;
    assert_eq!(h.score().await, 5);
    // Roll back to version 1, which scores the next steps.
    std::fs::remove_dir_all(&broken).unwrap();
    let (status, body) = h.post("/api/v1/models/m/rollback", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let status = h.get_json("/api/v1/status").await;
    assert_eq!(
        (
            status["version"].as_u64(),
            status["previous_version"].as_u64()
        ),
        (Some(1), Some(2))
    );
    h.write(&fleet_series(1, 35..40, normal)).await;
    h.score().await;
    let scores = h.get_json("/api/v1/entities/e0/scores").await;
    assert_eq!(scores["scores"][39]["model"], "m@1");
    let (_, metrics) = h.get("/metrics").await;
    assert!(
        metrics.contains("vigil_model_version 1")
            && metrics.contains("vigil_model_load_errors_total 1"),
        "{metrics}"
    );
    h.finish().await;
}

async fn a_windowed_model_waits_for_its_window_and_carries_it_across_restarts_and_versions(
    backend: Backend,
) {
    let model = windowed_model(1);
    let spot = |c: &mut vigil_serve::ServeConfig| {
        c.threshold = Some(vigil_serve::config::ThresholdSetting::Name("spot".into()))
    };
    let value = |e: usize, t: usize| {
        if t % 23 == 7 {
            anomalous(e, t)
        } else {
            normal(e, t)
        }
    };
    let whole = Harness::serving(backend, &model, spot).await;
    whole.write(&fleet_series(1, 0..100, value)).await;
    assert_eq!(whole.score().await, 100);
    let expected = whole.get_json("/api/v1/entities/e0/scores").await;
    whole.finish().await;

    let cut = Harness::serving(backend, &model, spot).await;
    cut.write(&fleet_series(1, 0..3, value)).await;
    assert_eq!(cut.score().await, 0, "three steps are not a window of five");
    cut.write(&fleet_series(1, 3..40, value)).await;
    assert_eq!(cut.score().await, 40);
    cut.write(&fleet_series(1, 40..41, value)).await;
    assert_eq!(
        cut.score().await,
        1,
        "after the first window a single step is scored"
    );
    let cut = cut.restart().await;
    cut.write(&fleet_series(1, 41..100, value)).await;
    assert_eq!(cut.score().await, 59);
    let got = cut.get_json("/api/v1/entities/e0/scores").await;
    assert_eq!(got["scores"], expected["scores"]);
    // A new version scores the next steps at once, from the steps the stream carries.
    vigil_models::ModelStore::put(
        &vigil_models::DirStore::new(cut.config.models.clone()),
        "m",
        &windowed_model(2),
    )
    .unwrap();
    assert_eq!(
        cut.post("/api/v1/models/reload", "").await.0,
        StatusCode::OK
    );
    cut.write(&fleet_series(1, 100..102, value)).await;
    assert_eq!(cut.score().await, 2);
    let (_, metrics) = cut.get("/metrics").await;
    assert!(
        metrics.contains("vigil_scoring_errors_total 0"),
        "{metrics}"
    );
    let scores = cut.get_json("/api/v1/entities/e0/scores").await;
    assert_eq!(scores["scores"][101]["model"], "m@2");
    cut.finish().await;
}

async fn bad_labels_and_times_are_refused_and_odd_label_values_stay_readable_on_metrics(
    backend: Backend,
) {
    let h = Harness::new(backend, |_| {}).await;
    let with_labels = |extra: (&str, &str), ts: i64| -> Vec<Series> {
        METRICS
            .iter()
            .map(|m| Series {
                labels: vec![
                    ("__name__".into(), m.to_string()),
                    ("instance".into(), "odd".into()),
                    (extra.0.into(), extra.1.into()),
                ],
                points: vec![(ts, 1.0)],
            })
            .collect()
    };
    for (what, series) in [
        ("a NUL in a value", with_labels(("zone", "a\0b"), T0)),
        (
            "a label name with a dash",
            with_labels(("my-zone", "a"), T0),
        ),
        ("a time before 1970", with_labels(("zone", "a"), -5)),
        ("a time past 2^53 ms", with_labels(("zone", "a"), i64::MAX)),
    ] {
        let (status, body) = h.write(&series).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    }
    assert_eq!(h.count("samples").await, 0);
    // Quotes, backslashes and line breaks in label values are escaped on /metrics; an input
    // label named `metric` gives way to vigil's own.
    let odd = "say \"hi\"\\ \nthere";
    let mut series = fleet_series(1, 0..3, normal);
    for s in &mut series {
        s.labels.push(("zone".into(), odd.into()));
        s.labels.push(("metric".into(), "theirs".into()));
    }
    assert_eq!(h.write(&series).await.0, StatusCode::NO_CONTENT);
    h.score().await;
    let (_, text) = h.get("/metrics").await;
    assert!(
        text.contains("zone=\"say \\\"hi\\\"\\\\ \\nthere\""),
        "{text}"
    );
    assert!(!text.contains("theirs"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("anomaly_score{"))
            .count(),
        1,
        "{text}"
    );
    h.finish().await;
}

async fn a_csv_backfill_is_scored_and_a_bad_one_keeps_nothing(backend: Backend) {
    let h = Harness::new(backend, |_| {}).await;
    let mut csv = String::from("timestamp,cpu,mem,net\n");
    for t in 0..20 {
        let [a, b, c] = normal(0, t);
        csv.push_str(&format!("{},{a},{b},{c}\n", T0 + t as i64 * STEP_MS));
    }
    let upload = |body: String| {
        Request::post("/api/v1/import/csv?entity=backfilled")
            .body(Body::from(body))
            .unwrap()
    };
    let (status, _, body) = h.send(upload(csv.clone())).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(h.score().await, 20);
    let (status, _, body) = h
        .send(upload(format!("{csv}{},1,oops,3\n", T0 + 20 * STEP_MS)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not a number"), "{body}");
    assert_eq!(h.count("samples").await, 60);
    let (status, _, _) = h
        .send(
            Request::post("/api/v1/import/csv")
                .body(Body::from(csv))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no entity named");
    h.finish().await;
}

/// A `query_range` stub: answers each query with one series of entity `p` at every step of
/// the asked range, and records the ranges asked for.
async fn query_range_stub() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(i64, i64)>>>) {
    use axum::extract::Query;
    use std::collections::HashMap;
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = asked.clone();
    let app = axum::Router::new().route(
        "/api/v1/query_range",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
            let record = record.clone();
            async move {
                let ms = |k: &str| (q[k].parse::<f64>().unwrap() * 1000.0).round() as i64;
                let (start, end, step) = (ms("start"), ms("end"), ms("step"));
                if q["query"] == "cpu" {
                    record.lock().unwrap().push((start, end));
                }
                let m = METRICS.iter().position(|n| *n == q["query"]).unwrap();
                let values: Vec<serde_json::Value> = (start..=end)
                    .step_by(step as usize)
                    .map(|t| {
                        let v = normal(0, (t / 1000) as usize % 600)[m];
                        serde_json::json!([t as f64 / 1000.0, v.to_string()])
                    })
                    .collect();
                axum::Json(
                    serde_json::json!({"status": "success", "data": {"resultType": "matrix",
                    "result": [{"metric": {"instance": "p"}, "values": values}]}}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), asked)
}

/// Pulls cover time without gaps or overlaps, and a restarted service goes on from its newest
/// stored sample instead of asking for its backfill again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_cover_time_without_gaps_or_overlaps_across_a_restart() {
    use vigil_serve::config::PullConfig;
    let (url, asked) = query_range_stub().await;
    let pull = PullConfig {
        url,
        queries: METRICS
            .iter()
            .map(|m| (m.to_string(), m.to_string()))
            .collect(),
        step_s: 1,
        every_s: 1,
        lag_s: 0,
        backfill_s: 20,
        max_points: 8,
        tenant: "default".into(),
    };
    let h = Harness::new(Backend::Sqlite, |_| {}).await;
    let run = |h: &Harness| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(vigil_serve::ingest::pull::run(
            pull.clone(),
            h.engine.clone(),
            stopped,
        ));
        (stop, task)
    };
    let (stop, task) = run(&h);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let first_run: Vec<(i64, i64)> = asked.lock().unwrap().clone();
    assert!(
        first_run.len() >= 4,
        "the 20 s backfill comes in chunks of 8 steps: {first_run:?}"
    );
    for pair in first_run.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].1 + 1000,
            "a gap or an overlap: {first_run:?}"
        );
    }
    for (start, end) in &first_run {
        assert!(
            (end - start) / 1000 < 8,
            "a chunk over max_points: {first_run:?}"
        );
    }
    h.score().await;
    let h = h.restart().await;
    asked.lock().unwrap().clear();
    let (stop, task) = run(&h);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let second_run = asked.lock().unwrap().clone();
    let last_end = first_run.last().unwrap().1;
    assert_eq!(
        second_run.first().map(|r| r.0),
        Some(last_end + 1000),
        "{second_run:?}"
    );
    let samples = h.get_json("/api/v1/entities/p/samples?limit=100000").await;
    let steps = samples["samples"].as_array().unwrap().len() / 3;
    let expected = (second_run.last().unwrap().1 - first_run[0].0) / 1000 + 1;
    assert_eq!(steps as i64, expected, "every pulled step stored once");
    h.finish().await;
}
