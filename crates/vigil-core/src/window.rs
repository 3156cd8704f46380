//! Sliding windows with front padding, so that every time step — the first ones included — gets a
//! window that ends at it, and so a score.

use crate::error::{CoreError, Result};

/// Checks that a window of `window` steps fits in a series of `len` steps.
pub fn check_window(window: usize, len: usize, what: &str) -> Result<()> {
    if window == 0 {
        return Err(CoreError::invalid("the window length must be at least 1"));
    }
    if window > len {
        return Err(CoreError::invalid(format!(
            "the window ({window} steps) is longer than the {what} ({len} steps); use a shorter window or more data"
        )));
    }
    Ok(())
}

/// Writes the windows ending at time steps `ends` into `out` (cleared first), each `window x m`
/// row-major. Steps before 0 repeat row 0 (front padding).
pub fn windows_ending_at(
    values: &[f32],
    m: usize,
    window: usize,
    ends: impl IntoIterator<Item = usize>,
    out: &mut Vec<f32>,
) {
    out.clear();
    for end in ends {
        for k in 0..window {
            let t = (end + k + 1).saturating_sub(window);
            out.extend_from_slice(&values[t * m..(t + 1) * m]);
        }
    }
}

/// All windows that fit without padding, ending at steps `window-1 .. T-1`, in order (for training).
pub fn full_window_ends(len: usize, window: usize) -> std::ops::Range<usize> {
    window.saturating_sub(1)..len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_padding_repeats_the_first_row() {
        let values = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        let mut out = Vec::new();
        windows_ending_at(&values, 2, 2, [0, 2], &mut out);
        assert_eq!(out, vec![1.0, 10.0, 1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
        assert!(check_window(4, 3, "test series")
            .unwrap_err()
            .to_string()
            .contains("longer than the test series"));
    }
}
