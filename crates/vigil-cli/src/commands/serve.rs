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
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
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
    // Structured logs on stderr, one JSON object a line; RUST_LOG chooses what (default info).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(vigil_serve::serve(config))?;
    Ok(())
}
