//! `vigil serve`: the online service (crates/vigil-serve). Settings come from a TOML file
//! (`--config`, docs/serve.md); the flags here override its keys.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use vigil_serve::config::ThresholdSetting;
use vigil_serve::ServeConfig;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML settings (every key optional; docs/serve.md lists them).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:9470).
    #[arg(long)]
    pub listen: Option<String>,
    /// The durable store: `sqlite://FILE` (default `sqlite://vigil-serve.db`) or `postgres://...`.
    #[arg(long)]
    pub store: Option<String>,
    /// Folder of `NAME/VERSION/` model directories (default `models`).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Name of the model to serve (its newest version).
    #[arg(long)]
    pub model: Option<String>,
    /// Threshold rule by name (`auto`, `spot`, `dspot`, `pot`, `quantile`); default: the
    /// model's own, else `auto`.
    #[arg(long)]
    pub threshold: Option<String>,
    /// Run on generated data: a small fleet replays a generated machine with injected anomalies
    /// into the service (all in a temporary folder, removed at exit).
    #[arg(long)]
    pub demo: bool,
    /// With `--demo`: the detector trained for it.
    #[arg(long, default_value = "pca", requires = "demo")]
    pub demo_detector: String,
    /// With `--demo`: how many entities replay.
    #[arg(long, default_value_t = 4, requires = "demo")]
    pub demo_entities: usize,
    /// With `--demo`: milliseconds between two steps.
    #[arg(long, default_value_t = 500, requires = "demo")]
    pub demo_step_ms: u64,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logs();
    if args.demo {
        anyhow::ensure!(
            args.config.is_none() && args.store.is_none() && args.models.is_none() && args.model.is_none(),
            "--demo makes its own store and model: leave out --config, --store, --models and --model"
        );
        anyhow::ensure!(args.demo_entities > 0, "--demo-entities must be at least 1");
        let settings = vigil_serve::demo::DemoSettings {
            listen: args.listen.unwrap_or_else(|| ServeConfig::default().listen),
            detector: args.demo_detector,
            entities: args.demo_entities,
            step_ms: args.demo_step_ms,
        };
        return runtime()?
            .block_on(vigil_serve::demo::run(settings))
            .map_err(Into::into);
    }
    let mut config = match &args.config {
        Some(path) => ServeConfig::from_file(path)?,
        None => ServeConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(store) = args.store {
        config.store = store;
    }
    if let Some(models) = args.models {
        config.models = models;
    }
    if let Some(model) = args.model {
        config.model = model;
    }
    if let Some(threshold) = args.threshold {
        config.threshold = Some(ThresholdSetting::Name(threshold));
    }
    config.validate()?;
    let runtime = runtime()?;
    let served = runtime.block_on(vigil_serve::serve(config));
    // A retraining's fit may still run on a blocking thread after the stop: it is not waited
    // for past this (it writes nothing until its fit is done), while a model store write in
    // progress has the time to finish.
    runtime.shutdown_timeout(std::time::Duration::from_secs(30));
    served?;
    Ok(())
}

/// Structured logs on stderr, one JSON object a line; RUST_LOG chooses what (default info).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
