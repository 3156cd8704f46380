//! The graph a TopoMAD cell convolves over: the topology's adjacency with self-loops and the
//! symmetric normalisation of Kipf & Welling's GCN, in its "improved" form (self-loops of
//! weight 2, as the reference code's `GCNConv(improved=True)`): Â = D^-½ (A + 2I) D^-½, where D
//! sums each row of A + 2I.

use serde::{Deserialize, Serialize};
use vigil_core::topology::Topology;

/// Which links the cells see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GraphKind {
    /// The calls, each taken both ways: a fault in a callee shows in its callers (latency,
    /// errors) and one in a caller in its callees (load), so information flows along an edge
    /// either way.
    Undirected,
    /// The calls as given, messages flowing from caller to callee (PyG's `source -> target`).
    Directed,
    /// No edges: every component alone (Â = I), the same model without the graph — the
    /// ablation the benchmark compares against.
    None,
}

/// The normalised adjacency, `N x N` row-major: row `i` weighs what component `i` gathers from
/// every component (itself included).
pub fn normalised_adjacency(topology: &Topology, kind: GraphKind) -> Vec<f32> {
    let n = topology.n_components();
    let mut a = vec![0.0f64; n * n];
    for i in 0..n {
        a[i * n + i] = 2.0;
    }
    if kind != GraphKind::None {
        for &(caller, callee) in &topology.edges {
            // Messages flow from source to target: the target's row gathers the source.
            a[callee * n + caller] = 1.0;
            if kind == GraphKind::Undirected {
                a[caller * n + callee] = 1.0;
            }
        }
    }
    let degree: Vec<f64> = (0..n).map(|i| a[i * n..(i + 1) * n].iter().sum()).collect();
    (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            (a[k] / (degree[i] * degree[j]).sqrt()) as f32
        })
        .collect()
}

/// The attention mask of a GAT cell, `N x N` row-major: 0 where row i may attend to column j
/// (itself, and the components linked to it as [`normalised_adjacency`] links them), `masked`
/// elsewhere.
pub fn attention_mask(topology: &Topology, kind: GraphKind, masked: f32) -> Vec<f32> {
    normalised_adjacency(topology, kind)
        .into_iter()
        .map(|a| if a > 0.0 { 0.0 } else { masked })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Topology {
        Topology {
            components: vec!["a".into(), "b".into(), "c".into()],
            metrics: vec!["x".into()],
            columns: vec![0, 1, 2],
            edges: vec![(0, 1), (1, 2)],
        }
    }

    #[test]
    fn improved_gcn_normalisation() {
        let a = normalised_adjacency(&chain(), GraphKind::Undirected);
        // Degrees 3, 4, 3 (self-loop 2 plus neighbours).
        let expect = [
            2.0 / 3.0,
            1.0 / 12f32.sqrt(),
            0.0,
            1.0 / 12f32.sqrt(),
            0.5,
            1.0 / 12f32.sqrt(),
            0.0,
            1.0 / 12f32.sqrt(),
            2.0 / 3.0,
        ];
        for (g, e) in a.iter().zip(expect) {
            assert!((g - e).abs() < 1e-6, "{a:?}");
        }
    }

    #[test]
    fn no_graph_is_the_identity_and_directed_gathers_from_callers() {
        let none = normalised_adjacency(&chain(), GraphKind::None);
        assert_eq!(none, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let directed = normalised_adjacency(&chain(), GraphKind::Directed);
        // b (row 1) gathers from its caller a, a gathers from nobody.
        assert!(directed[3] > 0.0 && directed[1] == 0.0);
    }
}
