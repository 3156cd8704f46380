//! placeholder during development
pub mod gmm;
