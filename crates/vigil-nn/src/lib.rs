//! Neural building blocks on burn, with no knowledge of detectors: the compute device, tensor
//! conversion, a dense MLP, parameter helpers, and the fused kernels that make vigil's training
//! and scoring fast — recurrent layers, attention, dense layers, softmax, the Gaussian
//! likelihood and the association discrepancy as burn backend extensions, plus the batched
//! scoring kernels (`infer`), gemm and run-time SIMD selection. Detectors (in `vigil-models`)
//! build on these; a detector's own fused op lives with the detector.

pub mod activations;
mod attention;
mod dense;
mod device;
pub mod discrepancy;
pub mod dropout;
pub mod fast_math;
pub mod flex_values;
pub mod gemm;
pub mod infer;
pub mod lanes;
pub mod likelihood;
mod mlp;
mod noise;
mod params;
pub mod rnn;
pub mod simd;
pub mod softmax;
mod tensors;

pub use activations::{sigmoid, tanh};
pub use attention::Attention;
pub use dense::dense;
pub use device::{device, device_of, set_device, with_burn_generator};
pub use dropout::{seed_dropout, Dropout};
pub use likelihood::{gaussian_nll, HALF_LOG_TWO_PI};
pub use mlp::{Activation, Mlp};
pub use noise::Noise;
pub use params::{accumulate_gradients, adam, freeze_groups, param_ids};
pub use tensors::{scalar, tensor2, tensor3, to_vec};
