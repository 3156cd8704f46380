//! Parameters of a network: freezing groups, collecting ids, moving gradients, the optimiser.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

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
