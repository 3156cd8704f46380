//! How many cores vigil spreads its work over. Everything parallel in vigil — our scoring chunks
//! (`par_rows`), the gemm products and burn's flex backend — runs on rayon's global pool, so
//! sizing that pool once, before any work, bounds them all (edge devices that run other work
//! need `--threads 1`, issue 3).

use crate::error::{ModelError, Result};

/// Sizes the global pool to `threads` workers. Call once, before any model is built.
pub fn use_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(ModelError::config(
            "threads",
            "--threads must be at least 1 (leave it out to use every core)",
        ));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| ModelError::config("threads", format!("cannot size the thread pool: {e}")))
}
