//! # vigil-models
//!
//! The [`Detector`] contract, the registry of detectors by name, models as values (weight
//! files, named tensors, bytes) and where they are kept (model directories, [`ModelStore`]),
//! the train/detect pipeline, and the detectors themselves ([`detectors`]: one file or folder
//! each, config beside it).

pub mod allocator;
pub mod config;
pub mod detector;
pub mod detectors;
pub mod error;
pub mod experiment;
pub mod federated;
pub mod hac;
pub mod memory;
pub mod model_bytes;
pub mod model_dir;
pub mod nn;
pub mod pipeline;
pub mod registry;
pub mod store;
pub mod stream_state;
pub mod threads;
pub mod tune;
pub mod weights;

pub use detector::{
    Detector, EpochCallback, FitOptions, FitSummary, LayerGroup, LayerRole, MtsInput, Scores,
    Topology,
};
pub use error::{ModelError, Result};
pub use pipeline::{train, transfer, transfer_from, TrainSpec, TrainedModel, Transfer};
pub use store::{DirStore, MemoryStore, ModelStore};
pub use tune::{fine_tune, TuneSpec};
pub use weights::{NamedTensor, NamedTensors, WeightFiles};
