//! The adjusted Rand index (Hubert & Arabie, 1985): agreement of two partitions of the same
//! items, 1 for identical partitions, about 0 for chance. Written out here (a contingency table
//! and pair counts) rather than pulled from a clustering crate for one formula; checked against
//! scikit-learn's `adjusted_rand_score`.

use std::collections::HashMap;

/// ARI between partitions `a` and `b` (labels per item; any label values).
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "two partitions of the same items");
    let n = a.len() as f64;
    let pairs = |k: f64| k * (k - 1.0) / 2.0;
    let mut table: HashMap<(usize, usize), f64> = HashMap::new();
    let (mut rows, mut columns): (HashMap<usize, f64>, HashMap<usize, f64>) =
        (HashMap::new(), HashMap::new());
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1.0;
        *rows.entry(x).or_default() += 1.0;
        *columns.entry(y).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|&c| pairs(c)).sum();
    let row_pairs: f64 = rows.values().map(|&c| pairs(c)).sum();
    let column_pairs: f64 = columns.values().map(|&c| pairs(c)).sum();
    let expected = row_pairs * column_pairs / pairs(n).max(1.0);
    let maximum = (row_pairs + column_pairs) / 2.0;
    if (maximum - expected).abs() < 1e-12 {
        // Both partitions trivial (all in one group, or all apart): they agree fully.
        return 1.0;
    }
    (index - expected) / (maximum - expected)
}

#[cfg(test)]
mod tests {
    use super::adjusted_rand_index as ari;

    #[test]
    fn matches_scikit_learn() {
        // python3 -c "from sklearn.metrics import adjusted_rand_score as a; print(a(...))"
        assert!((ari(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 0.5714285714285714).abs() < 1e-12);
        assert!(
            (ari(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]) - 0.24242424242424243).abs() < 1e-12
        );
        assert_eq!(ari(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0);
        assert!((ari(&[0, 1, 2, 0, 1, 2, 2], &[1, 1, 0, 0, 2, 2, 2]) + 0.05).abs() < 1e-12);
        assert_eq!(
            ari(&[3, 3, 7, 7], &[1, 1, 0, 0]),
            1.0,
            "labels are names only"
        );
    }
}
