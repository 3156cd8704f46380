//! Typed detector configs: defaults stated once (`Default`), every field checked by one
//! validation that names each field out of range and the range it must lie in, and the memory
//! ladder as edits of the typed value.

use crate::error::{ModelError, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Debug, Display};

/// The smallest batch the default memory ladder goes down to: below it, steps get too noisy
/// to train on for the memory they save.
pub const SMALLEST_LADDER_BATCH: usize = 8;

/// A detector's configuration.
pub trait DetectorConfig:
    Serialize + DeserializeOwned + Default + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// Registry name of the detector this configures, e.g. `usad`.
    const KIND: &'static str;

    /// States the allowed range of every field to `checks` (see [`DetectorConfig::validate`]).
    fn check(&self, checks: &mut FieldChecks);

    /// The mini-batch size, for detectors that train in batches; the default memory ladder
    /// halves it.
    fn batch_size_mut(&mut self) -> Option<&mut usize> {
        None
    }

    /// The next smaller variant (one that trains in less memory), or `None` at the bottom.
    /// `vigil train --memory-budget` walks down this ladder (see
    /// [`crate::registry::memory_ladder`]) until a measured peak fits. The default halves the
    /// batch down to [`SMALLEST_LADDER_BATCH`]; a detector whose size lies elsewhere (GON: the
    /// discriminator's width and depth) overrides it.
    fn smaller(&self) -> Option<Self> {
        let mut smaller = self.clone();
        let batch = smaller.batch_size_mut()?;
        if *batch <= SMALLEST_LADDER_BATCH {
            return None;
        }
        *batch = (*batch / 2).max(SMALLEST_LADDER_BATCH);
        Some(smaller)
    }

    /// Checks every field at once: the error lists each one out of range, with its value and
    /// the range allowed.
    fn validate(&self) -> Result<()> {
        let mut checks = FieldChecks::default();
        self.check(&mut checks);
        if checks.problems.is_empty() {
            Ok(())
        } else {
            Err(ModelError::InvalidFields {
                detector: Self::KIND.to_string(),
                problems: checks.problems,
            })
        }
    }

    /// The config from JSON that overrides the defaults key by key (`None`: the defaults);
    /// an unknown key or a value of the wrong type is refused, naming it.
    fn from_json(json: Option<&serde_json::Value>) -> Result<Self> {
        match json {
            None => Ok(Self::default()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| ModelError::config(Self::KIND, e.to_string())),
        }
    }

    /// As JSON, the form the manifest stores.
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("detector configs serialise")
    }
}

/// Implements [`DetectorConfig`] for a config struct from a table of its fields' ranges:
///
/// ```ignore
/// detector_config! {
///     UsadConfig = "usad", batch batch_size;   // KIND; the field the memory ladder halves
///     counts: window, latent, epochs;          // each a FieldChecks rule over those fields
///     positive: learning_rate;
///     |c, checks| { ... }                      // rules over one field or several
/// }
/// ```
///
/// `smaller PATH` instead of `batch FIELD` gives a memory ladder of the detector's own.
macro_rules! detector_config {
    (
        $config:ty = $kind:literal
            $(, batch $batch:ident)? $(, smaller $smaller:path)?;
        $($rule:ident: $($field:ident),+;)*
        $(|$c:ident, $checks:ident| $extra:block)?
    ) => {
        impl $crate::config::DetectorConfig for $config {
            const KIND: &'static str = $kind;

            fn check(&self, checks: &mut $crate::config::FieldChecks) {
                $(checks.$rule(&[$((stringify!($field), self.$field)),+]);)*
                $(let ($c, $checks) = (self, checks); $extra)?
            }

            $(fn batch_size_mut(&mut self) -> Option<&mut usize> {
                Some(&mut self.$batch)
            })?

            $(fn smaller(&self) -> Option<Self> {
                $smaller(self)
            })?
        }
    };
}
pub(crate) use detector_config;

/// The [`crate::detector::Detector`] methods a detector answers from its config alone
/// (`self.config`, a [`DetectorConfig`]): `kind` and `config_json`, and with `window` also
/// `window` as the config's `window` field.
macro_rules! config_methods {
    () => {
        fn kind(&self) -> &'static str {
            $crate::config::kind_of(&self.config)
        }

        fn config_json(&self) -> serde_json::Value {
            $crate::config::DetectorConfig::to_json(&self.config)
        }
    };
    (window) => {
        $crate::config::config_methods!();

        fn window(&self) -> usize {
            self.config.window
        }
    };
}
pub(crate) use config_methods;

/// The registry name of the detector `config` configures.
pub fn kind_of<C: DetectorConfig>(_config: &C) -> &'static str {
    C::KIND
}

/// One field out of its allowed range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// The config key, e.g. `dropout` or `hidden[1]`.
    pub field: String,
    /// The value given, as written.
    pub value: String,
    /// What it must be, e.g. `in [0, 1)`.
    pub allowed: String,
}

impl Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be {}, got {}",
            self.field, self.allowed, self.value
        )
    }
}

/// The largest count a config accepts (2^24): far above any real window, width, batch or
/// number of trees, far below what would exhaust memory at the first allocation.
pub const MOST_COUNT: usize = 1 << 24;

/// Collects the fields of a config that are out of range.
#[derive(Debug, Default)]
pub struct FieldChecks {
    problems: Vec<FieldProblem>,
}

impl FieldChecks {
    /// Records `field` as wrong unless `ok`.
    pub fn require(
        &mut self,
        field: &str,
        ok: bool,
        value: impl Display,
        allowed: impl Into<String>,
    ) -> &mut Self {
        if !ok {
            self.problems.push(FieldProblem {
                field: field.to_string(),
                value: value.to_string(),
                allowed: allowed.into(),
            });
        }
        self
    }

    /// A count of at least `least`, and at most [`MOST_COUNT`]: a larger one asks for more
    /// memory than any machine has, and failing to allocate it would abort the process (a
    /// Python interpreter with it) instead of erring.
    pub fn at_least(&mut self, field: &str, value: usize, least: usize) -> &mut Self {
        self.require(field, value >= least, value, format!("at least {least}"));
        self.require(
            field,
            value <= MOST_COUNT,
            value,
            format!("at most {MOST_COUNT}"),
        )
    }

    /// Counts that may be 0 (flow layers, patience, smoothing), each at most [`MOST_COUNT`].
    pub fn at_most_counts(&mut self, fields: &[(&str, usize)]) -> &mut Self {
        for &(field, value) in fields {
            self.at_least(field, value, 0);
        }
        self
    }

    /// Counts of at least 1 each (window, epochs, batch size, widths, ...).
    pub fn counts(&mut self, fields: &[(&str, usize)]) -> &mut Self {
        for &(field, value) in fields {
            self.at_least(field, value, 1);
        }
        self
    }

    /// A list of layer widths, each a count (named `field[i]`).
    pub fn widths(&mut self, field: &str, values: &[usize]) -> &mut Self {
        for (i, &value) in values.iter().enumerate() {
            self.counts(&[(&format!("{field}[{i}]"), value)]);
        }
        self
    }

    /// Finite numbers above zero (learning rates, tolerances, epsilons).
    pub fn positive(&mut self, fields: &[(&str, f64)]) -> &mut Self {
        for &(field, value) in fields {
            self.require(field, value > 0.0 && value.is_finite(), value, "positive");
        }
        self
    }

    /// Finite numbers of zero or more (weight decay, loss weights).
    pub fn non_negative(&mut self, fields: &[(&str, f64)]) -> &mut Self {
        for &(field, value) in fields {
            let ok = value >= 0.0 && value.is_finite();
            self.require(field, ok, value, "zero or positive");
        }
        self
    }

    /// Shares that may be zero but not whole (dropout, a held-out share): in [0, 1).
    pub fn shares_below_one(&mut self, fields: &[(&str, f64)]) -> &mut Self {
        for &(field, value) in fields {
            self.require(field, (0.0..1.0).contains(&value), value, "in [0, 1)");
        }
        self
    }

    /// Shares that may be whole but not zero (explained variance, ν): in (0, 1].
    pub fn shares_above_zero(&mut self, fields: &[(&str, f64)]) -> &mut Self {
        for &(field, value) in fields {
            self.require(field, value > 0.0 && value <= 1.0, value, "in (0, 1]");
        }
        self
    }

    /// A number in the closed range [lo, hi].
    pub fn within(&mut self, field: &str, value: f64, lo: f64, hi: f64) -> &mut Self {
        let ok = (lo..=hi).contains(&value);
        self.require(field, ok, value, format!("in [{lo}, {hi}]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Toy {
        window: usize,
        batch_size: usize,
        dropout: f64,
    }

    impl Default for Toy {
        fn default() -> Self {
            Toy {
                window: 4,
                batch_size: 64,
                dropout: 0.1,
            }
        }
    }

    detector_config! {
        Toy = "toy", batch batch_size;
        counts: window, batch_size;
        shares_below_one: dropout;
    }

    #[test]
    fn validation_names_every_field_out_of_range_with_its_range() {
        let bad = Toy {
            window: 0,
            batch_size: 8,
            dropout: 1.5,
        };
        let message = bad.validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid toy config: window must be at least 1, got 0; \
             dropout must be in [0, 1), got 1.5"
        );
        assert!(Toy::default().validate().is_ok());
    }

    #[test]
    fn the_default_ladder_halves_the_batch_down_to_the_floor() {
        let mut rungs = vec![Toy::default()];
        while let Some(next) = rungs.last().unwrap().smaller() {
            rungs.push(next);
        }
        let batches: Vec<usize> = rungs.iter().map(|t| t.batch_size).collect();
        assert_eq!(batches, [64, 32, 16, 8]);
    }

    #[test]
    fn json_overrides_defaults_and_unknown_keys_are_named() {
        let toy = Toy::from_json(Some(&serde_json::json!({"window": 9}))).unwrap();
        assert_eq!((toy.window, toy.batch_size), (9, 64));
        let err = Toy::from_json(Some(&serde_json::json!({"windwo": 9}))).unwrap_err();
        assert!(err.to_string().contains("unknown field `windwo`"), "{err}");
    }
}
