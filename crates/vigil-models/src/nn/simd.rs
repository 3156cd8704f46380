//! Run-time selection of wider SIMD for hot element-wise loops.
//!
//! The build targets plain x86-64 (SSE2) so that the binary runs on any x86-64 machine; the few
//! loops that dominate a kernel are compiled a second time for AVX2 + FMA and chosen when the CPU
//! has them (docs/architecture.md, "SIMD width").

/// Defines `fn $name(args)` that runs `$body(args)` compiled for AVX2 and FMA where the CPU has
/// them, else for the build's baseline (x86-64: SSE2, half the vector width). The wide variant is
/// a separate function, so the compiler still sees non-aliasing slice arguments.
macro_rules! wide_simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident = $body:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$meta])*
        #[inline(never)]
        $vis fn $name($($arg: $ty),*) {
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

pub(crate) use wide_simd;
