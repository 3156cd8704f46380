//! A service over a fresh store (SQLite in a temporary folder, or a fresh PostgreSQL database),
//! serving a small PCA model, driven through its router without a network; and generated
//! fleets to feed it.

#![allow(dead_code)]

/// Each scenario (an `async fn(Backend)` beside the call) as a test once per store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use sqlx::{Connection, Executor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;
use vigil_core::Series as CoreSeries;
use vigil_models::{DirStore, ModelStore, TrainSpec, TrainedModel};
use vigil_serve::engine::model::ServingModel;
use vigil_serve::ingest::{remote_write, Series};
use vigil_serve::store::Store;
use vigil_serve::{Engine, ServeConfig};

pub const METRICS: [&str; 3] = ["cpu", "mem", "net"];
/// Steps 10 s apart from here.
pub const T0: i64 = 1_700_000_000_000;
pub const STEP_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One normal step of entity `e` at step `t`: three metrics that move together.
pub fn normal(e: usize, t: usize) -> [f64; 3] {
    let phase = (t as f64 + 7.0 * e as f64) * std::f64::consts::TAU / 50.0;
    // A small deterministic wobble (no generator: the same in every process).
    let wobble = ((t * 7919 + e * 104_729) % 1000) as f64 / 1000.0 - 0.5;
    let cpu = 50.0 + 10.0 * phase.sin() + wobble;
    [
        cpu,
        30.0 + 5.0 * phase.cos() + 0.5 * wobble,
        0.5 * cpu + 0.3 * wobble,
    ]
}

/// A step far outside anything trained on, with the metrics' relation broken.
pub fn anomalous(e: usize, t: usize) -> [f64; 3] {
    let [cpu, mem, _] = normal(e, t);
    [cpu * 4.0, mem, 0.0]
}

/// A PCA model of [`normal`] trained on its first `steps` steps.
pub fn trained_model(steps: usize) -> TrainedModel {
    let values: Vec<f64> = (0..steps).flat_map(|t| normal(0, t)).collect();
    let series = CoreSeries::new(METRICS.iter().map(|m| m.to_string()).collect(), values).unwrap();
    let spec = TrainSpec {
        detector: "pca".into(),
        ..TrainSpec::default()
    };
    vigil_models::train(series, &spec, None).unwrap()
}

/// A USAD model (window 5) of [`normal`], seeded.
pub fn windowed_model(seed: u64) -> TrainedModel {
    let values: Vec<f64> = (0..400).flat_map(|t| normal(0, t)).collect();
    let series = CoreSeries::new(METRICS.iter().map(|m| m.to_string()).collect(), values).unwrap();
    let spec = TrainSpec {
        detector: "usad".into(),
        config: Some(serde_json::json!({"window": 5, "latent": 4, "batch_size": 32, "epochs": 2})),
        seed,
        ..TrainSpec::default()
    };
    vigil_models::train(series, &spec, None).unwrap()
}

fn trained_model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| trained_model(600).to_bytes().unwrap())
}

pub struct Harness {
    pub engine: Arc<Engine>,
    pub router: Router,
    pub config: ServeConfig,
    pub dir: Arc<tempfile::TempDir>,
    postgres: Option<String>,
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

fn postgres_admin_url() -> String {
    std::env::var("VIGIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A new, empty PostgreSQL database (and the ones earlier test processes left, dropped).
async fn fresh_postgres() -> (String, String) {
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin} is needed for this test ({e}); set VIGIL_TEST_POSTGRES to another server")
    });
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(datname AS TEXT) FROM pg_database WHERE datname LIKE 'vigil_test_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for name in left {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                .await;
        }
    }
    let name = format!(
        "vigil_test_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    // Databases are copied from a template that only one CREATE DATABASE may read at a time:
    // tests starting together wait their turn.
    let mut tries = 0;
    while let Err(e) = conn
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
    {
        tries += 1;
        assert!(tries < 100, "cannot create database {name}: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(50 + 13 * tries)).await;
    }
    let url = match admin.rfind('/') {
        Some(slash) => format!("{}/{name}", &admin[..slash]),
        None => panic!("VIGIL_TEST_POSTGRES must end in /DATABASE"),
    };
    (url, name)
}

impl Harness {
    pub async fn new(backend: Backend, tweak: impl FnOnce(&mut ServeConfig)) -> Harness {
        let model = TrainedModel::from_bytes(trained_model_bytes()).unwrap();
        Harness::serving(backend, &model, tweak).await
    }

    /// A service of `model` (as version 1 of `m`).
    pub async fn serving(
        backend: Backend,
        model: &TrainedModel,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Harness {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let models = DirStore::new(dir.path().join("models"));
        models.put("m", model).unwrap();
        let (store, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("vigil.db").display()),
                None,
            ),
            Backend::Postgres => {
                let (url, name) = fresh_postgres().await;
                (url, Some(name))
            }
        };
        let mut config = ServeConfig {
            listen: "127.0.0.1:0".into(),
            store,
            models: dir.path().join("models"),
            model: "m".into(),
            ..ServeConfig::default()
        };
        tweak(&mut config);
        Harness::over(config, dir, postgres).await
    }

    async fn over(
        config: ServeConfig,
        dir: Arc<tempfile::TempDir>,
        postgres: Option<String>,
    ) -> Harness {
        let model = ServingModel::load(&config).unwrap();
        let store = Store::open(&config.store).await.unwrap();
        let engine = Engine::start(config.clone(), model, store).await.unwrap();
        let router = vigil_serve::http::router(engine.clone());
        Harness {
            engine,
            router,
            config,
            dir,
            postgres,
        }
    }

    /// The service stopped and started again over the same store and models.
    pub async fn restart(self) -> Harness {
        self.engine.store.close().await;
        let Harness {
            config,
            dir,
            postgres,
            ..
        } = self;
        Harness::over(config, dir, postgres).await
    }

    /// Drops the PostgreSQL database (SQLite's folder goes with the harness).
    pub async fn finish(self) {
        self.engine.store.close().await;
        if let Some(name) = self.postgres {
            let mut conn = sqlx::AnyConnection::connect(&postgres_admin_url())
                .await
                .unwrap();
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                .await;
        }
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let (status, _, body) = self
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        (status, body)
    }

    pub async fn post(&self, path: &str, body: &str) -> (StatusCode, String) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Remote-writes `series`; returns the status and body.
    pub async fn write(&self, series: &[Series]) -> (StatusCode, String) {
        let (status, _, body) = self.send(remote_write_request(series, &[])).await;
        (status, body)
    }

    /// Scores what is ready, as the service's scorer does after each write.
    pub async fn score(&self) -> usize {
        self.engine.score_ready().await.unwrap()
    }

    /// A `POST` that must answer 200, its JSON body.
    pub async fn post_ok(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.post(path, "").await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits (a minute at most) until version `version` is in service, brought by the
    /// background task `task` (a schedule or policy); then stops the task through `stop`.
    pub async fn await_version_from(
        &self,
        version: u64,
        task: tokio::task::JoinHandle<()>,
        stop: tokio::sync::watch::Sender<bool>,
    ) {
        let started = std::time::Instant::now();
        while self.engine.model().version < version {
            assert!(
                started.elapsed().as_secs() < 60,
                "version {version} was not served within a minute"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(30), task)
            .await
            .expect("the task stops when told")
            .unwrap();
    }

    pub async fn count(&self, table: &str) -> i64 {
        let url = &self.config.store;
        let url = if url.starts_with("sqlite://") {
            format!("{url}?mode=ro")
        } else {
            url.clone()
        };
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n
    }
}

/// A remote-write request with `series` and extra headers.
pub fn remote_write_request(series: &[Series], headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::post("/api/v1/write")
        .header("content-type", remote_write::CONTENT_TYPE)
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(remote_write::encode(series)))
        .unwrap()
}

/// Series of entities `instance=e0, e1, ...` over steps `steps`, each metric a series, with the
/// step values `value(entity, step)`.
pub fn fleet_series(
    entities: usize,
    steps: std::ops::Range<usize>,
    value: impl Fn(usize, usize) -> [f64; 3],
) -> Vec<Series> {
    let mut out = Vec::new();
    for e in 0..entities {
        for (m, metric) in METRICS.iter().enumerate() {
            out.push(Series {
                labels: vec![
                    ("__name__".into(), metric.to_string()),
                    ("instance".into(), format!("e{e}")),
                    ("job".into(), "node".into()),
                ],
                points: steps
                    .clone()
                    .map(|t| (T0 + t as i64 * STEP_MS, value(e, t)[m]))
                    .collect(),
            });
        }
    }
    out
}
