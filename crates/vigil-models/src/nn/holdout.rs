//! The OmniAnomaly/InterFusion authors' model selection: the last share of the training series
//! is held out, and the network with the lowest loss on it is the one kept.

/// Where the training series splits into the part trained on and the part held out.
pub struct ValidationSplit {
    /// Training windows end before this step.
    pub train_end: usize,
    /// Starts of the held-out windows (every one, the authors' sliding window).
    pub starts: Vec<usize>,
}

/// The authors' split: the last `share` of a `len`-step series is held out. `None` when the
/// share is zero or either part would hold no full window (a short series trains on everything).
pub fn validation_split(len: usize, window: usize, share: f64) -> Option<ValidationSplit> {
    let held_out = (len as f64 * share) as usize;
    let train_end = len - held_out;
    (held_out >= window && train_end >= window).then(|| ValidationSplit {
        train_end,
        starts: (train_end..=len - window).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_share_is_held_out_unless_a_part_would_hold_no_window() {
        let split = validation_split(1000, 100, 0.3).unwrap();
        assert_eq!(split.train_end, 700);
        assert_eq!(split.starts, (700..=900).collect::<Vec<_>>());
        assert!(validation_split(150, 100, 0.3).is_none());
        assert!(validation_split(1000, 100, 0.0).is_none());
        assert!(validation_split(1000, 100, 0.95).is_none());
    }
}
