//! FedAvg: the weighted mean of several nodes' tensors.

use crate::error::{ModelError, Result};
use crate::weights::{NamedTensor, NamedTensors};

/// The mean of `models` weighted by `weights` (each node's example count, FedAvg's weighting):
/// every model must name the same tensors with the same shapes, and the weights must be finite,
/// not negative, and not all zero. Sums run in f64 so that the order of the nodes barely matters.
pub fn federated_average(models: &[NamedTensors], weights: &[f64]) -> Result<NamedTensors> {
    let first = models
        .first()
        .ok_or_else(|| super::invalid("FedAvg over no models; give at least one"))?;
    if weights.len() != models.len() {
        return Err(ModelError::Shape(format!(
            "FedAvg got {} models and {} weights; give one weight (example count) per model",
            models.len(),
            weights.len()
        )));
    }
    if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
        return Err(super::invalid(format!(
            "FedAvg weight {w} is not a finite count of zero or more"
        )));
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Err(super::invalid(
            "FedAvg weights are all zero: no node trained on any example",
        ));
    }
    for (i, model) in models.iter().enumerate().skip(1) {
        check_same_layout(first, model, i)?;
    }
    for (i, model) in models.iter().enumerate() {
        if let Some((name, _)) = model
            .iter()
            .find(|(_, t)| t.values.iter().any(|v| !v.is_finite()))
        {
            return Err(super::invalid(format!(
                "tensor {name} of model {i} holds a value that is not finite; that node's \
                 training diverged"
            )));
        }
    }
    Ok(first
        .iter()
        .map(|(name, tensor)| {
            let mut sum = vec![0.0f64; tensor.values.len()];
            for (model, w) in models.iter().zip(weights) {
                for (s, v) in sum.iter_mut().zip(&model[name].values) {
                    *s += w * f64::from(*v);
                }
            }
            let values = sum.into_iter().map(|s| (s / total) as f32).collect();
            let averaged = NamedTensor {
                shape: tensor.shape.clone(),
                values,
            };
            (name.clone(), averaged)
        })
        .collect())
}

/// Refuses a model whose tensor names or shapes differ from the first one's, naming the first
/// difference.
pub(crate) fn check_same_layout(
    first: &NamedTensors,
    other: &NamedTensors,
    i: usize,
) -> Result<()> {
    let names = |m: &NamedTensors| m.keys().cloned().collect::<Vec<_>>();
    if names(first) != names(other) {
        let missing: Vec<_> = first.keys().filter(|k| !other.contains_key(*k)).collect();
        let extra: Vec<_> = other.keys().filter(|k| !first.contains_key(*k)).collect();
        return Err(ModelError::Shape(format!(
            "model {i} names other tensors than model 0 (missing {missing:?}, extra {extra:?}); \
             every node must train the same detector with the same config"
        )));
    }
    for (name, tensor) in first {
        if other[name].shape != tensor.shape {
            return Err(ModelError::Shape(format!(
                "tensor {name} has shape {:?} in model {i} and {:?} in model 0; every node \
                 must train the same detector with the same config on as many metrics",
                other[name].shape, tensor.shape
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(values: &[f32]) -> NamedTensors {
        let mut m = NamedTensors::new();
        m.insert(
            "layer.weight".into(),
            NamedTensor {
                shape: vec![values.len()],
                values: values.to_vec(),
            },
        );
        m
    }

    #[test]
    fn the_average_weighs_each_model_by_its_examples() {
        let avg =
            federated_average(&[model(&[0.0, 4.0]), model(&[3.0, 8.0])], &[1.0, 3.0]).unwrap();
        assert_eq!(avg["layer.weight"].values, [2.25, 7.0]);
        assert_eq!(avg["layer.weight"].shape, [2]);
    }

    #[test]
    fn models_of_other_layouts_or_bad_weights_are_refused_by_name() {
        let why = federated_average(&[model(&[0.0, 4.0]), model(&[3.0])], &[1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(why.contains("layer.weight") && why.contains("[1]"), "{why}");
        let mut renamed = model(&[1.0, 2.0]);
        let t = renamed.remove("layer.weight").unwrap();
        renamed.insert("other.weight".into(), t);
        let why = federated_average(&[model(&[0.0, 4.0]), renamed], &[1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("other.weight") && why.contains("missing"),
            "{why}"
        );
        for weights in [[0.0, 0.0], [f64::NAN, 1.0], [-1.0, 2.0]] {
            assert!(federated_average(&[model(&[1.0]), model(&[2.0])], &weights).is_err());
        }
        assert!(federated_average(&[model(&[1.0])], &[1.0, 2.0]).is_err());
        let why = federated_average(&[model(&[1.0]), model(&[f32::NAN])], &[1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("model 1") && why.contains("not finite"),
            "{why}"
        );
        assert!(federated_average(&[], &[]).is_err());
    }
}
