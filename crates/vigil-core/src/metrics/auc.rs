//! Threshold-free ranking measures: ROC-AUC and PR-AUC (average precision), with ties handled
//! the way scikit-learn handles them (all points sharing a score enter together).

/// (score, label) pairs sorted by descending score, grouped into runs of equal scores:
/// yields (true positives in the group, false positives in the group).
fn grouped_counts(scores: &[f64], labels: &[u8]) -> Vec<(u64, u64)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut groups: Vec<(u64, u64)> = Vec::new();
    let mut last = None;
    for i in idx {
        let pos = u64::from(labels[i] != 0);
        if last == Some(scores[i]) {
            let g = groups
                .last_mut()
                .expect("a group was pushed for the previous score");
            g.0 += pos;
            g.1 += 1 - pos;
        } else {
            groups.push((pos, 1 - pos));
            last = Some(scores[i]);
        }
    }
    groups
}

/// Area under the ROC curve; `None` when labels are all one class.
pub fn roc_auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let groups = grouped_counts(scores, labels);
    let p: u64 = groups.iter().map(|g| g.0).sum();
    let n: u64 = groups.iter().map(|g| g.1).sum();
    if p == 0 || n == 0 {
        return None;
    }
    let (mut tp, mut fp, mut area) = (0u64, 0u64, 0f64);
    for (gp, gn) in groups {
        // Trapezoid between (fp, tp) and (fp + gn, tp + gp).
        area += gn as f64 * (tp as f64 + 0.5 * gp as f64);
        tp += gp;
        fp += gn;
    }
    debug_assert_eq!(fp, n);
    Some(area / (p as f64 * n as f64))
}

/// Average precision: Σ (R_k − R_{k−1}) · P_k over score thresholds (scikit-learn's
/// `average_precision_score`); `None` when there is no positive label.
pub fn average_precision(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let groups = grouped_counts(scores, labels);
    let p: u64 = groups.iter().map(|g| g.0).sum();
    if p == 0 {
        return None;
    }
    let (mut tp, mut flagged, mut ap) = (0u64, 0u64, 0f64);
    for (gp, gn) in groups {
        tp += gp;
        flagged += gp + gn;
        if gp > 0 {
            ap += (gp as f64 / p as f64) * (tp as f64 / flagged as f64);
        }
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_random_and_tied() {
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]), Some(1.0));
        assert_eq!(roc_auc(&[0.5; 4], &[0, 1, 0, 1]), Some(0.5));
        assert_eq!(
            average_precision(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]),
            Some(1.0)
        );
        assert_eq!(roc_auc(&[0.1, 0.2], &[0, 0]), None);
    }
}
