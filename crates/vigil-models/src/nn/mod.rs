//! Shared neural building blocks on burn: the compute device, tensor conversion, seeded
//! mini-batching, a dense MLP, and parameters as named tensors (checkpoints, transfer, federation).

pub(crate) mod activations;
mod attention;
mod dense;
pub mod discrepancy;
pub(crate) mod dropout;
mod epochs;
pub(crate) mod fast_math;
mod fitted;
pub(crate) mod flex_values;
pub(crate) mod gemm;
pub(crate) mod holdout;
pub mod infer;
pub(crate) mod lanes;
pub mod likelihood;
mod named;
mod noise;
pub mod rnn;
pub(crate) mod simd;
pub mod softmax;
mod windows;
pub use activations::{sigmoid, tanh};
pub use attention::Attention;
pub use dense::dense;
pub use dropout::{seed_dropout, Dropout};
pub use epochs::{descend, epoch_batches, step_decay, Epochs};
pub use fitted::Fitted;
pub(crate) use fitted::{fitted_checkpoints, fitted_network};
pub use named::{export_module, import_module};
pub use noise::Noise;
pub use windows::TrainingWindows;

use crate::error::{ModelError, Result};
use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use std::sync::OnceLock;

static DEVICE: OnceLock<Device> = OnceLock::new();

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
    let _ = DEVICE.set(device);
    Ok(())
}

/// burn draws initial weights from one generator per process (`Device::seed`). A fit seeds it
/// and builds its network while holding this lock, and so does every other build, so that two
/// fits at once start from the weights each would start from alone. (Only building draws from
/// it: the noise a fit draws while training comes from its own [`Noise`].)
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

/// The device chosen by [`select_device`], or the flex CPU device.
pub fn device() -> Device {
    DEVICE.get_or_init(Device::flex).clone()
}

/// A `rows x cols` tensor from row-major values.
pub fn tensor2(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// A `batch x window x metrics` tensor from row-major windows.
pub fn tensor3(
    values: Vec<f32>,
    batch: usize,
    window: usize,
    metrics: usize,
    device: &Device,
) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, [batch, window, metrics]), device)
}

/// The values of a tensor, row-major.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("float tensors hold f32 in vigil")
}

/// The mean of a scalar-valued tensor as f64.
pub fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t).first().copied().unwrap_or(f32::NAN) as f64
}

/// ½ ln 2π, the constant of a Gaussian's negative log-density.
pub const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_7;

/// Negative log-density of `x` under N(mean, std²), element-wise (the likelihood of the VAEs).
pub fn gaussian_nll<const D: usize>(x: Tensor<D>, mean: Tensor<D>, std: Tensor<D>) -> Tensor<D> {
    let z = (x - mean) / std.clone();
    std.log() + z.square().mul_scalar(0.5) + HALF_LOG_TWO_PI
}

/// Activation applied after a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// (e^x - e^-x) / (e^x + e^-x).
    Tanh,
    /// Identity.
    Linear,
}

/// A stack of dense layers with ReLU between them and a chosen output activation.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// Layers `sizes[0] -> sizes[1] -> ... -> sizes[n]`.
    pub fn new(sizes: &[usize], device: &Device) -> Mlp {
        Mlp {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
        }
    }

    /// Like [`Mlp::new`] but without bias terms (Deep SVDD needs them gone: with biases the
    /// network can map everything onto its centre and the loss collapses to zero).
    pub fn without_bias(sizes: &[usize], device: &Device) -> Mlp {
        Mlp {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).with_bias(false).init(device))
                .collect(),
        }
    }

    /// Forward pass: ReLU after every hidden layer, `output` after the last.
    pub fn forward(&self, mut x: Tensor<2>, output: Activation) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = dense(layer, x, if i == last { output } else { Activation::Relu });
        }
        x
    }
}

/// Freezes the parameters whose module path contains one of `groups`.
pub fn freeze_groups<M: Module>(module: M, groups: &[String]) -> M {
    if groups.is_empty() {
        module
    } else {
        module.freeze_group(ParamGroup::from_any_predicates(groups.to_vec()))
    }
}

/// The ids of every float parameter of `modules`, to give an optimiser gradients of some layers only.
pub fn param_ids<M: Module>(modules: &[&M]) -> Vec<ParamId> {
    struct Collect(Vec<ParamId>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id);
        }
    }
    let mut collect = Collect(Vec::new());
    for m in modules {
        m.visit(&mut collect);
    }
    collect.0
}

/// Moves the gradients of `module`'s parameters from `from` into `into`, adding them to any
/// gradient `into` already holds for the same parameter. Training loops that must reproduce a
/// reference implementation's gradient accumulation (PyTorch keeps `.grad` until the owning
/// optimiser zeroes it) carry a parameter's leftover gradient to its next optimiser step with this.
pub fn accumulate_gradients<M: Module>(
    module: &M,
    from: &mut GradientsParams,
    into: &mut GradientsParams,
) {
    struct Merge<'a> {
        from: &'a mut GradientsParams,
        into: &'a mut GradientsParams,
    }
    impl ModuleVisitor for Merge<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(extra) = self.from.remove::<D>(param.id) {
                let sum = match self.into.remove::<D>(param.id) {
                    Some(own) => own + extra,
                    None => extra,
                };
                self.into.register::<D>(param.id, sum);
            }
        }
    }
    module.visit(&mut Merge { from, into });
}

/// Adam with PyTorch's defaults (β = 0.9, 0.999, ε = 1e-8). burn's default ε is 1e-5, which
/// swamps the small gradients some of our losses produce on purpose (USAD scales reconstruction
/// by 1/epoch) and stalls training where the papers' PyTorch code keeps learning.
pub fn adam() -> burn::optim::AdamConfig {
    burn::optim::AdamConfig::new().with_epsilon(1e-8)
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
