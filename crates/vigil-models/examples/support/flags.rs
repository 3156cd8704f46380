//! `--name value` flags for the benchmark examples that `bench/*.sh` run: read into a map with
//! every name checked against the example's own, so that a mistyped or unsupported flag is
//! refused rather than ignored. (A shared file, included by path: Cargo takes only
//! `examples/*.rs` as examples.)

use anyhow::{bail, Context};
use std::collections::HashMap;

/// The flags given on the command line, each `--name value`; a name not in `known` is refused.
pub fn parse(known: &[&str]) -> anyhow::Result<HashMap<String, String>> {
    let mut given = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let key = flag
            .strip_prefix("--")
            .with_context(|| format!("unexpected argument `{flag}`; flags are --name value"))?;
        if !known.contains(&key) {
            bail!("unknown flag --{key}; flags: --{}", known.join(", --"));
        }
        let value = it
            .next()
            .with_context(|| format!("--{key} needs a value"))?;
        given.insert(key.to_string(), value);
    }
    Ok(given)
}

/// The comma-separated values of flag `key` (empty pieces dropped), else those of `default`.
pub fn list(given: &HashMap<String, String>, key: &str, default: &str) -> Vec<String> {
    given
        .get(key)
        .map_or(default, String::as_str)
        .split(',')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}
