//! The `vigil` binary's allocator: the system allocator plus a count of live heap bytes and,
//! in a memory-budget worker, a hard stop when the count passes the worker's share.
//!
//! Why by hand: the stop must happen inside the allocation that crosses the line — before the
//! pages are touched — and no allocator crate offers a limit with an exit we control. The
//! stop does not replace the measured check (`VmHWM`, see `budget::commit_check`): live heap
//! bytes are not resident bytes (code pages, stacks and freed-but-kept buffers differ), so the
//! stop only ends a run that is certainly too big early and cheaply.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Exit status of a worker stopped for crossing its share of the budget.
pub const EXIT_OVER_BUDGET: i32 = 3;

/// Heap bytes allocated and not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Where the stop is (no stop: `usize::MAX`).
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Counts live heap bytes; see the module documentation.
pub struct CountingAllocator;

impl CountingAllocator {
    fn added(size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        if live > LIMIT.load(Ordering::Relaxed) {
            stop();
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are atomics
// and `stop` neither allocates nor returns.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            Self::added(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            Self::added(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            Self::added(new_size);
        }
        p
    }
}

/// Heap bytes in use now.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Stops the process (status [`EXIT_OVER_BUDGET`]) as soon as live heap bytes pass `limit`.
pub fn stop_above(limit: usize) {
    LIMIT.store(limit, Ordering::Relaxed);
}

/// Ends the process from inside an allocation: no allocation, no unwinding, no destructors
/// (a half-written output stays a temporary file, never the output).
fn stop() -> ! {
    const MESSAGE: &[u8] = b"vigil: over the memory budget's share for this candidate; stopped\n";
    // SAFETY: write(2) on stderr with a static buffer, then _exit(2) — both async-signal-safe
    // and allocation-free.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(EXIT_OVER_BUDGET)
    }
}
