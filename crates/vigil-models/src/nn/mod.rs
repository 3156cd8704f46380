//! The neural side of the detector contract: `vigil-nn`'s building blocks (re-exported, so a
//! detector reaches everything neural as `nn::...`) plus what knows the contract — a fitted
//! network and its weight files (`fitted.rs`), parameters as named tensors (`named.rs`), the
//! training loop (`epochs.rs`), the windows a detector trains on (`windows.rs`), the authors'
//! validation split (`holdout.rs`) — and the choice of device by name.

mod epochs;
mod fitted;
pub(crate) mod holdout;
mod named;
mod windows;
pub use epochs::{descend, epoch_batches, step_decay, weighted_epoch_batches, Epochs};
pub use fitted::Fitted;
pub(crate) use fitted::{fitted_checkpoints, fitted_network};
pub use named::{export_module, import_module, materialise};
pub use vigil_nn::*;
pub use windows::TrainingWindows;

use crate::error::{ModelError, Result};
use burn::prelude::*;

/// Chooses the compute device for this process by name: `cpu` (burn's pure-Rust flex backend,
/// always built) or, when vigil is built with the matching cargo feature, `cuda` or `wgpu`.
/// Call once, before any model is built; later calls with the same name are no-ops.
pub fn select_device(name: &str) -> Result<()> {
    let device = match name {
        "cpu" | "flex" => Device::flex(),
        other => {
            return Err(ModelError::config(
                "device",
                format!("unknown or not-built device `{other}`; this build has `cpu` (rebuild with a GPU feature for others)"),
            ))
        }
    };
    set_device(device);
    Ok(())
}

/// Networks for the `nn` modules' own tests.
#[cfg(test)]
pub(crate) mod test_nets {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::prelude::*;

    /// Two dense layers, 3 → 2 → 1: the smallest network with two layer groups.
    #[derive(Module, Debug)]
    pub struct TwoLayers {
        pub first: Linear,
        pub second: Linear,
    }

    impl TwoLayers {
        pub fn new(device: &Device) -> TwoLayers {
            TwoLayers {
                first: LinearConfig::new(3, 2).init(device),
                second: LinearConfig::new(2, 1).init(device),
            }
        }
    }
}
