//! Crash points: fault injection for the tests that kill vigil at every step of a write.
//!
//! Every step of a write that leaves the disk in a new state (a temporary file created, its
//! content written, synced, renamed into place; a model staged, swapped, its old copy removed)
//! calls [`crash_point`] with a name. When the environment variable `VIGIL_CRASH_AT` names that
//! point, the process sends itself SIGKILL there: no destructor runs and no temporary file is
//! cleaned, exactly as when an operator's `kill -9` or an out-of-memory killer strikes. The
//! tests in `crates/vigil-cli/tests/hostile.rs` walk every point and check that the files on
//! disk are then either the old ones or the new ones, never a mixture or nothing.

use std::sync::OnceLock;

/// The environment variable that names the crash point (`output:written`, `model:swapped`, ...).
pub const CRASH_AT: &str = "VIGIL_CRASH_AT";

/// The environment variable that makes folder swaps take the two-rename fallback, as on a file
/// system without `RENAME_EXCHANGE`, so that the tests walk that path's crash points too.
pub const NO_EXCHANGE: &str = "VIGIL_NO_EXCHANGE";

/// Whether `VIGIL_NO_EXCHANGE` is set (see [`NO_EXCHANGE`]).
pub fn exchange_disabled() -> bool {
    static DISABLED: OnceLock<bool> = OnceLock::new();
    *DISABLED.get_or_init(|| std::env::var_os(NO_EXCHANGE).is_some())
}

/// Dies here, as by `kill -9`, when `VIGIL_CRASH_AT` names `point`; otherwise does nothing.
pub fn crash_point(point: &str) {
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    let wanted = WANTED.get_or_init(|| std::env::var(CRASH_AT).ok());
    if wanted.as_deref() == Some(point) {
        // SAFETY: sending a signal to this very process has no memory-safety precondition.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL cannot be caught; this line is never reached.
        std::process::abort();
    }
}
