//! Memory sizes as people write them on a command line: `64MiB`, `1.5GiB`, `500MB`, `64M`.

use std::fmt;
use std::str::FromStr;

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemorySize(pub u64);

impl FromStr for MemorySize {
    type Err = String;

    /// Binary units (KiB, MiB, GiB and the bare K, M, G that `ulimit` and container runtimes
    /// use), decimal ones (kB, MB, GB), or plain bytes (`B` or no unit); case-insensitive.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let bad = || {
            format!("`{text}` is not a memory size: write a number and a unit, e.g. 64MiB, 1.5GiB or 500MB")
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            _ => return Err(bad()),
        };
        let bytes = value * scale as f64;
        if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
            return Err(format!(
                "`{text}` is not a usable memory size: give at least one byte"
            ));
        }
        Ok(MemorySize(bytes.round() as u64))
    }
}

impl fmt::Display for MemorySize {
    /// In MiB with one decimal: the unit the budget is usually given in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} MiB", self.0 as f64 / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::MemorySize;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        let bytes = |s: &str| s.parse::<MemorySize>().unwrap().0;
        assert_eq!(bytes("64MiB"), 64 << 20);
        assert_eq!(bytes("64m"), 64 << 20);
        assert_eq!(bytes("1.5GiB"), 3 << 29);
        assert_eq!(bytes("500MB"), 500_000_000);
        assert_eq!(bytes("4096"), 4096);
        assert_eq!(bytes(" 2 KiB "), 2048);
        assert_eq!(MemorySize(64 << 20).to_string(), "64.0 MiB");
    }

    #[test]
    fn nonsense_sizes_are_refused_with_an_example() {
        for text in ["", "MiB", "64 parsecs", "-5MiB", "0", "1.2.3MB"] {
            let err = text.parse::<MemorySize>().unwrap_err();
            assert!(err.contains(text.trim()), "{text}: {err}");
        }
        assert!("64 parsecs"
            .parse::<MemorySize>()
            .unwrap_err()
            .contains("e.g. 64MiB"));
    }
}
