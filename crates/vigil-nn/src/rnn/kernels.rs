//! Forward and backward passes of one recurrent layer over a whole sequence, on plain slices.
//!
//! Why by hand: burn 0.22 builds its LSTM/GRU from per-step tensor ops, and on our 2-core target
//! the per-op overhead made a training step ~4x slower than PyTorch's (docs/architecture.md). Here
//! one layer is one op: the input projection for all steps is a single gemm, each step adds one
//! small recurrent gemm, and the backward pass (backpropagation through time) ends with three
//! large gemms for the weight and input gradients. Gate conventions follow PyTorch so that weights,
//! tests and the reference scripts line up: LSTM gates (i, f, g, o), GRU gates (r, z, n) with
//! `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`. The initial state is zero.
//!
//! Layouts: `x` is batch-major `[batch, steps, input]`, `h` is `[batch, steps, hidden]`, weights are
//! PyTorch's `w_ih [gates*hidden, input]`, `w_hh [gates*hidden, hidden]`, biases `[gates*hidden]`.

use crate::fast_math::exp_f32;
use crate::gemm::{matmul, matmul_serial, Strided};
use crate::simd::wide_simd;
use rayon::prelude::*;

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Long short-term memory (Hochreiter & Schmidhuber 1997), four gates.
    Lstm,
    /// Gated recurrent unit (Cho et al. 2014), three gates.
    Gru,
}

impl Cell {
    /// Gates per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// Sizes of one layer call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub steps: usize,
    pub input: usize,
    pub hidden: usize,
}

/// The weights of one layer, as slices in PyTorch's layout.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    pub w_ih: &'a [f32],
    pub w_hh: &'a [f32],
    pub b_ih: &'a [f32],
    pub b_hh: &'a [f32],
}

/// What the backward pass needs from the forward pass.
#[derive(Debug, Clone)]
pub struct Cache {
    /// Activated gates, `[batch * steps, gates * hidden]`.
    pub gates: Vec<f32>,
    /// LSTM: the cell state c_t; GRU: the recurrent part of the candidate, W_hn h + b_hn.
    /// `[batch * steps, hidden]`.
    pub extra: Vec<f32>,
}

/// The cache of one forward pass, borrowed (e.g. straight from tensors).
#[derive(Debug, Clone, Copy)]
pub struct CacheView<'a> {
    pub gates: &'a [f32],
    pub extra: &'a [f32],
}

impl Cache {
    /// A borrowed view of this cache.
    pub fn view(&self) -> CacheView<'_> {
        CacheView {
            gates: &self.gates,
            extra: &self.extra,
        }
    }
}

/// Gradients of one layer call.
#[derive(Debug, Clone)]
pub struct Grads {
    pub x: Vec<f32>,
    pub w_ih: Vec<f32>,
    pub w_hh: Vec<f32>,
    pub b_ih: Vec<f32>,
    pub b_hh: Vec<f32>,
}

// The branch-free exponential of nn::sigmoid instead of libm's expf and tanhf: the LSTM step
// benchmark went from about 110 to 85 ms with it and the per-row cell functions below.
#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-v))
}

#[inline(always)]
fn tanh(v: f32) -> f32 {
    2.0 / (1.0 + exp_f32(-2.0 * v)) - 1.0
}

fn check(cell: Cell, d: Dims, x: &[f32], w: &Weights) {
    let g = cell.gates() * d.hidden;
    assert!(
        d.steps > 0 && d.hidden > 0,
        "a recurrent layer needs steps and hidden units"
    );
    assert_eq!(x.len(), d.batch * d.steps * d.input, "x has the wrong size");
    assert_eq!(w.w_ih.len(), g * d.input, "w_ih has the wrong size");
    assert_eq!(w.w_hh.len(), g * d.hidden, "w_hh has the wrong size");
    assert_eq!(w.b_ih.len(), g, "b_ih has the wrong size");
    assert_eq!(w.b_hh.len(), g, "b_hh has the wrong size");
}

/// Runs the layer over the sequence; returns every hidden state `[batch, steps, hidden]` and the
/// cache for [`backward`].
pub fn forward(cell: Cell, d: Dims, x: &[f32], w: Weights) -> (Vec<f32>, Cache) {
    check(cell, d, x, &w);
    let Dims {
        batch,
        steps,
        input,
        hidden,
    } = d;
    let g = cell.gates() * hidden;
    let rows = batch * steps;
    // Input projection of every step at once.
    let mut gates = vec![0.0f32; rows * g];
    matmul(
        rows,
        g,
        input,
        &mut gates,
        Strided::rows(0, g),
        x,
        Strided::rows(0, input),
        w.w_ih,
        Strided::transposed(input),
        false,
    );
    let mut h = vec![0.0f32; rows * hidden];
    let mut extra = vec![0.0f32; rows * hidden];
    // Batch rows never interact, and each row's steps are contiguous in the batch-major
    // buffers: split the batch into one contiguous part per thread and run each part's
    // recurrence on its own.
    let part = batch.div_ceil(rayon::current_num_threads()).max(1);
    gates
        .par_chunks_mut(part * steps * g)
        .zip(h.par_chunks_mut(part * steps * hidden))
        .zip(extra.par_chunks_mut(part * steps * hidden))
        .for_each(|((gates, h), extra)| {
            let dims = Dims {
                batch: h.len() / (steps * hidden),
                ..d
            };
            recur_forward(cell, dims, &w, gates, h, extra, matmul)
        });
    (h, Cache { gates, extra })
}

/// [`forward`] for inference: every hidden state `[batch, steps, hidden]`, computed on the
/// calling thread (for callers that spread batches over cores themselves) and without keeping
/// a cache for a backward pass.
pub fn forward_on_this_thread(cell: Cell, d: Dims, x: &[f32], w: Weights) -> Vec<f32> {
    check(cell, d, x, &w);
    let g = cell.gates() * d.hidden;
    let rows = d.batch * d.steps;
    let mut gates = vec![0.0f32; rows * g];
    matmul_serial(
        rows,
        g,
        d.input,
        &mut gates,
        Strided::rows(0, g),
        x,
        Strided::rows(0, d.input),
        w.w_ih,
        Strided::transposed(d.input),
        false,
    );
    let mut h = vec![0.0f32; rows * d.hidden];
    let mut extra = vec![0.0f32; rows * d.hidden];
    recur_forward(cell, d, &w, &mut gates, &mut h, &mut extra, matmul_serial);
    h
}

/// The signature of [`matmul`] and [`matmul_serial`], so that the recurrence can use either.
type Product = fn(usize, usize, usize, &mut [f32], Strided, &[f32], Strided, &[f32], Strided, bool);

/// The recurrence of [`forward`] for a contiguous part of the batch: `gates` holds the input
/// projections on entry and the activated gates on return.
fn recur_forward(
    cell: Cell,
    d: Dims,
    w: &Weights,
    gates: &mut [f32],
    h: &mut [f32],
    extra: &mut [f32],
    matmul: Product,
) {
    let Dims {
        batch,
        steps,
        hidden,
        ..
    } = d;
    let g = cell.gates() * hidden;
    let zeros = vec![0.0f32; hidden];
    match cell {
        Cell::Lstm => {
            for row in gates.chunks_exact_mut(g) {
                for (k, v) in row.iter_mut().enumerate() {
                    *v += w.b_ih[k] + w.b_hh[k];
                }
            }
            for t in 0..steps {
                if t > 0 {
                    matmul(
                        batch,
                        g,
                        hidden,
                        gates,
                        Strided::every(t * g, steps * g),
                        h,
                        Strided::every((t - 1) * hidden, steps * hidden),
                        w.w_hh,
                        Strided::transposed(hidden),
                        true,
                    );
                }
                for b in 0..batch {
                    let row = b * steps + t;
                    let (before, after) = extra.split_at_mut(row * hidden);
                    let c_prev = if t > 0 {
                        &before[(row - 1) * hidden..]
                    } else {
                        &zeros[..]
                    };
                    lstm_cell(
                        &mut gates[row * g..(row + 1) * g],
                        c_prev,
                        &mut after[..hidden],
                        &mut h[row * hidden..(row + 1) * hidden],
                    );
                }
            }
        }
        Cell::Gru => {
            for row in gates.chunks_exact_mut(g) {
                for (k, v) in row.iter_mut().enumerate() {
                    *v += w.b_ih[k];
                }
            }
            let mut hh = vec![0.0f32; batch * g];
            for t in 0..steps {
                for row in hh.chunks_exact_mut(g) {
                    row.copy_from_slice(w.b_hh);
                }
                if t > 0 {
                    matmul(
                        batch,
                        g,
                        hidden,
                        &mut hh,
                        Strided::rows(0, g),
                        h,
                        Strided::every((t - 1) * hidden, steps * hidden),
                        w.w_hh,
                        Strided::transposed(hidden),
                        true,
                    );
                }
                for b in 0..batch {
                    let row = b * steps + t;
                    let (before, after) = h.split_at_mut(row * hidden);
                    let h_prev = if t > 0 {
                        &before[(row - 1) * hidden..]
                    } else {
                        &zeros[..]
                    };
                    gru_cell(
                        &mut gates[row * g..(row + 1) * g],
                        &hh[b * g..(b + 1) * g],
                        h_prev,
                        &mut extra[row * hidden..(row + 1) * hidden],
                        &mut after[..hidden],
                    );
                }
            }
        }
    }
}

// The cell updates below work on one row's equal-length slices (no bounds checks, no branches)
// and stay out-of-line: as functions their slice arguments are known not to alias, so LLVM
// vectorises the loops (inlined into the caller it fell back to scalar code; perf).

wide_simd! {
    /// LSTM: activates one row's gates (i, f, g, o) in place; writes c and h.
    fn lstm_cell = lstm_cell_rows(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], h: &mut [f32])
}

#[inline(always)]
fn lstm_cell_rows(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], h: &mut [f32]) {
    let n = h.len();
    let (gi, rest) = gates.split_at_mut(n);
    let (gf, rest) = rest.split_at_mut(n);
    let (gg, go) = rest.split_at_mut(n);
    let (go, c_prev, c) = (&mut go[..n], &c_prev[..n], &mut c[..n]);
    for j in 0..n {
        let (i, f, cand, o) = (sigmoid(gi[j]), sigmoid(gf[j]), tanh(gg[j]), sigmoid(go[j]));
        (gi[j], gf[j], gg[j], go[j]) = (i, f, cand, o);
        c[j] = f * c_prev[j] + i * cand;
        h[j] = o * tanh(c[j]);
    }
}

wide_simd! {
    /// GRU: activates one row's gates (r, z, n) in place from the input part `gates` and the
    /// recurrent part `hh`; keeps W_hn h + b_hn in `hn`; writes h.
    fn gru_cell = gru_cell_rows(gates: &mut [f32], hh: &[f32], h_prev: &[f32], hn: &mut [f32], h: &mut [f32])
}

#[inline(always)]
fn gru_cell_rows(gates: &mut [f32], hh: &[f32], h_prev: &[f32], hn: &mut [f32], h: &mut [f32]) {
    let n = h.len();
    let (gr, rest) = gates.split_at_mut(n);
    let (gz, gn) = rest.split_at_mut(n);
    let (hr, rest) = hh.split_at(n);
    let (hz, hnn) = rest.split_at(n);
    let (gn, hnn, h_prev, hn) = (&mut gn[..n], &hnn[..n], &h_prev[..n], &mut hn[..n]);
    for j in 0..n {
        let r = sigmoid(gr[j] + hr[j]);
        let z = sigmoid(gz[j] + hz[j]);
        let cand = tanh(gn[j] + r * hnn[j]);
        (gr[j], gz[j], gn[j]) = (r, z, cand);
        hn[j] = hnn[j];
        h[j] = (1.0 - z) * cand + z * h_prev[j];
    }
}

wide_simd! {
    /// LSTM backward for one row: gate gradients into `d_gates`, the cell-state gradient carried in
    /// `dc_next` (read, then replaced by the one for the previous step).
    #[allow(clippy::too_many_arguments)]
    fn lstm_cell_backward = lstm_cell_backward_rows(
        gates: &[f32],
        c: &[f32],
        c_prev: &[f32],
        grad_h: &[f32],
        dh_next: &[f32],
        dc_next: &mut [f32],
        d_gates: &mut [f32],
    )
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_cell_backward_rows(
    gates: &[f32],
    c: &[f32],
    c_prev: &[f32],
    grad_h: &[f32],
    dh_next: &[f32],
    dc_next: &mut [f32],
    d_gates: &mut [f32],
) {
    let n = c.len();
    let (gi, rest) = gates.split_at(n);
    let (gf, rest) = rest.split_at(n);
    let (gg, go) = rest.split_at(n);
    let (di, rest) = d_gates.split_at_mut(n);
    let (df, rest) = rest.split_at_mut(n);
    let (dg, dout) = rest.split_at_mut(n);
    let (go, dout) = (&go[..n], &mut dout[..n]);
    let (c_prev, grad_h, dh_next, dc_next) =
        (&c_prev[..n], &grad_h[..n], &dh_next[..n], &mut dc_next[..n]);
    for j in 0..n {
        let dh = grad_h[j] + dh_next[j];
        let (i, f, cand, o) = (gi[j], gf[j], gg[j], go[j]);
        let tc = tanh(c[j]);
        let dc = dh * o * (1.0 - tc * tc) + dc_next[j];
        di[j] = dc * cand * i * (1.0 - i);
        df[j] = dc * c_prev[j] * f * (1.0 - f);
        dg[j] = dc * i * (1.0 - cand * cand);
        dout[j] = dh * tc * o * (1.0 - o);
        dc_next[j] = dc * f;
    }
}

wide_simd! {
    /// GRU backward for one row: input-part and recurrent-part gate gradients; `dh_next` holds the
    /// hidden-state gradient from the next step and is replaced by its direct path to this step's
    /// input state (z · dh); the recurrent product is added by the caller.
    #[allow(clippy::too_many_arguments)]
    fn gru_cell_backward = gru_cell_backward_rows(
        gates: &[f32],
        hn: &[f32],
        h_prev: &[f32],
        grad_h: &[f32],
        dh_next: &mut [f32],
        d_in: &mut [f32],
        d_rec: &mut [f32],
    )
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_cell_backward_rows(
    gates: &[f32],
    hn: &[f32],
    h_prev: &[f32],
    grad_h: &[f32],
    dh_next: &mut [f32],
    d_in: &mut [f32],
    d_rec: &mut [f32],
) {
    let n = hn.len();
    let (gr, rest) = gates.split_at(n);
    let (gz, gn) = rest.split_at(n);
    let (dir, rest) = d_in.split_at_mut(n);
    let (diz, din) = rest.split_at_mut(n);
    let (drr, rest) = d_rec.split_at_mut(n);
    let (drz, drn) = rest.split_at_mut(n);
    let (gn, din, drn) = (&gn[..n], &mut din[..n], &mut drn[..n]);
    let (h_prev, grad_h, dh_next) = (&h_prev[..n], &grad_h[..n], &mut dh_next[..n]);
    for j in 0..n {
        let dh = grad_h[j] + dh_next[j];
        let (r, z, cand) = (gr[j], gz[j], gn[j]);
        let dan = dh * (1.0 - z) * (1.0 - cand * cand);
        let dar = dan * hn[j] * r * (1.0 - r);
        let daz = dh * (h_prev[j] - cand) * z * (1.0 - z);
        (dir[j], diz[j], din[j]) = (dar, daz, dan);
        (drr[j], drz[j], drn[j]) = (dar, daz, dan * r);
        dh_next[j] = dh * z;
    }
}

/// Backpropagation through time: the gradients of the loss with respect to the input and the
/// weights, given the gradient `grad_h` with respect to every hidden state `[batch, steps, hidden]`.
pub fn backward(
    cell: Cell,
    d: Dims,
    x: &[f32],
    w: Weights,
    h: &[f32],
    cache: CacheView,
    grad_h: &[f32],
) -> Grads {
    check(cell, d, x, &w);
    let Dims {
        batch,
        steps,
        input,
        hidden,
    } = d;
    let g = cell.gates() * hidden;
    let rows = batch * steps;
    assert_eq!(h.len(), rows * hidden, "h has the wrong size");
    assert_eq!(grad_h.len(), rows * hidden, "grad_h has the wrong size");
    // Gradients of the pre-activations: of the input part (d_in) and, for the GRU whose
    // candidate gate splits, of the recurrent part (d_rec); for the LSTM they are the same.
    let mut d_in = vec![0.0f32; rows * g];
    // The LSTM's recurrent part equals its input part: it has no d_rec buffer, and its parts
    // get empty slices so that the parallel split below stays uniform.
    let rec_len = if cell == Cell::Gru { rows * g } else { 0 };
    let mut d_rec = vec![0.0f32; rec_len];
    let part = batch.div_ceil(rayon::current_num_threads()).max(1);
    let rec_part = if cell == Cell::Gru {
        part * steps * g
    } else {
        1
    };
    let mut rec_chunks: Vec<&mut [f32]> = d_rec.chunks_mut(rec_part).collect();
    rec_chunks.resize_with(batch.div_ceil(part), Default::default);
    d_in.par_chunks_mut(part * steps * g)
        .zip(rec_chunks.into_par_iter())
        .zip(cache.gates.par_chunks(part * steps * g))
        .zip(cache.extra.par_chunks(part * steps * hidden))
        .zip(h.par_chunks(part * steps * hidden))
        .zip(grad_h.par_chunks(part * steps * hidden))
        .for_each(|(((((d_in, d_rec), gates), extra), h), grad_h)| {
            let dims = Dims {
                batch: h.len() / (steps * hidden),
                ..d
            };
            recur_backward(cell, dims, &w, gates, extra, h, grad_h, d_in, d_rec);
        });
    // h_{t-1} for every row (zero at t = 0), so that dW_hh is one gemm over all steps.
    let mut h_prev = vec![0.0f32; rows * hidden];
    for b in 0..batch {
        let base = b * steps * hidden;
        if steps > 1 {
            h_prev[base + hidden..base + steps * hidden]
                .copy_from_slice(&h[base..base + (steps - 1) * hidden]);
        }
    }
    let d_rec = if cell == Cell::Lstm { &d_in } else { &d_rec };
    let mut grads = Grads {
        x: vec![0.0; rows * input],
        w_ih: vec![0.0; g * input],
        w_hh: vec![0.0; g * hidden],
        b_ih: column_sums(&d_in, g),
        b_hh: column_sums(d_rec, g),
    };
    matmul(
        g,
        input,
        rows,
        &mut grads.w_ih,
        Strided::rows(0, input),
        &d_in,
        Strided::transposed(g),
        x,
        Strided::rows(0, input),
        false,
    );
    matmul(
        g,
        hidden,
        rows,
        &mut grads.w_hh,
        Strided::rows(0, hidden),
        d_rec,
        Strided::transposed(g),
        &h_prev,
        Strided::rows(0, hidden),
        false,
    );
    matmul(
        rows,
        input,
        g,
        &mut grads.x,
        Strided::rows(0, input),
        &d_in,
        Strided::rows(0, g),
        w.w_ih,
        Strided::rows(0, input),
        false,
    );
    grads
}

/// Backpropagation through time for a contiguous part of the batch: fills the pre-activation
/// gradients `d_in` and (GRU) `d_rec`. Slices are that part's rows of the full buffers.
#[allow(clippy::too_many_arguments)]
fn recur_backward(
    cell: Cell,
    d: Dims,
    w: &Weights,
    gates: &[f32],
    extra: &[f32],
    h: &[f32],
    grad_h: &[f32],
    d_in: &mut [f32],
    d_rec: &mut [f32],
) {
    let Dims {
        batch,
        steps,
        hidden,
        ..
    } = d;
    let g = cell.gates() * hidden;
    let mut dh_next = vec![0.0f32; batch * hidden];
    let mut dc_next = vec![0.0f32; batch * hidden];
    let zeros = vec![0.0f32; hidden];
    for t in (0..steps).rev() {
        for b in 0..batch {
            let row = b * steps + t;
            let (rows, units) = (row * g..(row + 1) * g, row * hidden..(row + 1) * hidden);
            let prev = if t > 0 {
                (row - 1) * hidden..row * hidden
            } else {
                0..0
            };
            let unit = b * hidden..(b + 1) * hidden;
            match cell {
                Cell::Lstm => lstm_cell_backward(
                    &gates[rows.clone()],
                    &extra[units.clone()],
                    if t > 0 { &extra[prev] } else { &zeros[..] },
                    &grad_h[units],
                    &dh_next[unit.clone()],
                    &mut dc_next[unit],
                    &mut d_in[rows],
                ),
                Cell::Gru => gru_cell_backward(
                    &gates[rows.clone()],
                    &extra[units.clone()],
                    if t > 0 { &h[prev] } else { &zeros[..] },
                    &grad_h[units],
                    &mut dh_next[unit],
                    &mut d_in[rows.clone()],
                    &mut d_rec[rows],
                ),
            }
        }
        if t > 0 {
            // dh_{t-1} (+)= d_rec_t · W_hh  (the LSTM's direct path is nil: overwrite).
            let (src, accumulate): (&[f32], bool) = match cell {
                Cell::Lstm => (d_in, false),
                Cell::Gru => (d_rec, true),
            };
            matmul(
                batch,
                hidden,
                g,
                &mut dh_next,
                Strided::rows(0, hidden),
                src,
                Strided::every(t * g, steps * g),
                w.w_hh,
                Strided::rows(0, hidden),
                accumulate,
            );
        }
    }
}

fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; cols];
    for row in m.chunks_exact(cols) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    struct Case {
        d: Dims,
        x: Vec<f32>,
        w_ih: Vec<f32>,
        w_hh: Vec<f32>,
        b_ih: Vec<f32>,
        b_hh: Vec<f32>,
        /// The loss is Σ h ⊙ probe, so dL/dh = probe.
        probe: Vec<f32>,
    }

    fn case(cell: Cell, seed: u64) -> Case {
        let d = Dims {
            batch: 3,
            steps: 5,
            input: 4,
            hidden: 3,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut v = |n: usize, s: f32| (0..n).map(|_| rng.gen_range(-s..s)).collect::<Vec<_>>();
        let g = cell.gates() * d.hidden;
        Case {
            x: v(d.batch * d.steps * d.input, 1.0),
            w_ih: v(g * d.input, 0.6),
            w_hh: v(g * d.hidden, 0.6),
            b_ih: v(g, 0.3),
            b_hh: v(g, 0.3),
            probe: v(d.batch * d.steps * d.hidden, 1.0),
            d,
        }
    }

    fn loss(cell: Cell, c: &Case) -> f64 {
        let w = Weights {
            w_ih: &c.w_ih,
            w_hh: &c.w_hh,
            b_ih: &c.b_ih,
            b_hh: &c.b_hh,
        };
        let (h, _) = forward(cell, c.d, &c.x, w);
        h.iter()
            .zip(&c.probe)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum()
    }

    fn values_mut<'a>(c: &'a mut Case, name: &str) -> &'a mut Vec<f32> {
        match name {
            "x" => &mut c.x,
            "w_ih" => &mut c.w_ih,
            "w_hh" => &mut c.w_hh,
            "b_ih" => &mut c.b_ih,
            _ => &mut c.b_hh,
        }
    }

    /// Compares every analytic gradient with a central finite difference of the loss.
    fn check_against_finite_differences(cell: Cell) {
        let mut c = case(cell, 7);
        let w = Weights {
            w_ih: &c.w_ih,
            w_hh: &c.w_hh,
            b_ih: &c.b_ih,
            b_hh: &c.b_hh,
        };
        let (h, cache) = forward(cell, c.d, &c.x, w);
        let g = backward(cell, c.d, &c.x, w, &h, cache.view(), &c.probe);
        let eps = 1e-2f32;
        let mut worst = 0.0f64;
        for (name, analytic) in [
            ("x", g.x),
            ("w_ih", g.w_ih),
            ("w_hh", g.w_hh),
            ("b_ih", g.b_ih),
            ("b_hh", g.b_hh),
        ] {
            for (k, want) in analytic.iter().enumerate() {
                let orig = values_mut(&mut c, name)[k];
                values_mut(&mut c, name)[k] = orig + eps;
                let up = loss(cell, &c);
                values_mut(&mut c, name)[k] = orig - eps;
                let down = loss(cell, &c);
                values_mut(&mut c, name)[k] = orig;
                let numeric = (up - down) / (2.0 * eps as f64);
                let err = (numeric - *want as f64).abs() / (1.0 + numeric.abs());
                assert!(
                    err < 2e-3,
                    "{cell:?} d{name}[{k}]: analytic {want}, finite difference {numeric}"
                );
                worst = worst.max(err);
            }
        }
        assert!(worst.is_finite());
    }

    #[test]
    fn lstm_gradients_match_finite_differences() {
        check_against_finite_differences(Cell::Lstm);
    }

    #[test]
    fn gru_gradients_match_finite_differences() {
        check_against_finite_differences(Cell::Gru);
    }

    #[test]
    fn gru_step_matches_the_pytorch_formula() {
        // One step, one unit, hand-computed: h = (1 - z) n + z h_prev with h_prev = 0.
        let d = Dims {
            batch: 1,
            steps: 1,
            input: 1,
            hidden: 1,
        };
        let w = Weights {
            w_ih: &[0.5, -0.25, 1.0],
            w_hh: &[0.0, 0.0, 0.0],
            b_ih: &[0.1, 0.2, 0.3],
            b_hh: &[0.0, 0.0, 0.4],
        };
        let (h, _) = forward(Cell::Gru, d, &[2.0], w);
        let r = sigmoid(0.5 * 2.0 + 0.1);
        let z = sigmoid(-0.25 * 2.0 + 0.2);
        let n = (1.0f32 * 2.0 + 0.3 + r * 0.4).tanh();
        assert!((h[0] - (1.0 - z) * n).abs() < 1e-6);
    }
}
