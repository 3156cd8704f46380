//! Detectors by name: build one from its config, list them with their defaults.

use crate::config::DetectorConfig;
use crate::detector::Detector;
use crate::detectors::anomaly_transformer::{AnomalyTransformer, AnomalyTransformerConfig};
use crate::detectors::anotuner::{Anotuner, AnotunerConfig};
use crate::detectors::dagmm::{Dagmm, DagmmConfig};
use crate::detectors::deep_svdd::{DeepSvdd, DeepSvddConfig};
use crate::detectors::gdn::{Gdn, GdnConfig};
use crate::detectors::gon::{Gon, GonConfig};
use crate::detectors::iforest::{Iforest, IforestConfig};
use crate::detectors::interfusion::{InterFusion, InterFusionConfig};
use crate::detectors::lstm_ndt::{LstmNdt, LstmNdtConfig};
use crate::detectors::mtad_fl::{MtadLocal, MtadLocalConfig, MtadTransfer, MtadTransferConfig};
use crate::detectors::ocsvm::{Ocsvm, OcsvmConfig};
use crate::detectors::omni_anomaly::{OmniAnomaly, OmniAnomalyConfig};
use crate::detectors::pca::{Pca, PcaConfig};
use crate::detectors::rnn_vae::{RnnVae, RnnVaeConfig};
use crate::detectors::topomad::{Topomad, TopomadConfig};
use crate::detectors::tranad::{Tranad, TranadConfig};
use crate::detectors::usad::{Usad, UsadConfig};
use crate::detectors::vae::{Vae, VaeConfig};
use crate::error::{ModelError, Result};
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
    /// Whether it learns from training labels as targets (a classifier): it needs labelled
    /// training data.
    pub supervised: bool,
}

/// The detector `vigil train` uses when none is named.
pub const DEFAULT_DETECTOR: &str = "pca";

/// One registered detector: its name and summary, its default config, how to build it and
/// its memory ladder.
struct Entry {
    name: &'static str,
    summary: &'static str,
    defaults: fn() -> serde_json::Value,
    build: fn(Option<&serde_json::Value>) -> Result<Box<dyn Detector>>,
    ladder: fn(Option<&serde_json::Value>) -> Result<Vec<serde_json::Value>>,
}

/// The registry: each detector once, as `type, config type, summary;` (its name is the
/// config's [`DetectorConfig::KIND`]).
macro_rules! registry {
    ($($detector:ty, $config:ty, $summary:expr;)*) => {
        const ENTRIES: &[Entry] = &[$(Entry {
            name: <$config>::KIND,
            summary: $summary,
            defaults: || <$config>::default().to_json(),
            build: |config| Ok(Box::new(<$detector>::new(<$config>::from_json(config)?)?)),
            ladder: ladder::<$config>,
        }),*];
    };
}

registry! {
    Pca, PcaConfig,
        "PCA reconstruction error (classical baseline)";
    Iforest, IforestConfig,
        "Isolation Forest (Liu, Ting & Zhou, ICDM 2008; classical baseline)";
    Ocsvm, OcsvmConfig,
        "one-class SVM, RBF kernel (Schölkopf et al., Neural Computation 2001; classical baseline)";
    Vae, VaeConfig,
        "dense VAE on windows, after Donut (Xu et al., WWW 2018; MTAD-FL's VAE baseline)";
    DeepSvdd, DeepSvddConfig,
        "Deep SVDD one-class hypersphere on windows (Ruff et al., ICML 2018; MTAD-FL's baseline)";
    Dagmm, DagmmConfig,
        "DAGMM autoencoder + Gaussian mixture energy (Zong et al., ICLR 2018)";
    Gon, GonConfig,
        "GON: one discriminator, generation by gradient steps on its input (Tuli et al., NeurIPS 2021 workshop)";
    Usad, UsadConfig,
        "USAD adversarial twin autoencoder (Audibert et al., KDD 2020)";
    Tranad, TranadConfig,
        "TranAD two-phase transformer reconstruction (Tuli et al., VLDB 2022)";
    RnnVae, RnnVaeConfig,
        "recurrent VAE in the spirit of OmniAnomaly's core (Su et al., KDD 2019)";
    OmniAnomaly, OmniAnomalyConfig,
        "OmniAnomaly: GRU + VAE with connected latents, state-space prior and planar flow (Su et al., KDD 2019)";
    LstmNdt, LstmNdtConfig,
        "LSTM-NDT's LSTM forecaster, absolute prediction error per metric (Hundman et al., KDD 2018; pair with `--threshold ndt`)";
    Gdn, GdnConfig,
        "GDN graph deviation network: learned sensor graph, attention forecasting, normalised deviation (Deng & Hooi, AAAI 2021)";
    AnomalyTransformer, AnomalyTransformerConfig,
        "Anomaly Transformer: anomaly-attention, association discrepancy, minimax training (Xu et al., ICLR 2022)";
    InterFusion, InterFusionConfig,
        "InterFusion: hierarchical VAE with temporal and inter-metric embeddings, MCMC imputation at scoring (Li et al., KDD 2021)";
    Anotuner, AnotunerConfig,
        "AnoTuner: CVAE conditioned on each window's STL trend and season, fine-tuned from feedback with the label-aware ELBO, false-negative augmentation and TSAL (Sun et al.)";
    MtadLocal, MtadLocalConfig,
        "MTAD-FL's Local model: supervised 1-D CNN classifier over the metrics, trained on labelled data (Hao et al., ICSOC 2023 workshops; needs training labels)";
    MtadTransfer, MtadTransferConfig,
        "MTAD-FL's Transfer model: the Local model's convolutions with squeeze-excitation and external attention, receives a peer's hidden layers by LGF-PKT (Hao et al.; needs training labels)";
    Topomad, TopomadConfig,
        "TopoMAD: graph-convolutional LSTM VAE over a system's components and call graph, scores per component localise the fault (He et al., TNNLS 2020; needs --topology)";
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
                supervised: detector.supervised(),
            }
        })
        .collect()
}

/// Builds an unfitted detector by name; `config` overrides defaults key by key.
pub fn build(name: &str, config: Option<&serde_json::Value>) -> Result<Box<dyn Detector>> {
    (entry(name)?.build)(config)
}

fn entry(name: &str) -> Result<&'static Entry> {
    match ENTRIES.iter().find(|e| e.name == name) {
        Some(entry) => Ok(entry),
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
/// detector, then each [`DetectorConfig::smaller`] down to the smallest. Every variant is
/// validated here.
pub fn memory_ladder(
    name: &str,
    config: Option<&serde_json::Value>,
) -> Result<Vec<serde_json::Value>> {
    (entry(name)?.ladder)(config)
}

fn ladder<C: DetectorConfig>(config: Option<&serde_json::Value>) -> Result<Vec<serde_json::Value>> {
    // A ladder halves something at each step, so it is short; the cap guards against a
    // config whose `smaller` never reaches the bottom.
    const MOST_RUNGS: usize = 32;
    let mut rung = C::from_json(config)?;
    rung.validate()?;
    let mut ladder = vec![rung.to_json()];
    while let Some(smaller) = rung.smaller() {
        if ladder.len() == MOST_RUNGS {
            break;
        }
        smaller.validate()?;
        ladder.push(smaller.to_json());
        rung = smaller;
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

    #[test]
    fn every_detector_names_each_field_out_of_range_with_its_range() {
        for info in detectors() {
            // Defaults are valid, and a detector's name is its config's KIND.
            let built = build(info.name, Some(&info.defaults)).unwrap();
            assert_eq!(built.kind(), info.name);
            let mut zero = info.defaults.clone();
            zero["window"] = 0.into();
            let trains_in_epochs = info.defaults.get("epochs").is_some();
            if trains_in_epochs {
                zero["epochs"] = 0.into();
            }
            let message = build(info.name, Some(&zero)).err().unwrap().to_string();
            let head = format!("invalid {} config: ", info.name);
            assert!(message.starts_with(&head), "{message}");
            assert!(message.contains("window must be at least"), "{message}");
            if trains_in_epochs {
                assert!(
                    message.contains("epochs must be at least 1, got 0"),
                    "{message}"
                );
            }
            // A count beyond any machine's memory is refused, not allocated.
            let mut huge = info.defaults.clone();
            huge["window"] = (crate::config::MOST_COUNT + 1).into();
            let message = build(info.name, Some(&huge)).err().unwrap().to_string();
            assert!(
                message.contains(&format!(
                    "window must be at most {}",
                    crate::config::MOST_COUNT
                )),
                "{message}"
            );
            let typo = serde_json::json!({"windwo": 3});
            let message = build(info.name, Some(&typo)).err().unwrap().to_string();
            assert!(message.contains("unknown field `windwo`"), "{message}");
        }
    }
}
