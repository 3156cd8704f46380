//! # vigil-models
//!
//! The [`Detector`] contract, the registry of detectors by name, models as values (weight
//! files, named tensors, bytes) and where they are kept (model directories, [`ModelStore`]),
//! the train/detect pipeline and the detectors themselves (one file each, config beside it).

pub mod allocator;
pub mod anomaly_transformer;
pub mod dagmm;
pub mod deep_svdd;
pub mod detector;
pub mod error;
pub mod experiment;
pub mod gdn;
pub mod gon;
pub mod iforest;
pub mod interfusion;
pub mod lstm_ndt;
pub mod memory;
pub mod model_bytes;
pub mod model_dir;
pub mod nn;
pub mod ocsvm;
pub mod omni_anomaly;
pub mod pca;
pub mod pipeline;
pub mod registry;
pub mod rnn_vae;
pub mod store;
pub mod stream_state;
pub mod threads;
pub mod tranad;
pub mod tune;
pub mod usad;
pub mod vae;
pub mod weights;

pub use detector::{
    Detector, EpochCallback, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores,
    Topology,
};
pub use error::{ModelError, Result};
pub use pipeline::{train, transfer, TrainSpec, TrainedModel, Transfer};
pub use store::{DirStore, MemoryStore, ModelStore};
pub use tune::{fine_tune, TuneSpec};
pub use weights::{NamedTensor, NamedTensors, WeightFiles};
