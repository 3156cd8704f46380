//! What the OS says about this process's memory: the figures behind `vigil bench --memory`
//! and `--memory-budget` (measured, never estimated).

/// Peak resident set size of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Resident set size of this process now (Linux `VmRSS`), in bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` field of `/proc/self/status`; `None` where there is no such file (not Linux).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_at_least_the_current_size_and_follows_a_touched_buffer() {
        let (Some(before), Some(now)) = (peak_rss_bytes(), rss_bytes()) else {
            return; // not Linux: nothing to read
        };
        assert!(before >= now && now > 0);
        // Touch 64 MiB: the high-water mark must rise by most of it.
        let buffer = vec![1u8; 64 << 20];
        std::hint::black_box(&buffer);
        let after = peak_rss_bytes().unwrap();
        assert!(
            after >= now + (48 << 20),
            "peak {after} after touching 64 MiB from {now}"
        );
    }
}
