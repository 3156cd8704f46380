//! Run-time selection of wider SIMD for hot element-wise loops.
//!
//! The build targets plain x86-64 (SSE2) so that the binary runs on any x86-64 machine; the few
//! loops that dominate a kernel are compiled again for AVX-512 and for AVX2 + FMA, and the
//! widest the CPU has is chosen at run time (docs/architecture.md, "SIMD width").

/// Defines `fn $name(args)` that runs `$body(args)` compiled for AVX-512 where the CPU has it,
/// else for AVX2 and FMA where it has them, else for the build's baseline (x86-64: SSE2).
/// Loops that reduce (sums) add in a different order at each width, so their last bits differ
/// between CPUs, never between runs on one machine. The wide variant is
/// a separate function, so the compiler still sees non-aliasing slice arguments.
#[macro_export]
macro_rules! wide_simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident = $body:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$meta])*
        #[inline(never)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn widest($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: the CPU has the features `widest` is compiled for (checked above;
                // every AVX-512 CPU also has AVX2 and FMA).
                unsafe { widest($($arg),*) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: the CPU has the features `wide` is compiled for (checked above).
                unsafe { wide($($arg),*) };
                return;
            }
            $body($($arg),*)
        }
    };
}

pub use crate::wide_simd;
