//! Keeps freed tensor buffers in the process instead of handing them back to the OS.
//!
//! Why: a training step allocates and frees the same large buffers (activations, gradients,
//! recurrent caches) every step. glibc's malloc serves allocations above its mmap threshold
//! (128 KiB at first) with fresh `mmap`s and returns them with `munmap` when freed, so every
//! step page-faults and zeroes its buffers again: perf put a seventh of an LSTM training step in
//! the kernel's page-fault path, and raising the thresholds took the step from 44 to 28 ms
//! (bench/results/speed.md). mimalloc gave the same speed at 1.5-2.8x the peak memory, which
//! matters on the edge devices vigil targets, so we keep glibc and tune it.
//!
//! The mmap threshold cannot be raised above 32 MiB, and the Anomaly Transformer's attention
//! maps (batch 256 × 8 heads × 100 × 100 floats) are 82 MB each: they were still mapped and
//! unmapped every step, which perf put at a sixth of its training time (page zeroing and
//! faults). So mmap is switched off for allocations altogether: an epoch on 1,500 SMD steps
//! went from 42-45 s to 33 s, same peak memory, same scores. The cost: memory freed below the
//! top of the heap stays with the process until it exits, as the trim threshold already keeps
//! up to 1 GiB of it.

/// Serves every allocation from the heap and raises glibc's trim threshold, so that large freed
/// buffers stay there for the next step. Call once at the start of `main`, before other threads
/// start. Peak memory is unchanged (what is kept was in use a moment before); a no-op where the
/// C library is not glibc.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // No allocation gets its own mmap (M_MMAP_MAX 0: the module docs say why); the trim
        // threshold keeps up to 1 GiB of freed heap for reuse.
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes malloc's tuning parameters; it is called before any other
        // thread runs, as glibc asks.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
