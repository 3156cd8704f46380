//! Fused recurrent layers (LSTM, GRU): one burn operation per layer and sequence, with a
//! hand-written backward pass. See [`kernels`] for why and for the conventions.

mod extension;
mod inference;
pub mod kernels;

pub use extension::RecurrentBackend;
pub use inference::RecurrentWeights;
pub use kernels::Cell;
mod layer;

pub use layer::{Recurrent, RecurrentLayer};
