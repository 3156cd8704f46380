//! Keeps freed tensor buffers in the process instead of handing them back to the OS.
//!
//! Why: a training step allocates and frees the same large buffers (activations, gradients,
//! recurrent caches) every step. glibc's malloc serves allocations above its mmap threshold
//! (128 KiB at first) with fresh `mmap`s and returns them with `munmap` when freed, so every
//! step page-faults and zeroes its buffers again: perf put a seventh of an LSTM training step in
//! the kernel's page-fault path, and raising the thresholds took the step from 44 to 28 ms
//! (bench/results/speed.md). mimalloc gave the same speed at 1.5-2.8x the peak memory, which
//! matters on the edge devices vigil targets, so we keep glibc and tune it.

/// Raises glibc's mmap and trim thresholds so that large freed buffers stay in the heap for the
/// next step. Call once at the start of `main`, before other threads start. Peak memory is
/// unchanged (what is kept was in use a moment before); a no-op where the C library is not glibc.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // The largest mmap threshold glibc accepts on 64-bit (32 MiB): buffers below it come
        // from the heap. The trim threshold keeps up to 1 GiB of freed heap for reuse.
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes malloc's tuning parameters; it is called before any other
        // thread runs, as glibc asks.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
