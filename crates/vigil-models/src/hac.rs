//! Average-linkage agglomerative clustering (kodama) cut into flat clusters: OmniTransfer's
//! clustering of entities (vigil-fleet) and TSAL's clustering of windows
//! (`detectors/anotuner/tsal.rs`) both cut the same dendrogram replay.

/// Flat cluster labels of `n` points from their condensed distance matrix (the upper triangle
/// row by row, as kodama takes it; it is overwritten), numbered by first appearance. Merges are
/// replayed in kodama's order (rising distance) while `keep(merge index, distance)` holds.
pub fn average_linkage_labels(
    condensed: &mut [f64],
    n: usize,
    keep: impl Fn(usize, f64) -> bool,
) -> Vec<usize> {
    if n <= 1 {
        return vec![0; n];
    }
    let dendrogram = kodama::linkage(condensed, n, kodama::Method::Average);
    // kodama numbers the cluster made by merge s as n + s.
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    for (s, step) in dendrogram.steps().iter().enumerate() {
        if !keep(s, step.dissimilarity) {
            break;
        }
        parent[step.cluster1] = n + s;
        parent[step.cluster2] = n + s;
    }
    let root = |mut i: usize| {
        while parent[i] != i {
            i = parent[i];
        }
        i
    };
    let mut number: std::collections::HashMap<usize, usize> = Default::default();
    (0..n)
        .map(|i| {
            let next = number.len();
            *number.entry(root(i)).or_insert(next)
        })
        .collect()
}
