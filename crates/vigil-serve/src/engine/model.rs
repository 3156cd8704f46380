//! The model in service: loaded from the model store with the threshold rule it is judged by.

use crate::config::ServeConfig;
use crate::error::{Result, ServeError};
use vigil_core::threshold::{decide, StreamRuleState, ThresholdMethod};
use vigil_models::{DirStore, ModelStore, TrainedModel};

pub struct ServingModel {
    pub name: String,
    pub version: u64,
    pub model: TrainedModel,
    pub threshold: ThresholdMethod,
    /// What the rule learnt from the calibration scores, fitted once for every stream: the
    /// state a new stream starts from (SPOT, DSPOT, `auto`), or the constant threshold of a
    /// rule that keeps no state (POT, quantile). Fitting per stream cost each new entity a GPD
    /// fit, and POT one per scored claim.
    pub start: RuleStart,
}

/// How a stream's threshold starts.
#[derive(Debug, Clone)]
pub enum RuleStart {
    // Boxed: a rule's state is some 300 bytes, a constant 8.
    State(Box<StreamRuleState>),
    Constant(f64),
}

impl ServingModel {
    /// The newest version of the configured model, with the configured rule, else the rule
    /// stored with the model at training, else `auto`. A model or rule that cannot score a
    /// stream is refused here, before the service starts.
    pub fn load(config: &ServeConfig) -> Result<ServingModel> {
        let store = DirStore::new(&config.models);
        let versions = store.versions(&config.model).map_err(|e| {
            ServeError::Config(format!("model store {}: {e}", config.models.display()))
        })?;
        let Some(&version) = versions.last() else {
            return Err(ServeError::Config(format!(
                "model store {} has no model `{}`; train one with `vigil train --output {}/{}/1` \
                 or name another with `model = \"...\"`",
                config.models.display(),
                config.model,
                config.models.display(),
                config.model
            )));
        };
        let model = store.get(&config.model, Some(version)).map_err(|e| {
            ServeError::Config(format!(
                "model `{}` version {version} in {} cannot be loaded: {e}",
                config.model,
                config.models.display()
            ))
        })?;
        ServingModel::from_trained(config, version, model)
    }

    /// `model` as version `version` of the configured model, with its rule fitted: what
    /// [`ServingModel::load`] makes of a stored version, and a retraining of one it has not
    /// stored yet (so that a version that could not be served is never written).
    pub fn from_trained(
        config: &ServeConfig,
        version: u64,
        model: TrainedModel,
    ) -> Result<ServingModel> {
        let threshold = match &config.threshold {
            Some(setting) => setting.method()?,
            None => {
                let stored = model
                    .manifest
                    .threshold
                    .unwrap_or(ThresholdMethod::Auto(Default::default()));
                crate::config::ThresholdSetting::Rule(stored).method().map_err(|e| {
                    ServeError::Config(format!(
                        "the model's own rule cannot judge a stream ({e}); set `threshold` in the config"
                    ))
                })?
            }
        };
        let calibration = &model.calibration;
        let refused = |e: vigil_core::CoreError| ServeError::Config(format!("threshold: {e}"));
        let start = match threshold {
            ThresholdMethod::Spot(_) | ThresholdMethod::Dspot(_) | ThresholdMethod::Auto(_) => {
                RuleStart::State(Box::new(
                    StreamRuleState::fit(threshold, calibration).map_err(refused)?,
                ))
            }
            // A rule without stream state: its threshold is the same for every point.
            _ => RuleStart::Constant(
                decide(threshold, calibration, &[0.0], None)
                    .map_err(refused)?
                    .thresholds[0],
            ),
        };
        Ok(ServingModel {
            name: config.model.clone(),
            version,
            model,
            threshold,
            start,
        })
    }

    /// `name@version`, as scores and states record it.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    pub fn metrics(&self) -> &[String] {
        &self.model.manifest.metric_names
    }

    pub fn window(&self) -> usize {
        self.model.detector.window().max(1)
    }
}
