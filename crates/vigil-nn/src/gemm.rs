//! A safe, bounds-checked front for `gemm::gemm` on strided f32 matrices.
//!
//! The fused recurrent kernels and the inference kernels ([`super::infer`]) multiply slices of
//! larger buffers (one time step of a batch-major sequence, a transposed weight, some columns of
//! a weight), which is exactly what a strided gemm does without copies. burn's flex backend calls
//! the same crate; we call it directly where going through tensors would cost more than the
//! products themselves.

/// How a matrix lies in a slice: element `(r, c)` is at `offset + r * row_stride + c * col_stride`.
#[derive(Debug, Clone, Copy)]
pub struct Strided {
    pub offset: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Strided {
    /// A dense row-major matrix with `cols` columns, starting at `offset`.
    pub fn rows(offset: usize, cols: usize) -> Self {
        Strided {
            offset,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Rows spaced `row_stride` apart (one time step of a batch-major sequence).
    pub fn every(offset: usize, row_stride: usize) -> Self {
        Strided {
            offset,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose of a dense row-major matrix that has `stored_cols` columns.
    pub fn transposed(stored_cols: usize) -> Self {
        Strided {
            offset: 0,
            row_stride: 1,
            col_stride: stored_cols,
        }
    }

    fn check(&self, len: usize, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = self.offset + (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
        assert!(
            last < len,
            "gemm: {what} view ({rows}x{cols}, {self:?}) reaches past its buffer of {len}"
        );
    }
}

/// Work below this many multiply-adds runs on the calling thread: splitting it costs more
/// than it saves.
const PARALLEL_WORK: usize = 1 << 20;

/// `out = (accumulate ? out : 0) + a · b` with `a` m×k and `b` k×n; large products use all
/// cores.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    out: &mut [f32],
    out_view: Strided,
    a: &[f32],
    a_view: Strided,
    b: &[f32],
    b_view: Strided,
    accumulate: bool,
) {
    let threads = m * n * k >= PARALLEL_WORK;
    product(
        m, n, k, out, out_view, a, a_view, b, b_view, accumulate, threads,
    );
}

/// [`matmul`] on the calling thread only, for callers that already split work across cores.
#[allow(clippy::too_many_arguments)]
pub fn matmul_serial(
    m: usize,
    n: usize,
    k: usize,
    out: &mut [f32],
    out_view: Strided,
    a: &[f32],
    a_view: Strided,
    b: &[f32],
    b_view: Strided,
    accumulate: bool,
) {
    product(
        m, n, k, out, out_view, a, a_view, b, b_view, accumulate, false,
    );
}

/// [`matmul`] split across cores when `threads`, else on the calling thread: for callers with
/// their own threshold (the fused dense layers).
#[allow(clippy::too_many_arguments)]
pub fn product(
    m: usize,
    n: usize,
    k: usize,
    out: &mut [f32],
    out_view: Strided,
    a: &[f32],
    a_view: Strided,
    b: &[f32],
    b_view: Strided,
    accumulate: bool,
    threads: bool,
) {
    out_view.check(out.len(), m, n, "output");
    a_view.check(a.len(), m, k, "left");
    b_view.check(b.len(), k, n, "right");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    out[out_view.offset + r * out_view.row_stride + c * out_view.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = if threads {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three views were checked above to stay inside their slices, `out` is borrowed
    // mutably so it cannot alias `a` or `b`, and gemm reads/writes only the viewed elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr().add(out_view.offset),
            out_view.col_stride as isize,
            out_view.row_stride as isize,
            accumulate,
            a.as_ptr().add(a_view.offset),
            a_view.col_stride as isize,
            a_view.row_stride as isize,
            b.as_ptr().add(b_view.offset),
            b_view.col_stride as isize,
            b_view.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_product_matches_a_loop() {
        // a: 2x3 row-major; b: stored 4x3 row-major, used transposed as 3x4.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
        let mut out = vec![1.0; 8];
        matmul(
            2,
            4,
            3,
            &mut out,
            Strided::rows(0, 4),
            &a,
            Strided::rows(0, 3),
            &b,
            Strided::transposed(3),
            true,
        );
        for r in 0..2 {
            for c in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|i| a[r * 3 + i] * b[c * 3 + i]).sum::<f32>();
                assert!((out[r * 4 + c] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    #[should_panic(expected = "reaches past")]
    fn a_view_past_the_buffer_is_refused() {
        let mut out = vec![0.0; 4];
        matmul(
            2,
            2,
            2,
            &mut out,
            Strided::rows(0, 2),
            &[0.0; 3],
            Strided::rows(0, 2),
            &[0.0; 4],
            Strided::rows(0, 2),
            false,
        );
    }
}
