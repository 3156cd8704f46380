//! One module per subcommand, plus the flags they share.

pub mod bench;
pub mod bench_fleet;
pub mod bench_journal;
pub mod demo;
pub mod detect;
pub mod eval;
pub mod fleet;
pub mod models;
pub mod plot;
pub mod ranking;
pub mod serve;
pub mod system;
pub mod thresholds;
pub mod train;
pub mod tune;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use vigil_core::threshold::ThresholdMethod;
use vigil_models::TrainSpec;

/// A TOML file that sets anything a flag sets; flags given on the command line win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    detector: Option<String>,
    seed: Option<u64>,
    epochs: Option<usize>,
    missing: Option<String>,
    normaliser: Option<String>,
    threshold: Option<String>,
    calibration_share: Option<f64>,
    recalibration_horizon: Option<usize>,
    /// Detector configuration overrides, e.g. `[detector_config]\nwindow = 10`.
    detector_config: Option<toml::Table>,
}

/// Flags that choose and configure the detector.
#[derive(Debug, Args, Clone)]
pub struct SpecArgs {
    /// Detector name (see `vigil models`).
    #[arg(long)]
    pub detector: Option<String>,
    /// TOML config file (keys: detector, seed, epochs, missing, normaliser, threshold, calibration_share, recalibration_horizon, [detector_config]).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed for every random choice.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the detector's number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Missing/NaN/Inf policy: `error` or `interpolate`.
    #[arg(long)]
    pub missing: Option<String>,
    /// Normaliser fitted on training data: `minmax`, `zscore`, `robust` (median/IQR, clipped) or `none`.
    #[arg(long)]
    pub normaliser: Option<String>,
    /// Label-free threshold: `auto` (default; `pot-batch` for `bench`), `spot`, `dspot`, `pot`, `pot-batch`, `ndt`, `quantile`; `best-f1` is an oracle.
    #[arg(long)]
    pub threshold: Option<String>,
    /// Share of the training series, at its end, held out of the fit and scored to calibrate
    /// the threshold on (0, the default: calibrate on the fitted steps; at most 0.5).
    #[arg(long)]
    pub calibration_share: Option<f64>,
    /// Steps after which a shift of the scores that persists becomes the new normal for the
    /// streaming rules (`auto`, `spot`, `dspot`): the rule is fitted again on them (0, the
    /// default: never).
    #[arg(long)]
    pub recalibration_horizon: Option<usize>,
}

impl SpecArgs {
    /// Resolves file + flags into a training spec and a threshold method.
    pub fn resolve(&self) -> anyhow::Result<(TrainSpec, ThresholdMethod)> {
        let (spec, method, _) = self.resolve_with("auto")?;
        Ok((spec, method))
    }

    /// Like [`Self::resolve`], with the threshold used when neither flag nor file names one;
    /// also returns the threshold's name.
    pub fn resolve_with(
        &self,
        default_threshold: &str,
    ) -> anyhow::Result<(TrainSpec, ThresholdMethod, String)> {
        let file: ConfigFile = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("config file {} is invalid", path.display()))?
            }
            None => ConfigFile::default(),
        };
        let mut spec = TrainSpec::default();
        if let Some(d) = self.detector.clone().or(file.detector) {
            spec.detector = d;
        }
        spec.seed = self.seed.or(file.seed).unwrap_or(0);
        spec.epochs = self.epochs.or(file.epochs);
        if let Some(m) = self.missing.clone().or(file.missing) {
            spec.missing = m.parse()?;
        }
        if let Some(n) = self.normaliser.clone().or(file.normaliser) {
            spec.normaliser = n.parse()?;
        }
        if let Some(share) = self.calibration_share.or(file.calibration_share) {
            spec.calibration_share = share;
        }
        if let Some(table) = file.detector_config {
            spec.config = Some(
                serde_json::to_value(table)
                    .context("detector_config is not representable as JSON")?,
            );
        }
        let threshold_name = self
            .threshold
            .clone()
            .or(file.threshold)
            .unwrap_or_else(|| default_threshold.into());
        let mut threshold: ThresholdMethod = threshold_name.parse()?;
        if let Some(horizon) = self.recalibration_horizon.or(file.recalibration_horizon) {
            threshold = threshold.with_horizon(horizon).with_context(|| {
                format!("--recalibration-horizon (config key recalibration_horizon) with threshold `{threshold_name}`")
            })?;
        }
        // Build once now so an unknown detector or a bad config fails before any work starts.
        spec.validate()?;
        vigil_models::registry::build(&spec.detector, spec.config.as_ref())?;
        Ok((spec, threshold, threshold_name))
    }
}
