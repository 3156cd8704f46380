//! Several instances on one PostgreSQL, each scoring a share of the entities: instance `index`
//! of `count` owns the entities whose name Prometheus' `hashmod` relabelling puts in bucket
//! `index` (the MD5 of the value, its last eight bytes as a big-endian integer, modulo
//! `count`), so a `write_relabel_configs` with `action: hashmod` sends each instance exactly
//! its share (docs/serve.md has the example). Samples of other shares are ignored (counted),
//! and a starting instance restores only its own streams.

use md5::{Digest, Md5};
use serde::Deserialize;

/// This instance's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// How many instances share the entities (`modulus` in the relabelling).
    pub count: u64,
    /// Which share is this instance's, `0..count` (the `regex` the relabelling keeps).
    pub index: u64,
}

/// Prometheus' `hashmod` of `value`.
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let tail: [u8; 8] = digest[8..16].try_into().expect("MD5 is 16 bytes");
    u64::from_be_bytes(tail) % modulus.max(1)
}

impl ShardConfig {
    pub fn owns(&self, entity: &str) -> bool {
        hashmod(entity, self.count) == self.index
    }
}

/// Whether `entity` is this instance's (every entity without shards).
pub fn owns(shard: Option<&ShardConfig>, entity: &str) -> bool {
    shard.is_none_or(|s| s.owns(entity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_prometheus_hashmod() {
        // Python's int.from_bytes(hashlib.md5(v).digest()[8:], "big") % 3, the formula of
        // Prometheus' relabel.go.
        let expected = [
            ("e0", 1),
            ("e1", 1),
            ("e2", 2),
            ("e3", 0),
            ("e4", 0),
            ("e5", 2),
            ("127.0.0.1:9100", 1),
        ];
        for (value, bucket) in expected {
            assert_eq!(hashmod(value, 3), bucket, "{value}");
        }
        let shard = ShardConfig { count: 3, index: 1 };
        assert!(shard.owns("e0") && !shard.owns("e3"));
        assert!(owns(None, "anything"));
    }
}
