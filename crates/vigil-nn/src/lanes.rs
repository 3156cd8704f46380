//! Reductions over slices with eight partial results, for the fused kernels' inner loops.
//!
//! Why: a float sum (or max) in one accumulator is a chain of dependent operations that the
//! compiler may not reorder, so the loop around it stays scalar. Eight partial results fit one
//! AVX2 register (two SSE ones) and are combined once at the end.

/// Σ x.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for lane in 0..8 {
            acc[lane] += c[lane];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ aᵢbᵢ.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for lane in 0..8 {
            acc[lane] += x[lane] * y[lane];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest element (−∞ for an empty slice; a NaN may or may not win).
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for lane in 0..8 {
            acc[lane] = acc[lane].max(c[lane]);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reductions_agree_with_plain_loops_on_every_tail_length() {
        for n in [0usize, 1, 7, 8, 9, 16, 23, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain_sum: f32 = a.iter().sum();
            let plain_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let plain_max = a.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            assert!((super::sum(&a) - plain_sum).abs() < 1e-5, "sum, n = {n}");
            assert!(
                (super::dot(&a, &b) - plain_dot).abs() < 1e-5,
                "dot, n = {n}"
            );
            assert_eq!(super::max(&a), plain_max, "max, n = {n}");
        }
    }
}
