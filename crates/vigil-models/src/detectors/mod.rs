//! The detector zoo: one file or folder per detector, each with its config beside it. A
//! detector implements [`crate::Detector`] and is listed once in [`crate::registry`]; what
//! detectors share (the network plumbing, training loop, fused kernels) lives in [`crate::nn`].

pub mod anomaly_transformer;
pub mod anotuner;
pub mod dagmm;
pub mod deep_svdd;
pub mod gdn;
pub mod gon;
pub mod iforest;
pub mod interfusion;
pub mod lstm_ndt;
pub mod mtad_fl;
pub mod ocsvm;
pub mod omni_anomaly;
pub mod pca;
pub mod rnn_vae;
pub mod topomad;
pub mod tranad;
pub mod usad;
pub mod vae;
