//! Detectors by name: build one from its config, list them with their defaults.

use crate::detector::Detector;
use crate::detectors::anomaly_transformer::{AnomalyTransformer, AnomalyTransformerConfig};
use crate::detectors::dagmm::{Dagmm, DagmmConfig};
use crate::detectors::deep_svdd::{DeepSvdd, DeepSvddConfig};
use crate::detectors::gdn::{Gdn, GdnConfig};
use crate::detectors::gon::{Gon, GonConfig};
use crate::detectors::iforest::{Iforest, IforestConfig};
use crate::detectors::interfusion::{InterFusion, InterFusionConfig};
use crate::detectors::lstm_ndt::{LstmNdt, LstmNdtConfig};
use crate::detectors::ocsvm::{Ocsvm, OcsvmConfig};
use crate::detectors::omni_anomaly::{OmniAnomaly, OmniAnomalyConfig};
use crate::detectors::pca::{Pca, PcaConfig};
use crate::detectors::rnn_vae::{RnnVae, RnnVaeConfig};
use crate::detectors::tranad::{Tranad, TranadConfig};
use crate::detectors::usad::{Usad, UsadConfig};
use crate::detectors::vae::{Vae, VaeConfig};
use crate::error::{ModelError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A registered detector: its name, a one-line description and its default config.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorInfo {
    /// Registry name.
    pub name: &'static str,
    /// What it is, with its paper.
    pub summary: &'static str,
    /// Default configuration (every key it accepts).
    pub defaults: serde_json::Value,
    /// Its layer groups (what transfer and fine-tuning can move or freeze); none for classical
    /// detectors.
    pub layer_groups: Vec<crate::detector::LayerGroup>,
    /// Whether `vigil tune` can fine-tune it (with labels).
    pub fine_tunes: bool,
}

/// The detector `vigil train` uses when none is named.
pub const DEFAULT_DETECTOR: &str = "pca";

fn defaults<C: Default + Serialize>() -> serde_json::Value {
    serde_json::to_value(C::default()).expect("configs serialise")
}

/// One registered detector: its name and summary, its default config, and how to build it.
struct Entry {
    name: &'static str,
    summary: &'static str,
    defaults: fn() -> serde_json::Value,
    build: fn(Option<&serde_json::Value>) -> Result<Box<dyn Detector>>,
}

/// The registry: each detector once, as `name => type, config type, summary;`.
macro_rules! registry {
    ($($name:literal => $detector:ty, $config:ty, $summary:expr;)*) => {
        const ENTRIES: &[Entry] = &[$(Entry {
            name: $name,
            summary: $summary,
            defaults: defaults::<$config>,
            build: |config| Ok(Box::new(<$detector>::new(parse::<$config>($name, config)?)?)),
        }),*];
    };
}

registry! {
    "pca" => Pca, PcaConfig,
        "PCA reconstruction error (classical baseline)";
    "iforest" => Iforest, IforestConfig,
        "Isolation Forest (Liu, Ting & Zhou, ICDM 2008; classical baseline)";
    "ocsvm" => Ocsvm, OcsvmConfig,
        "one-class SVM, RBF kernel (Schölkopf et al., Neural Computation 2001; classical baseline)";
    "vae" => Vae, VaeConfig,
        "dense VAE on windows, after Donut (Xu et al., WWW 2018; MTAD-FL's VAE baseline)";
    "deep-svdd" => DeepSvdd, DeepSvddConfig,
        "Deep SVDD one-class hypersphere on windows (Ruff et al., ICML 2018; MTAD-FL's baseline)";
    "dagmm" => Dagmm, DagmmConfig,
        "DAGMM autoencoder + Gaussian mixture energy (Zong et al., ICLR 2018)";
    "gon" => Gon, GonConfig,
        "GON: one discriminator, generation by gradient steps on its input (Tuli et al., NeurIPS 2021 workshop)";
    "usad" => Usad, UsadConfig,
        "USAD adversarial twin autoencoder (Audibert et al., KDD 2020)";
    "tranad" => Tranad, TranadConfig,
        "TranAD two-phase transformer reconstruction (Tuli et al., VLDB 2022)";
    "rnn-vae" => RnnVae, RnnVaeConfig,
        "recurrent VAE in the spirit of OmniAnomaly's core (Su et al., KDD 2019)";
    "omni-anomaly" => OmniAnomaly, OmniAnomalyConfig,
        "OmniAnomaly: GRU + VAE with connected latents, state-space prior and planar flow (Su et al., KDD 2019)";
    "lstm-ndt" => LstmNdt, LstmNdtConfig,
        "LSTM-NDT's LSTM forecaster, absolute prediction error per metric (Hundman et al., KDD 2018; pair with `--threshold ndt`)";
    "gdn" => Gdn, GdnConfig,
        "GDN graph deviation network: learned sensor graph, attention forecasting, normalised deviation (Deng & Hooi, AAAI 2021)";
    "anomaly-transformer" => AnomalyTransformer, AnomalyTransformerConfig,
        "Anomaly Transformer: anomaly-attention, association discrepancy, minimax training (Xu et al., ICLR 2022)";
    "interfusion" => InterFusion, InterFusionConfig,
        "InterFusion: hierarchical VAE with temporal and inter-metric embeddings, MCMC imputation at scoring (Li et al., KDD 2021)";
}

/// Every registered detector.
pub fn detectors() -> Vec<DetectorInfo> {
    ENTRIES
        .iter()
        .map(|e| {
            let detector = (e.build)(None).expect("every detector builds with its defaults");
            DetectorInfo {
                name: e.name,
                summary: e.summary,
                defaults: (e.defaults)(),
                layer_groups: detector.layer_groups(),
                fine_tunes: detector.continues_training(),
            }
        })
        .collect()
}

fn parse<C: DeserializeOwned + Default>(
    name: &str,
    config: Option<&serde_json::Value>,
) -> Result<C> {
    match config {
        None => Ok(C::default()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| ModelError::config(name, e.to_string()))
        }
    }
}

/// Builds an unfitted detector by name; `config` overrides defaults key by key.
pub fn build(name: &str, config: Option<&serde_json::Value>) -> Result<Box<dyn Detector>> {
    match ENTRIES.iter().find(|e| e.name == name) {
        Some(entry) => (entry.build)(config),
        None => Err(ModelError::UnknownDetector {
            name: name.to_string(),
            known: ENTRIES
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The variants `vigil train --memory-budget` may train, largest first: the configured
/// detector, then each [`Detector::smaller_config`] down to the smallest. Every variant is
/// built (so validated) here.
pub fn memory_ladder(
    name: &str,
    config: Option<&serde_json::Value>,
) -> Result<Vec<serde_json::Value>> {
    // A ladder halves something at each step, so it is short; the cap guards against a
    // detector whose smaller_config never reaches the bottom.
    const MOST_RUNGS: usize = 32;
    let mut detector = build(name, config)?;
    let mut ladder = vec![detector.config_json()];
    while let Some(smaller) = detector.smaller_config() {
        if ladder.len() == MOST_RUNGS {
            break;
        }
        detector = build(name, Some(&smaller))?;
        ladder.push(smaller);
    }
    Ok(ladder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_ladder_starts_at_the_configured_detector_and_only_shrinks() {
        let gon = memory_ladder("gon", Some(&serde_json::json!({"hidden": [16, 16]}))).unwrap();
        assert_eq!(gon[0]["hidden"], serde_json::json!([16, 16]));
        assert_eq!(gon[0]["batch_size"], 64);
        let last = gon.last().unwrap();
        assert_eq!(last["hidden"], serde_json::json!([4]));
        for pair in gon.windows(2) {
            let size = |c: &serde_json::Value| {
                let hidden: u64 = c["hidden"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_u64().unwrap())
                    .sum();
                (hidden, c["batch_size"].as_u64().unwrap())
            };
            let (big, small) = (size(&pair[0]), size(&pair[1]));
            assert!(
                small.0 <= big.0 && small.1 <= big.1 && small != big,
                "{big:?} -> {small:?}"
            );
        }
        // The default halves the batch; a detector without one has a ladder of one.
        let usad = memory_ladder("usad", None).unwrap();
        assert_eq!(usad.last().unwrap()["batch_size"], 8);
        assert_eq!(memory_ladder("pca", None).unwrap().len(), 1);
    }
}
