//! The core of multi-head attention, forward and backward, on slices:
//! `context = (softmax(q·kᵀ) ∘ keep) · v` per head, with `q` already scaled by 1/√d_k and `keep`
//! an optional inverted-dropout mask on the attention weights.
//!
//! Why by hand: through burn tensors this core is a reshape, two swaps, a batched matmul over
//! `batch x heads` tiny matrices, a softmax, a dropout and another batched matmul — for TranAD's
//! 38 heads of size 2 that was two thirds of a training epoch (14.8 s with it, 5.0 s with the core
//! replaced by a copy of v; SMD shapes). Here each sequence is one task: its heads' scores,
//! softmax and weighted sums are short loops over contiguous rows.
//!
//! Layouts: `q` is `[batch, lq, d]`, `k` and `v` are `[batch, lk, d]` with head `h` in columns
//! `h·d_k .. (h+1)·d_k`. Inside, each sequence is rearranged component-major with the heads
//! padded to whole 8-float vectors (`[row][component][lane]`), so that every inner loop runs
//! across heads — TranAD's heads have two components, loops over those would be two long. The
//! attention weights and the `keep` mask use the private layout `[batch, lq, lk, lanes]`.

use rayon::prelude::*;

use crate::fast_math::exp_f32;
use crate::simd::wide_simd;

/// Sizes of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub lq: usize,
    pub lk: usize,
    pub d: usize,
    pub heads: usize,
}

impl Dims {
    fn dk(&self) -> usize {
        self.d / self.heads
    }

    /// Heads rounded up to whole 8-float vectors.
    fn lanes(&self) -> usize {
        self.heads.next_multiple_of(8)
    }

    fn check(&self, q: &[f32], k: &[f32], v: &[f32], keep: Option<&[f32]>) {
        assert!(
            self.heads > 0 && self.d.is_multiple_of(self.heads),
            "{} columns do not split into {} heads",
            self.d,
            self.heads
        );
        assert_eq!(
            q.len(),
            self.batch * self.lq * self.d,
            "q has the wrong size"
        );
        assert_eq!(
            k.len(),
            self.batch * self.lk * self.d,
            "k has the wrong size"
        );
        assert_eq!(v.len(), k.len(), "v has the wrong size");
        if let Some(keep) = keep {
            assert_eq!(keep.len(), self.weights_len(), "keep has the wrong size");
        }
    }

    /// Length of the weights buffer and of a `keep` mask, `batch x lq x lk x lanes`.
    pub fn weights_len(&self) -> usize {
        self.batch * self.per_sequence_weights()
    }

    fn per_sequence_weights(&self) -> usize {
        self.lq * self.lk * self.lanes()
    }
}

/// `count` rows of `heads x dk` values, row `r` starting at `r * stride`, to
/// `[row][component][lane]` with zeros in the padding lanes.
fn to_planar(
    rows: &[f32],
    stride: usize,
    count: usize,
    heads: usize,
    dk: usize,
    out: &mut Vec<f32>,
) {
    let lanes = heads.next_multiple_of(8);
    out.clear();
    for r in 0..count {
        let row = &rows[r * stride..r * stride + heads * dk];
        for c in 0..dk {
            out.extend((0..heads).map(|h| row[h * dk + c]));
            out.extend(std::iter::repeat_n(0.0, lanes - heads));
        }
    }
}

/// The inverse of [`to_planar`] for contiguous rows, adding into `rows`.
fn add_from_planar(planar: &[f32], heads: usize, dk: usize, rows: &mut [f32]) {
    let lanes = heads.next_multiple_of(8);
    for (row, p) in rows
        .chunks_exact_mut(heads * dk)
        .zip(planar.chunks_exact(dk * lanes))
    {
        for (c, lane) in p.chunks_exact(lanes).enumerate() {
            for (h, v) in lane[..heads].iter().enumerate() {
                row[h * dk + c] += v;
            }
        }
    }
}

/// Buffers for [`score_sequence`], reused across the sequences of a scoring chunk.
#[derive(Default)]
pub(crate) struct SequenceScratch {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    context: Vec<f32>,
    weights: Vec<f32>,
    ones: Vec<f32>,
}

/// The attention context of one sequence for scoring (no dropout, weights not kept), added into
/// `context` (`lq x d`): `q` holds `lq` rows with row stride `q_stride`, `k` and `v` hold `lk`
/// rows with row stride `kv_stride` (so that interleaved `[k | v]` rows are read in place).
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_sequence(
    heads: usize,
    d: usize,
    (q, q_stride, lq): (&[f32], usize, usize),
    (k, v, kv_stride, lk): (&[f32], &[f32], usize, usize),
    context: &mut [f32],
    s: &mut SequenceScratch,
) {
    let (dk, lanes) = (d / heads, heads.next_multiple_of(8));
    to_planar(q, q_stride, lq, heads, dk, &mut s.q);
    to_planar(k, kv_stride, lk, heads, dk, &mut s.k);
    to_planar(v, kv_stride, lk, heads, dk, &mut s.v);
    s.ones.resize(lq * lk * lanes, 1.0);
    s.weights.resize(lq * lk * lanes, 0.0);
    s.context.clear();
    s.context.resize(s.q.len(), 0.0);
    forward_sequence(
        lq,
        lk,
        lanes,
        &s.q,
        &s.k,
        &s.v,
        &s.ones,
        &mut s.weights,
        &mut s.context,
    );
    add_from_planar(&s.context, heads, dk, context);
}

/// Returns `(context [batch, lq, d], weights)`; `weights` are the softmax outputs before `keep`
/// is applied (the backward pass needs them so).
pub fn forward(
    dims: Dims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    keep: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    dims.check(q, k, v, keep);
    let Dims { lq, lk, d, .. } = dims;
    let per_weights = dims.per_sequence_weights();
    let mut context = vec![0.0f32; q.len()];
    let mut weights = vec![0.0f32; dims.weights_len()];
    context
        .par_chunks_mut((lq * d).max(1))
        .zip(weights.par_chunks_mut(per_weights.max(1)))
        .enumerate()
        .for_each(|(b, (ctx, w))| {
            let (mut qp, mut kp, mut vp) = (Vec::new(), Vec::new(), Vec::new());
            let (heads, dk) = (dims.heads, dims.dk());
            to_planar(&q[b * lq * d..], d, lq, heads, dk, &mut qp);
            to_planar(&k[b * lk * d..], d, lk, heads, dk, &mut kp);
            to_planar(&v[b * lk * d..], d, lk, heads, dk, &mut vp);
            let mut cp = vec![0.0f32; qp.len()];
            let ones;
            let keep = match keep {
                Some(m) => &m[b * per_weights..(b + 1) * per_weights],
                None => {
                    ones = vec![1.0f32; per_weights];
                    &ones[..]
                }
            };
            forward_sequence(lq, lk, dims.lanes(), &qp, &kp, &vp, keep, w, &mut cp);
            add_from_planar(&cp, heads, dk, ctx);
        });
    (context, weights)
}

wide_simd! {
    #[allow(clippy::too_many_arguments)]
    fn forward_sequence = forward_sequence_lanes(
        lq: usize,
        lk: usize,
        lanes: usize,
        qp: &[f32],
        kp: &[f32],
        vp: &[f32],
        keep: &[f32],
        weights: &mut [f32],
        cp: &mut [f32],
    )
}

/// One sequence, planar: weights `[lq][lk][lanes]`, context `cp` `[lq][dk][lanes]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_sequence_lanes(
    lq: usize,
    lk: usize,
    lanes: usize,
    qp: &[f32],
    kp: &[f32],
    vp: &[f32],
    keep: &[f32],
    weights: &mut [f32],
    cp: &mut [f32],
) {
    let width = qp.len() / lq.max(1);
    let mut max = vec![0.0f32; lanes];
    let mut total = vec![0.0f32; lanes];
    for i in 0..lq {
        let qi = &qp[i * width..(i + 1) * width];
        let w = &mut weights[i * lk * lanes..(i + 1) * lk * lanes];
        for (j, s) in w.chunks_exact_mut(lanes).enumerate() {
            s.fill(0.0);
            for (qc, kc) in qi
                .chunks_exact(lanes)
                .zip(kp[j * width..(j + 1) * width].chunks_exact(lanes))
            {
                for ((s, a), b) in s.iter_mut().zip(qc).zip(kc) {
                    *s += a * b;
                }
            }
        }
        max.fill(f32::NEG_INFINITY);
        for s in w.chunks_exact(lanes) {
            for (m, x) in max.iter_mut().zip(s) {
                *m = m.max(*x);
            }
        }
        total.fill(0.0);
        for s in w.chunks_exact_mut(lanes) {
            for ((x, m), t) in s.iter_mut().zip(&max).zip(total.iter_mut()) {
                *x = exp_f32(*x - m);
                *t += *x;
            }
        }
        total.iter_mut().for_each(|t| *t = 1.0 / *t);
        let ci = &mut cp[i * width..(i + 1) * width];
        for (j, s) in w.chunks_exact_mut(lanes).enumerate() {
            for (x, t) in s.iter_mut().zip(&total) {
                *x *= t;
            }
            let m = &keep[(i * lk + j) * lanes..(i * lk + j + 1) * lanes];
            for (cc, vc) in ci
                .chunks_exact_mut(lanes)
                .zip(vp[j * width..(j + 1) * width].chunks_exact(lanes))
            {
                for (((c, x), p), m) in cc.iter_mut().zip(vc).zip(s.iter()).zip(m) {
                    *c += p * m * x;
                }
            }
        }
    }
}

/// Gradients `(dq, dk, dv)` of the context with respect to the inputs, given the upstream
/// gradient `grad` (`[batch, lq, d]`) and the weights [`forward`] returned.
pub fn backward(
    dims: Dims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    keep: Option<&[f32]>,
    weights: &[f32],
    grad: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    dims.check(q, k, v, keep);
    assert_eq!(
        weights.len(),
        dims.weights_len(),
        "weights have the wrong size"
    );
    assert_eq!(grad.len(), q.len(), "the gradient has the wrong size");
    let Dims { lq, lk, d, .. } = dims;
    let per_weights = dims.per_sequence_weights();
    let (mut dq, mut dkey, mut dv) = (
        vec![0.0f32; q.len()],
        vec![0.0f32; k.len()],
        vec![0.0f32; v.len()],
    );
    dq.par_chunks_mut((lq * d).max(1))
        .zip(dkey.par_chunks_mut((lk * d).max(1)))
        .zip(dv.par_chunks_mut((lk * d).max(1)))
        .enumerate()
        .for_each(|(b, ((dq, dkey), dv))| {
            let mut p = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
            let (heads, dk) = (dims.heads, dims.dk());
            to_planar(&q[b * lq * d..], d, lq, heads, dk, &mut p[0]);
            to_planar(&k[b * lk * d..], d, lk, heads, dk, &mut p[1]);
            to_planar(&v[b * lk * d..], d, lk, heads, dk, &mut p[2]);
            to_planar(&grad[b * lq * d..], d, lq, heads, dk, &mut p[3]);
            let [qp, kp, vp, gp] = p;
            let (mut dqp, mut dkp, mut dvp) = (
                vec![0.0f32; qp.len()],
                vec![0.0f32; kp.len()],
                vec![0.0f32; vp.len()],
            );
            let ones;
            let keep = match keep {
                Some(m) => &m[b * per_weights..(b + 1) * per_weights],
                None => {
                    ones = vec![1.0f32; per_weights];
                    &ones[..]
                }
            };
            let w = &weights[b * per_weights..(b + 1) * per_weights];
            backward_sequence(
                lq,
                lk,
                dims.lanes(),
                &qp,
                &kp,
                &vp,
                &gp,
                keep,
                w,
                &mut dqp,
                &mut dkp,
                &mut dvp,
            );
            add_from_planar(&dqp, heads, dk, dq);
            add_from_planar(&dkp, heads, dk, dkey);
            add_from_planar(&dvp, heads, dk, dv);
        });
    (dq, dkey, dv)
}

wide_simd! {
    #[allow(clippy::too_many_arguments)]
    fn backward_sequence = backward_sequence_lanes(
        lq: usize,
        lk: usize,
        lanes: usize,
        qp: &[f32],
        kp: &[f32],
        vp: &[f32],
        gp: &[f32],
        keep: &[f32],
        weights: &[f32],
        dqp: &mut [f32],
        dkp: &mut [f32],
        dvp: &mut [f32],
    )
}

/// One sequence, planar (see [`forward_sequence_lanes`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_sequence_lanes(
    lq: usize,
    lk: usize,
    lanes: usize,
    qp: &[f32],
    kp: &[f32],
    vp: &[f32],
    gp: &[f32],
    keep: &[f32],
    weights: &[f32],
    dqp: &mut [f32],
    dkp: &mut [f32],
    dvp: &mut [f32],
) {
    let width = qp.len() / lq.max(1);
    let mut dp = vec![0.0f32; lk * lanes];
    let mut dot = vec![0.0f32; lanes];
    for i in 0..lq {
        let gi = &gp[i * width..(i + 1) * width];
        let qi = &qp[i * width..(i + 1) * width];
        let p = &weights[i * lk * lanes..(i + 1) * lk * lanes];
        let m = &keep[i * lk * lanes..(i + 1) * lk * lanes];
        // Through the weighted sum with p' = p ∘ keep: dv_j += p'_ij g_i, dp'_ij = g_i · v_j,
        // then back through the mask: dp_ij = keep_ij dp'_ij.
        for j in 0..lk {
            let (pj, mj) = (
                &p[j * lanes..(j + 1) * lanes],
                &m[j * lanes..(j + 1) * lanes],
            );
            let dpj = &mut dp[j * lanes..(j + 1) * lanes];
            dpj.fill(0.0);
            let vj = &vp[j * width..(j + 1) * width];
            let dvj = &mut dvp[j * width..(j + 1) * width];
            for ((gc, vc), dvc) in gi
                .chunks_exact(lanes)
                .zip(vj.chunks_exact(lanes))
                .zip(dvj.chunks_exact_mut(lanes))
            {
                for ((((d, g), x), dv), (pp, mm)) in dpj
                    .iter_mut()
                    .zip(gc)
                    .zip(vc)
                    .zip(dvc.iter_mut())
                    .zip(pj.iter().zip(mj))
                {
                    *d += g * x;
                    *dv += pp * mm * g;
                }
            }
            for (d, mm) in dpj.iter_mut().zip(mj) {
                *d *= mm;
            }
        }
        // Through the softmax: ds_j = p_j (dp_j − Σ_l p_l dp_l), per head.
        dot.fill(0.0);
        for (pj, dpj) in p.chunks_exact(lanes).zip(dp.chunks_exact(lanes)) {
            for ((t, a), b) in dot.iter_mut().zip(pj).zip(dpj) {
                *t += a * b;
            }
        }
        for (pj, dpj) in p.chunks_exact(lanes).zip(dp.chunks_exact_mut(lanes)) {
            for ((d, a), t) in dpj.iter_mut().zip(pj).zip(&dot) {
                *d = a * (*d - t);
            }
        }
        // dq_i += Σ_j ds_j k_j and dk_j += ds_j q_i.
        let dqi = &mut dqp[i * width..(i + 1) * width];
        for j in 0..lk {
            let ds = &dp[j * lanes..(j + 1) * lanes];
            let kj = &kp[j * width..(j + 1) * width];
            let dkj = &mut dkp[j * width..(j + 1) * width];
            for (((dqc, kc), dkc), qc) in dqi
                .chunks_exact_mut(lanes)
                .zip(kj.chunks_exact(lanes))
                .zip(dkj.chunks_exact_mut(lanes))
                .zip(qi.chunks_exact(lanes))
            {
                for ((((dq, x), dk), y), s) in
                    dqc.iter_mut().zip(kc).zip(dkc.iter_mut()).zip(qc).zip(ds)
                {
                    *dq += s * x;
                    *dk += s * y;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64)
            .map(|i| (((i * 2654435761 + seed * 97) % 1000) as f32 / 1000.0 - 0.5) * 1.5)
            .collect()
    }

    /// Σ context ∘ r for a fixed r: its gradient with respect to the context is r.
    fn objective(
        dims: Dims,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        keep: Option<&[f32]>,
        r: &[f32],
    ) -> f64 {
        let (ctx, _) = forward(dims, q, k, v, keep);
        ctx.iter()
            .zip(r)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum()
    }

    #[test]
    fn gradients_match_finite_differences_with_and_without_a_mask() {
        let dims = Dims {
            batch: 2,
            lq: 3,
            lk: 4,
            d: 6,
            heads: 3,
        };
        let (q, k, v) = (
            values(2 * 3 * 6, 1),
            values(2 * 4 * 6, 2),
            values(2 * 4 * 6, 3),
        );
        let r = values(2 * 3 * 6, 4);
        let mask: Vec<f32> = (0..dims.weights_len())
            .map(|i| if i % 5 == 0 { 0.0 } else { 1.25 })
            .collect();
        for keep in [None, Some(&mask[..])] {
            let (_, w) = forward(dims, &q, &k, &v, keep);
            let (dq, dk, dv) = backward(dims, &q, &k, &v, keep, &w, &r);
            for (which, analytic) in [(0, &dq), (1, &dk), (2, &dv)] {
                for idx in 0..analytic.len() {
                    let eps = 1e-2f32;
                    let mut inputs = [q.clone(), k.clone(), v.clone()];
                    inputs[which][idx] += eps;
                    let up = objective(dims, &inputs[0], &inputs[1], &inputs[2], keep, &r);
                    inputs[which][idx] -= 2.0 * eps;
                    let down = objective(dims, &inputs[0], &inputs[1], &inputs[2], keep, &r);
                    let numeric = (up - down) / (2.0 * eps as f64);
                    assert!(
                        (numeric - analytic[idx] as f64).abs() < 2e-3,
                        "input {which}[{idx}]: numeric {numeric} vs analytic {}",
                        analytic[idx]
                    );
                }
            }
        }
    }
}
