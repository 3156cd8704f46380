//! LGF-PKT's peer choice (MTAD-FL Eqs. 11–17): every node's peers ranked by the distance
//! between their hidden layers, so that each node receives its most similar peer's.

use super::distance::{hidden_distance, DistanceKind};
use crate::error::Result;
use crate::weights::NamedTensors;
use serde::{Deserialize, Serialize};

/// One node's peers, the most similar first (the paper's ID list, Eq. 16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRanking {
    /// The node, as its index among the uploads.
    pub node: usize,
    /// The other nodes, nearest first; ties keep the order of the uploads.
    pub peers: Vec<usize>,
    /// Their distances, in the same order.
    pub distances: Vec<f64>,
}

impl PeerRanking {
    /// The peer whose hidden layers the node loads into its Transfer model (Eq. 17).
    pub fn nearest(&self) -> usize {
        self.peers[0]
    }
}

/// Ranks, for every node of `uploads` (each node's exported tensors), the other nodes by the
/// distance `kind` between their hidden layers `layers`. Needs two nodes at least.
pub fn rank_peers(
    uploads: &[NamedTensors],
    layers: &[String],
    kind: DistanceKind,
) -> Result<Vec<PeerRanking>> {
    let n = uploads.len();
    if n < 2 {
        return Err(super::invalid(format!(
            "LGF-PKT needs two nodes or more to choose peers from; {n} uploaded"
        )));
    }
    // The distances are symmetric (Eq. 12 lists d_ij and d_ji alike): compute each pair once.
    let mut d = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let dij = hidden_distance(&uploads[i], &uploads[j], layers, kind)
                .map_err(|e| super::invalid(format!("nodes {i} and {j}: {e}")))?;
            d[i * n + j] = dij;
            d[j * n + i] = dij;
        }
    }
    Ok((0..n)
        .map(|node| {
            let mut peers: Vec<usize> = (0..n).filter(|&j| j != node).collect();
            peers.sort_by(|&a, &b| d[node * n + a].total_cmp(&d[node * n + b]));
            let distances = peers.iter().map(|&j| d[node * n + j]).collect();
            PeerRanking {
                node,
                peers,
                distances,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::NamedTensor;

    fn node(values: &[f32]) -> NamedTensors {
        [(
            "features.conv1.weight".to_string(),
            NamedTensor {
                shape: vec![values.len()],
                values: values.to_vec(),
            },
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn each_node_ranks_its_peers_nearest_first() {
        let uploads = [
            node(&[0.0, 1.0]),
            node(&[10.0, 1.0]),
            node(&[0.5, 1.0]),
            node(&[9.0, 1.0]),
        ];
        let rankings = rank_peers(&uploads, &["conv1".into()], DistanceKind::Euclidean).unwrap();
        assert_eq!(
            rankings
                .iter()
                .map(PeerRanking::nearest)
                .collect::<Vec<_>>(),
            [2, 3, 0, 1]
        );
        assert_eq!(rankings[0].peers, [2, 3, 1]);
        assert_eq!(rankings[0].distances, [0.5, 9.0, 10.0]);
    }

    #[test]
    fn ties_keep_the_upload_order_and_one_node_is_refused() {
        let uploads = [node(&[0.0]), node(&[1.0]), node(&[-1.0])];
        let rankings = rank_peers(&uploads, &[], DistanceKind::Euclidean).unwrap();
        assert_eq!(rankings[0].peers, [1, 2]);
        let why = rank_peers(&uploads[..1], &[], DistanceKind::Euclidean).unwrap_err();
        assert!(why.to_string().contains("two nodes"), "{why}");
    }
}
