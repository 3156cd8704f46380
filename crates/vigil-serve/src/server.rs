//! Starting, running and stopping the service: the store opened and migrated, the model
//! loaded, streams restored, the scorer and the HTTP server run until a signal, then a
//! graceful stop (requests in flight answered, what is ready scored, the store closed).

use crate::config::ServeConfig;
use crate::engine::model::ServingModel;
use crate::engine::Engine;
use crate::error::{Result, ServeError};
use crate::store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// A started service: its engine and the address it listens on.
pub struct Service {
    pub engine: Arc<Engine>,
    pub address: SocketAddr,
    listener: tokio::net::TcpListener,
}

impl Service {
    /// Opens the store, loads the model, restores the streams and binds the address; nothing
    /// is served until [`Service::run`].
    pub async fn start(config: ServeConfig) -> Result<Service> {
        config.validate()?;
        let model = ServingModel::load(&config)?;
        let store = Store::open(&config.store).await?;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| ServeError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        let address = listener
            .local_addr()
            .map_err(|e| ServeError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        let engine = Engine::start(config, model, store).await?;
        Ok(Service {
            engine,
            address,
            listener,
        })
    }

    /// Serves until `shutdown` completes, then stops gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let scorer = tokio::spawn(self.engine.clone().run_scorer(stopped.clone()));
        let poller = tokio::spawn(poll_models(self.engine.clone(), stopped.clone()));
        let retrainer = tokio::spawn(crate::retrain::run(self.engine.clone(), stopped.clone()));
        let tuner = tokio::spawn(crate::tune::run(self.engine.clone(), stopped.clone()));
        let pullers: Vec<_> = self
            .engine
            .config
            .pull
            .iter()
            .map(|pull| {
                tokio::spawn(crate::ingest::pull::run(
                    pull.clone(),
                    self.engine.clone(),
                    stopped.clone(),
                ))
            })
            .collect();
        let app = crate::http::router(self.engine.clone());
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        // No request is in flight now: what is ready is scored, then the store is closed.
        let _ = stop.send(true);
        for puller in pullers {
            let _ = puller.await;
        }
        let _ = scorer.await;
        let _ = poller.await;
        // A retraining in progress is given up: its fit writes nothing (a new version is
        // written only after the fit, see `retrain`), and the next start retrains on schedule.
        retrainer.abort();
        tuner.abort();
        self.engine.outbound.finish().await;
        self.engine.store.close().await;
        served.map_err(|e| ServeError::Config(format!("the server stopped: {e}")))
    }
}

/// Checks the model store every `model_poll_s` seconds for a newer version (until `stop`).
async fn poll_models(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let every = engine.config.model_poll_s;
    if every == 0 {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(every)) => {}
            _ = stop.changed() => return,
        }
        match engine.reload(false).await {
            Ok(Some((from, to))) => tracing::info!(from, to, "a newer model version is in service"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "the newest model version cannot be served"),
        }
    }
}

/// Runs the service until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> Result<()> {
    let service = Service::start(config).await?;
    let model = service.engine.model();
    tracing::info!(address = %service.address, model = %model.id(), threshold = ?model.threshold, "vigil serve is listening");
    tracing::info!("the web UI is at http://{}/ui/", service.address);
    service.run(signal()).await
}

/// SIGINT (Ctrl-C) or SIGTERM, whichever comes first.
pub async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping: answering requests in flight, scoring what is ready");
}
