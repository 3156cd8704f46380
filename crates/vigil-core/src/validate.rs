//! Checks of numeric parameters shared by every entry point (command-line flags, config files,
//! library calls), so that a value is refused with the same message wherever it comes from.

use crate::error::{CoreError, Result};

/// `value` must be a finite number at or above zero (NaN and infinities are refused).
pub fn non_negative(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "{name} must be a finite number at or above 0, got {value}"
        )))
    }
}

/// `value` must be at or above zero; +∞ is allowed (a distance threshold of ∞ means "no
/// limit": `--tau inf` always transfers fully, `--max-distance inf` never cuts), NaN and
/// negative values are refused.
pub fn at_least_zero(name: &str, value: f64) -> Result<()> {
    if value >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "{name} must be a number at or above 0 (inf for no limit), got {value}"
        )))
    }
}

/// `value` must be at least 1.
pub fn positive_count(name: &str, value: usize) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "{name} must be at least 1, got {value}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_infinity_and_negatives_are_refused_with_the_name() {
        for bad in [f64::NAN, f64::INFINITY, -0.5] {
            let err = non_negative("--tau", bad).unwrap_err().to_string();
            assert!(err.starts_with("--tau must be a finite number"), "{err}");
        }
        assert!(non_negative("--tau", 0.0).is_ok());
        assert!(at_least_zero("--tau", f64::INFINITY).is_ok());
        assert!(at_least_zero("--tau", f64::NAN).is_err() && at_least_zero("--tau", -1.0).is_err());
        assert!(positive_count("--nearest", 0).is_err());
    }
}
