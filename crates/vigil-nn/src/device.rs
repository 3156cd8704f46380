//! The compute device of this process, and burn's process-wide generator of initial weights.

use burn::prelude::*;
use std::sync::OnceLock;

static DEVICE: OnceLock<Device> = OnceLock::new();

/// Sets the compute device for this process (`vigil_models::nn::select_device` chooses it by
/// name). Call once, before any model is built; later calls are no-ops.
pub fn set_device(device: Device) {
    let _ = DEVICE.set(device);
}

/// The device a module's parameters live on (the process's device for a module without any):
/// tensors fed to a network go where the network is, so that a model trained or loaded on one
/// device is scored there whatever the process default.
pub fn device_of<M: burn::module::Module>(module: &M) -> Device {
    module.devices().into_iter().next().unwrap_or_else(device)
}

/// burn draws initial weights from one generator per process (`Device::seed`). A fit seeds it
/// and builds its network while holding this lock, and so does every other build, so that two
/// fits at once start from the weights each would start from alone. (Only building draws from
/// it: the noise a fit draws while training comes from its own [`crate::Noise`].)
static BURN_GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `build` holding burn's process-wide generator alone, after seeding it with `seed`
/// (when given) on `device`. Not to be called from a rayon worker thread: a worker waiting
/// inside `build` could pick up another build and wait on itself.
pub fn with_burn_generator<T>(seed: Option<u64>, device: &Device, build: impl FnOnce() -> T) -> T {
    let _alone = BURN_GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(seed) = seed {
        device.seed(seed);
    }
    build()
}

/// The device given to [`set_device`], or the flex CPU device.
pub fn device() -> Device {
    DEVICE.get_or_init(Device::flex).clone()
}
