//! # vigil-core
//!
//! The data side of vigil, free of any deep-learning dependency: [`Series`] and its readers,
//! cleaning, normalisation, sliding windows, synthetic fleets, thresholds and evaluation metrics.
//!
//! The flow is one-directional:
//! `read -> clean -> normalise (fitted on train) -> windows -> (detector) -> scores -> threshold -> metrics`.

pub mod archetypes;
pub mod clean;
pub mod error;
pub mod metrics;
pub mod microservices;
pub mod normalise;
pub mod read;
pub mod series;
pub mod synth;
pub mod threshold;
pub mod topology;
pub mod validate;
pub mod window;
pub mod write;

pub use error::{CoreError, Result};
pub use series::{Dataset, Entity, Interpretation, Series, Source};
