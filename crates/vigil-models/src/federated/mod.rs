//! The server-side arithmetic of federated training over named tensors
//! ([`crate::weights::NamedTensors`], what [`crate::Detector::export_tensors`] gives): no
//! transport here. Flower's apps (python/vigil/federated) and the in-process benchmark call the
//! same functions, so a round computes the same result wherever it runs.
//!
//! - [`average`]: FedAvg (McMahan et al.), each node's tensors weighted by its example count.
//! - [`distance`] and [`peers`]: LGF-PKT (MTAD-FL §3.4): the distance between two nodes'
//!   hidden layers, and for every node the ranking of its peers, the most similar first.

pub mod average;
pub mod distance;
pub mod peers;

pub use average::federated_average;
pub use distance::{hidden_distance, DistanceKind};
pub use peers::{rank_peers, PeerRanking};

/// Bad input to a federated computation (a caller's mistake, not a failed fit): Python raises
/// `ValueError` for it.
fn invalid(message: impl Into<String>) -> crate::error::ModelError {
    crate::error::ModelError::Core(vigil_core::CoreError::invalid(message.into()))
}
