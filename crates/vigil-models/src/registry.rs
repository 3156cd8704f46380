//! Detectors by name: build one from its config, list them with their defaults.

use crate::anomaly_transformer::{AnomalyTransformer, AnomalyTransformerConfig};
use crate::dagmm::{Dagmm, DagmmConfig};
use crate::deep_svdd::{DeepSvdd, DeepSvddConfig};
use crate::detector::Detector;
use crate::error::{ModelError, Result};
use crate::gdn::{Gdn, GdnConfig};
use crate::gon::{Gon, GonConfig};
use crate::iforest::{Iforest, IforestConfig};
use crate::interfusion::{InterFusion, InterFusionConfig};
use crate::lstm_ndt::{LstmNdt, LstmNdtConfig};
use crate::ocsvm::{Ocsvm, OcsvmConfig};
use crate::omni_anomaly::{OmniAnomaly, OmniAnomalyConfig};
use crate::pca::{Pca, PcaConfig};
use crate::rnn_vae::{RnnVae, RnnVaeConfig};
use crate::tranad::{Tranad, TranadConfig};
use crate::usad::{Usad, UsadConfig};
use crate::vae::{Vae, VaeConfig};
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
}

/// The detector `vigil train` uses when none is named.
pub const DEFAULT_DETECTOR: &str = "pca";

fn defaults<C: Default + Serialize>() -> serde_json::Value {
    serde_json::to_value(C::default()).expect("configs serialise")
}

/// Every registered detector.
pub fn detectors() -> Vec<DetectorInfo> {
    vec![
        DetectorInfo {
            name: "pca",
            summary: "PCA reconstruction error (classical baseline)",
            defaults: defaults::<PcaConfig>(),
        },
        DetectorInfo {
            name: "iforest",
            summary: "Isolation Forest (Liu, Ting & Zhou, ICDM 2008; classical baseline)",
            defaults: defaults::<IforestConfig>(),
        },
        DetectorInfo {
            name: "ocsvm",
            summary: "one-class SVM, RBF kernel (Schölkopf et al., Neural Computation 2001; classical baseline)",
            defaults: defaults::<OcsvmConfig>(),
        },
        DetectorInfo {
            name: "vae",
            summary:
                "dense VAE on windows, after Donut (Xu et al., WWW 2018; MTAD-FL's VAE baseline)",
            defaults: defaults::<VaeConfig>(),
        },
        DetectorInfo {
            name: "deep-svdd",
            summary: "Deep SVDD one-class hypersphere on windows (Ruff et al., ICML 2018; MTAD-FL's baseline)",
            defaults: defaults::<DeepSvddConfig>(),
        },
        DetectorInfo {
            name: "dagmm",
            summary: "DAGMM autoencoder + Gaussian mixture energy (Zong et al., ICLR 2018)",
            defaults: defaults::<DagmmConfig>(),
        },
        DetectorInfo {
            name: "gon",
            summary: "GON: one discriminator, generation by gradient steps on its input (Tuli et al., NeurIPS 2021 workshop)",
            defaults: defaults::<GonConfig>(),
        },
        DetectorInfo {
            name: "usad",
            summary: "USAD adversarial twin autoencoder (Audibert et al., KDD 2020)",
            defaults: defaults::<UsadConfig>(),
        },
        DetectorInfo {
            name: "tranad",
            summary: "TranAD two-phase transformer reconstruction (Tuli et al., VLDB 2022)",
            defaults: defaults::<TranadConfig>(),
        },
        DetectorInfo {
            name: "rnn-vae",
            summary: "recurrent VAE in the spirit of OmniAnomaly's core (Su et al., KDD 2019)",
            defaults: defaults::<RnnVaeConfig>(),
        },
        DetectorInfo {
            name: "omni-anomaly",
            summary: "OmniAnomaly: GRU + VAE with connected latents, state-space prior and planar flow (Su et al., KDD 2019)",
            defaults: defaults::<OmniAnomalyConfig>(),
        },
        DetectorInfo {
            name: "lstm-ndt",
            summary: "LSTM-NDT's LSTM forecaster, absolute prediction error per metric (Hundman et al., KDD 2018; pair with `--threshold ndt`)",
            defaults: defaults::<LstmNdtConfig>(),
        },
        DetectorInfo {
            name: "gdn",
            summary: "GDN graph deviation network: learned sensor graph, attention forecasting, normalised deviation (Deng & Hooi, AAAI 2021)",
            defaults: defaults::<GdnConfig>(),
        },
        DetectorInfo {
            name: "anomaly-transformer",
            summary: "Anomaly Transformer: anomaly-attention, association discrepancy, minimax training (Xu et al., ICLR 2022)",
            defaults: defaults::<AnomalyTransformerConfig>(),
        },
        DetectorInfo {
            name: "interfusion",
            summary: "InterFusion: hierarchical VAE with temporal and inter-metric embeddings, MCMC imputation at scoring (Li et al., KDD 2021)",
            defaults: defaults::<InterFusionConfig>(),
        },
    ]
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
    Ok(match name {
        "pca" => Box::new(Pca::new(parse(name, config)?)?),
        "iforest" => Box::new(Iforest::new(parse(name, config)?)?),
        "ocsvm" => Box::new(Ocsvm::new(parse(name, config)?)?),
        "vae" => Box::new(Vae::new(parse(name, config)?)?),
        "deep-svdd" => Box::new(DeepSvdd::new(parse(name, config)?)?),
        "dagmm" => Box::new(Dagmm::new(parse(name, config)?)?),
        "gon" => Box::new(Gon::new(parse(name, config)?)?),
        "usad" => Box::new(Usad::new(parse(name, config)?)?),
        "tranad" => Box::new(Tranad::new(parse(name, config)?)?),
        "rnn-vae" => Box::new(RnnVae::new(parse(name, config)?)?),
        "omni-anomaly" => Box::new(OmniAnomaly::new(parse(name, config)?)?),
        "lstm-ndt" => Box::new(LstmNdt::new(parse(name, config)?)?),
        "gdn" => Box::new(Gdn::new(parse(name, config)?)?),
        "anomaly-transformer" => Box::new(AnomalyTransformer::new(parse(name, config)?)?),
        "interfusion" => Box::new(InterFusion::new(parse(name, config)?)?),
        other => {
            return Err(ModelError::UnknownDetector {
                name: other.to_string(),
                known: detectors()
                    .iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    })
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
