//! A burn module's parameters as [`NamedTensors`] and back: the module path of each float
//! parameter (`encoder.layers.0.weight`, batch-norm running statistics included) names its
//! values. Read and written in the form a checkpoint holds (burn's save/load transforms), so
//! named tensors and weight files agree.

use crate::error::{ModelError, Result};
use crate::weights::{NamedTensor, NamedTensors};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup};
use burn::prelude::*;

/// The float parameters of `module` whose path contains one of `groups` (all of them when
/// `groups` is empty), as named tensors.
pub fn export_module<M: Module>(module: &M, groups: &[String]) -> NamedTensors {
    let group = (!groups.is_empty()).then(|| ParamGroup::from_any_predicates(groups.to_vec()));
    collect(module, group, true)
}

/// Every float parameter of `module` in `group` (all without one), by path, in checkpoint
/// form; with `values` false only their shapes are read (the values are left empty).
fn collect<M: Module>(module: &M, group: Option<ParamGroup>, values: bool) -> NamedTensors {
    struct Collect {
        path: Vec<String>,
        group: Option<ParamGroup>,
        values: bool,
        out: NamedTensors,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let path = self.path.join(".");
            if let Some(group) = &self.group {
                if !group.matches(&param.id, Some(&path)) {
                    return;
                }
            }
            let tensor = param.transform_for_save().val();
            let shape = tensor.shape().to_vec();
            let values = if self.values {
                let data = tensor.into_data().convert::<f32>();
                data.try_into_vec::<f32>().expect("converted to f32")
            } else {
                Vec::new()
            };
            self.out.insert(path, NamedTensor { shape, values });
        }
    }
    let mut collect = Collect {
        path: Vec::new(),
        group,
        values,
        out: NamedTensors::new(),
    };
    module.visit(&mut collect);
    collect.out
}

/// The checkpoint (burnpack bytes) of a whole module: every float parameter under its path,
/// with a parameter id derived from the path. burn gives parameters (batch-norm statistics
/// among them) fresh ids whenever a network is built, and its own records store those ids, so
/// one model loaded twice would write different bytes; these bytes depend only on the values.
pub fn to_burnpack<M: Module>(module: &M) -> Result<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let tensors = export_module(module, &[])
        .into_iter()
        .map(|(path, t)| {
            let digest = Sha256::digest(path.as_bytes());
            let id = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
            let bytes = burn::tensor::Bytes::from_elems(t.values);
            burn_pack::Tensor::new(path, burn::tensor::DType::F32, t.shape, Some(id), bytes)
        })
        .collect();
    let bytes = burn_pack::Writer::new(tensors)
        .into_bytes()
        .map_err(|e| ModelError::Weights(format!("cannot encode the network: {e}")))?;
    Ok(bytes.to_vec())
}

/// `module` with the parameters named in `tensors` replaced by their values; the others are
/// kept. Each parameter keeps its id, device and whether it trains. Refused when a name
/// matches no parameter or a shape differs from the parameter's ([`check_import`] says so
/// before anything is taken).
pub fn import_module<M: Module>(module: M, tensors: &NamedTensors) -> Result<M> {
    check_import(&module, tensors)?;
    Ok(apply_import(module, tensors))
}

/// Succeeds when every one of `tensors` names a parameter of `module` and has its shape.
pub fn check_import<M: Module>(module: &M, tensors: &NamedTensors) -> Result<()> {
    crate::weights::check_shapes(tensors)?;
    let known = collect(module, None, false);
    for (name, t) in tensors {
        match known.get(name) {
            None => {
                return Err(ModelError::Shape(format!(
                    "tensor `{name}` names no parameter of this model; its parameters are: {}",
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
            Some(own) if own.shape != t.shape => {
                return Err(ModelError::Shape(format!(
                    "tensor `{name}` has shape {:?}, the model's parameter has {:?} (was it \
                     trained on other metrics or another config?)",
                    t.shape, own.shape
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn apply_import<M: Module>(module: M, tensors: &NamedTensors) -> M {
    struct Import<'a> {
        path: Vec<String>,
        tensors: &'a NamedTensors,
    }
    impl ModuleMapper for Import<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            match self.tensors.get(&self.path.join(".")) {
                None => param,
                Some(t) => {
                    let data = TensorData::new(t.values.clone(), t.shape.clone());
                    let tensor = Tensor::from_data(data, &param.lazy_device());
                    let id = param.id;
                    param.transform_for_load(tensor, id)
                }
            }
        }
    }
    module.map(&mut Import {
        path: Vec::new(),
        tensors,
    })
}

/// Draws every parameter's initial values now. burn initialises a parameter lazily, when it is
/// first read; a fit builds its network holding burn's generator alone
/// ([`super::with_burn_generator`]) and must draw them all before letting go of it.
pub fn materialise<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::test_nets::TwoLayers;

    fn two_layers(seed: u64) -> TwoLayers {
        let device = crate::nn::device();
        crate::nn::with_burn_generator(Some(seed), &device, || {
            let net = TwoLayers::new(&device);
            materialise(&net);
            net
        })
    }

    #[test]
    fn exports_every_parameter_by_path_and_a_group_alone() {
        let net = two_layers(1);
        let all = export_module(&net, &[]);
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["first.bias", "first.weight", "second.bias", "second.weight"]
        );
        assert_eq!(all["first.weight"].shape, vec![3, 2]);
        let first = export_module(&net, &["first".into()]);
        assert_eq!(first.len(), 2);
        assert_eq!(first["first.bias"], all["first.bias"]);
    }

    #[test]
    fn importing_a_group_changes_exactly_its_tensors() {
        let (donor, target) = (two_layers(1), two_layers(2));
        let before = export_module(&target, &[]);
        let moved = export_module(&donor, &["second".into()]);
        let after = export_module(&import_module(target, &moved).unwrap(), &[]);
        for (name, tensor) in &after {
            let want = moved.get(name).unwrap_or(&before[name]);
            assert_eq!(tensor, want, "{name}");
        }
        assert_ne!(after["second.weight"], before["second.weight"]);
    }

    #[test]
    fn refuses_unknown_names_and_wrong_shapes() {
        let mut tensors = export_module(&two_layers(1), &["first".into()]);
        let bad_shape = {
            let mut t = tensors.clone();
            t.get_mut("first.bias").unwrap().shape = vec![1, 2];
            t
        };
        let err = import_module(two_layers(2), &bad_shape).unwrap_err();
        assert!(err.to_string().contains("first.bias"), "{err}");
        tensors.insert(
            "third.weight".into(),
            NamedTensor {
                shape: vec![1],
                values: vec![0.0],
            },
        );
        let err = import_module(two_layers(2), &tensors).unwrap_err();
        assert!(err.to_string().contains("third.weight"), "{err}");
        assert!(err.to_string().contains("second.bias"), "{err}");
    }
}
