//! LGF-PKT's weight distance between two nodes' hidden layers (MTAD-FL Eqs. 13–15).

use crate::error::{ModelError, Result};
use crate::weights::{NamedTensor, NamedTensors};
use serde::{Deserialize, Serialize};

/// How two nodes' hidden layers are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DistanceKind {
    /// Eq. 13: the Euclidean norm of the difference, over every hidden tensor together.
    Euclidean,
    /// One minus Eq. 14's cosine similarity of the hidden tensors laid end to end.
    Cosine,
    /// Eq. 15: the Euclidean distance divided by the cosine similarity — the paper's choice.
    /// Peers whose weights point away from each other (similarity zero or below) are as far
    /// as can be (infinite): dividing by a similarity near zero or negative would rank them
    /// nearest.
    Combined,
}

impl std::str::FromStr for DistanceKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "euclidean" => Ok(Self::Euclidean),
            "cosine" => Ok(Self::Cosine),
            "combined" => Ok(Self::Combined),
            other => Err(super::invalid(format!(
                "unknown distance `{other}`; choose euclidean, cosine or combined"
            ))),
        }
    }
}

/// The tensors of `model` whose name contains one of `layers` (all of them when `layers` is
/// empty), in name order.
pub(crate) fn hidden_tensors<'m>(
    model: &'m NamedTensors,
    layers: &[String],
) -> Vec<(&'m String, &'m NamedTensor)> {
    model
        .iter()
        .filter(|(name, _)| layers.is_empty() || layers.iter().any(|l| name.contains(l.as_str())))
        .collect()
}

/// The distance `kind` between the hidden layers `layers` of two nodes' tensors. Both must hold
/// the same hidden tensors with the same shapes and finite values.
pub fn hidden_distance(
    a: &NamedTensors,
    b: &NamedTensors,
    layers: &[String],
    kind: DistanceKind,
) -> Result<f64> {
    let (ha, hb) = (hidden_tensors(a, layers), hidden_tensors(b, layers));
    if ha.is_empty() {
        return Err(ModelError::Shape(format!(
            "no tensor is named after the hidden layers {layers:?}; the model has {:?}",
            a.keys().collect::<Vec<_>>()
        )));
    }
    let names =
        |h: &[(&String, &NamedTensor)]| h.iter().map(|(n, _)| (*n).clone()).collect::<Vec<_>>();
    if names(&ha) != names(&hb) {
        return Err(ModelError::Shape(format!(
            "the two nodes' hidden layers differ: {:?} and {:?}; every node must train the same \
             detector with the same config",
            names(&ha),
            names(&hb)
        )));
    }
    let (mut diff, mut dot, mut norm_a, mut norm_b) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for ((name, ta), (_, tb)) in ha.iter().zip(&hb) {
        if ta.shape != tb.shape {
            return Err(ModelError::Shape(format!(
                "hidden tensor {name} has shape {:?} on one node and {:?} on the other",
                ta.shape, tb.shape
            )));
        }
        for (&x, &y) in ta.values.iter().zip(&tb.values) {
            if !x.is_finite() || !y.is_finite() {
                return Err(super::invalid(format!(
                    "hidden tensor {name} holds a value that is not finite; the node's training \
                     diverged"
                )));
            }
            let (x, y) = (f64::from(x), f64::from(y));
            diff += (x - y) * (x - y);
            dot += x * y;
            norm_a += x * x;
            norm_b += y * y;
        }
    }
    let euclidean = diff.sqrt();
    let norms = norm_a.sqrt() * norm_b.sqrt();
    let cosine = if norms > 0.0 { dot / norms } else { 0.0 };
    Ok(match kind {
        DistanceKind::Euclidean => euclidean,
        DistanceKind::Cosine => 1.0 - cosine,
        DistanceKind::Combined if cosine > 0.0 => euclidean / cosine,
        DistanceKind::Combined => f64::INFINITY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(conv: &[f32], head: &[f32]) -> NamedTensors {
        let t = |v: &[f32]| NamedTensor {
            shape: vec![v.len()],
            values: v.to_vec(),
        };
        [
            ("features.conv1.weight".to_string(), t(conv)),
            ("classifier.weight".to_string(), t(head)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn the_distances_follow_equations_13_to_15_on_the_hidden_layers_only() {
        let hidden = vec!["conv1".to_string()];
        let (a, b) = (node(&[3.0, 0.0], &[100.0]), node(&[0.0, 4.0], &[-7.0]));
        let d = |k| hidden_distance(&a, &b, &hidden, k).unwrap();
        assert_eq!(d(DistanceKind::Euclidean), 5.0);
        assert_eq!(d(DistanceKind::Cosine), 1.0);
        // Orthogonal weights: no similarity, infinitely far under Eq. 15.
        assert_eq!(d(DistanceKind::Combined), f64::INFINITY);
        let c = node(&[3.0, 4.0], &[0.0]);
        let combined = hidden_distance(&a, &c, &hidden, DistanceKind::Combined).unwrap();
        // ‖(0, -4)‖ = 4, cos = 9 / (3 · 5) = 0.6.
        assert!((combined - 4.0 / 0.6).abs() < 1e-12, "{combined}");
    }

    #[test]
    fn nodes_with_other_hidden_layers_are_refused_by_name() {
        let hidden = vec!["conv1".to_string()];
        let why = hidden_distance(
            &node(&[1.0], &[0.0]),
            &node(&[1.0, 2.0], &[0.0]),
            &hidden,
            DistanceKind::Euclidean,
        )
        .unwrap_err()
        .to_string();
        assert!(why.contains("features.conv1.weight"), "{why}");
        let why = hidden_distance(
            &node(&[1.0], &[0.0]),
            &node(&[1.0], &[0.0]),
            &["conv9".into()],
            DistanceKind::Euclidean,
        )
        .unwrap_err()
        .to_string();
        assert!(why.contains("conv9"), "{why}");
        let bad = node(&[f32::NAN], &[0.0]);
        assert!(
            hidden_distance(&bad, &node(&[1.0], &[0.0]), &hidden, DistanceKind::Cosine).is_err()
        );
        assert!("manhattan".parse::<DistanceKind>().is_err());
    }
}
