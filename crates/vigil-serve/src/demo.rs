//! `vigil serve --demo`: the service on generated data, for a newcomer to watch within seconds.
//! A fleet of entities replays one generated machine's test series (with its injected
//! anomalies) from staggered starting points, one step every `step_ms`, stamped with the
//! wall clock; the model was trained on that machine's anomaly-free part. Everything lives in a
//! temporary folder removed at exit: the demo touches no file of the user's.

use crate::config::ServeConfig;
use crate::engine::{now_ms, Engine};
use crate::error::{Result, ServeError};
use crate::ingest::Series;
use crate::server::Service;
use std::sync::Arc;
use std::time::Duration;
use vigil_core::synth::{generate_fleet, SynthConfig};
use vigil_models::{DirStore, ModelStore, TrainSpec};

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub listen: String,
    pub detector: String,
    pub entities: usize,
    pub step_ms: u64,
}

/// Trains the demo's model, starts the service and replays the fleet until a signal.
pub async fn run(settings: DemoSettings) -> Result<()> {
    let folder = tempfile::Builder::new()
        .prefix("vigil-serve-demo-")
        .tempdir()
        .map_err(|e| ServeError::Config(format!("cannot make the demo's temporary folder: {e}")))?;
    let synth = SynthConfig {
        entities: 1,
        metrics: 6,
        train_len: 2000,
        test_len: 2000,
        period: 200,
        anomalies: 10,
        ..SynthConfig::default()
    };
    let machine = generate_fleet(&synth).entities.remove(0);
    let spec = TrainSpec {
        detector: settings.detector.clone(),
        ..TrainSpec::default()
    };
    let train = machine.train.clone();
    let model = tokio::task::spawn_blocking(move || vigil_models::train(train, &spec, None))
        .await
        .map_err(|e| ServeError::Config(format!("training stopped: {e}")))??;
    DirStore::new(folder.path().join("models")).put("demo", &model)?;
    let config = ServeConfig {
        listen: settings.listen.clone(),
        store: format!("sqlite://{}", folder.path().join("vigil.db").display()),
        models: folder.path().join("models"),
        model: "demo".into(),
        // Every step is whole: no waiting for late metrics.
        grace_ms: 0,
        ..ServeConfig::default()
    };
    let service = Service::start(config).await?;
    println!(
        "vigil serve --demo: {} entities replaying a generated machine with injected anomalies, \
         one step every {} ms, scored by {}.\n  http://{}/ui/               (the web UI: fleet, \
         entities, feedback)\n  http://{}/api/v1/entities   (each entity's newest \
         anomaly_score)\n  http://{}/metrics           (anomaly_score and per-metric contributions)\n\
         Ctrl-C stops it; its temporary folder {} goes with it.",
        settings.entities,
        settings.step_ms,
        settings.detector,
        service.address,
        service.address,
        service.address,
        folder.path().display()
    );
    let replay = tokio::spawn(replay(service.engine.clone(), machine.test, settings));
    let served = service.run(crate::server::signal()).await;
    replay.abort();
    drop(folder);
    served
}

/// Feeds entity `demo-k` the series from step `k * len / entities` on, round and round.
async fn replay(engine: Arc<Engine>, series: vigil_core::Series, settings: DemoSettings) {
    let (len, m) = (series.len(), series.metric_names.len());
    let mut ticker = tokio::time::interval(Duration::from_millis(settings.step_ms.max(1)));
    for step in 0.. {
        ticker.tick().await;
        let ts = now_ms();
        let batch: Vec<Series> = (0..settings.entities)
            .flat_map(|k| {
                let row = (step + k * len / settings.entities.max(1)) % len;
                let values = &series.values[row * m..(row + 1) * m];
                series
                    .metric_names
                    .iter()
                    .zip(values)
                    .map(move |(name, v)| Series {
                        labels: vec![
                            ("__name__".into(), name.clone()),
                            ("instance".into(), format!("demo-{k}")),
                            ("job".into(), "demo".into()),
                        ],
                        points: vec![(ts, *v)],
                    })
            })
            .collect();
        if let Err(e) = engine.ingest("default", batch).await {
            tracing::warn!(error = %e, "the demo's step was not taken");
        }
    }
}
