//! Multi-head attention for scoring, on slices (see the parent module for why), with the
//! semantics of [`crate::nn::Attention`]: q/k/v projections, softmax(q·kᵀ/√d_k)·v per head,
//! output projection.

use super::{Dense, Linear};
use crate::nn::sigmoid::exp_f32;
use crate::nn::Activation;

/// The weights of one trained attention block, ready for [`AttentionWeights::forward_residual`].
#[derive(Debug, Clone)]
pub struct AttentionWeights {
    heads: usize,
    d_model: usize,
    /// The query projection with the 1/√d_k scale folded in.
    query: Dense,
    /// Key and value projections side by side: one product over the memory gives `[k | v]`.
    key_value: Dense,
    /// The value projection alone, for attention over a single key.
    value: Dense,
    output: Dense,
}

/// Per-task buffers, reused across the sequences of a chunk.
#[derive(Default)]
struct Scratch {
    query: Vec<f32>,
    key_value: Vec<f32>,
    context: Vec<f32>,
    /// Queries, keys, values and one context row rearranged component-major (see `attend`).
    q_planar: Vec<f32>,
    k_planar: Vec<f32>,
    v_planar: Vec<f32>,
    context_planar: Vec<f32>,
    /// Attention weights of one query: `keys x heads`.
    weights: Vec<f32>,
    max: Vec<f32>,
    total: Vec<f32>,
}

impl AttentionWeights {
    /// Copies the four projections of a trained attention block with `heads` heads.
    pub fn new(
        query: &Linear,
        key: &Linear,
        value: &Linear,
        output: &Linear,
        heads: usize,
    ) -> AttentionWeights {
        let (query, key, value, output) = (
            Dense::from_linear(query),
            Dense::from_linear(key),
            Dense::from_linear(value),
            Dense::from_linear(output),
        );
        let d_model = query.outputs();
        assert!(
            heads > 0 && d_model.is_multiple_of(heads),
            "{d_model} % {heads}"
        );
        let scale = 1.0 / ((d_model / heads) as f32).sqrt();
        AttentionWeights {
            heads,
            d_model,
            query: query.scaled(scale),
            key_value: Dense::concat(&[&key, &value]),
            value,
            output,
        }
    }

    /// `out = residual + attention(query, memory)` for `n` independent sequences: `query` holds
    /// `n x lq` rows and `memory` `n x lk` rows of `d_model` values, sequence after sequence;
    /// `residual` and `out` have the shape of `query`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_residual(
        &self,
        query: &[f32],
        lq: usize,
        memory: &[f32],
        lk: usize,
        n: usize,
        residual: &[f32],
        out: &mut Vec<f32>,
    ) {
        let d = self.d_model;
        let mut s = Scratch::default();
        if lk == 1 {
            // A softmax over one key is 1: the context is that key's value, whatever the query.
            self.value
                .forward(memory, n, Activation::Linear, &mut s.key_value);
            for seq in 0..n {
                for _ in 0..lq {
                    s.context
                        .extend_from_slice(&s.key_value[seq * d..(seq + 1) * d]);
                }
            }
        } else {
            self.query
                .forward(query, n * lq, Activation::Linear, &mut s.query);
            self.key_value
                .forward(memory, n * lk, Activation::Linear, &mut s.key_value);
            s.context.resize(n * lq * d, 0.0);
            for seq in 0..n {
                self.attend_dispatch(seq, lq, lk, &mut s);
            }
        }
        self.output
            .forward_residual(&s.context, n * lq, residual, out);
    }

    /// [`Self::attend`] compiled for AVX2 and FMA where the CPU has them (the build targets
    /// plain x86-64, whose SSE2 vectors are half as wide).
    fn attend_dispatch(&self, seq: usize, lq: usize, lk: usize, s: &mut Scratch) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features `attend_avx2` is compiled for (checked above).
            unsafe { self.attend_avx2(seq, lq, lk, s) };
            return;
        }
        self.attend(seq, lq, lk, s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn attend_avx2(&self, seq: usize, lq: usize, lk: usize, s: &mut Scratch) {
        self.attend(seq, lq, lk, s)
    }

    /// The per-head context of sequence `seq` from its projected queries, keys and values.
    ///
    /// Queries, keys and values are first rearranged from `[row][head][component]` to
    /// `[row][component][head]`, so that every inner loop runs across heads: TranAD has F heads
    /// of 2 components, where loops over components would be two elements long. (For a few
    /// wide heads the loops across heads are short instead; no detector here has those yet.)
    #[inline(always)]
    fn attend(&self, seq: usize, lq: usize, lk: usize, s: &mut Scratch) {
        let (d, heads) = (self.d_model, self.heads);
        let dk = d / heads;
        // Each component's heads are padded with zeros to a whole number of 8-float vectors, so
        // that no loop over heads ends in a scalar remainder (TranAD on SMD: 38 heads -> 40).
        // A padded head has zero queries, keys and values, and is never read back.
        let lanes = heads.next_multiple_of(8);
        let width = dk * lanes;
        let planar =
            |rows: &[f32], stride: usize, offset: usize, count: usize, out: &mut Vec<f32>| {
                out.clear();
                for r in 0..count {
                    let row = &rows[r * stride + offset..r * stride + offset + d];
                    for c in 0..dk {
                        out.extend((0..heads).map(|h| row[h * dk + c]));
                        out.extend(std::iter::repeat_n(0.0, lanes - heads));
                    }
                }
            };
        let queries = &s.query[seq * lq * d..(seq + 1) * lq * d];
        let kv = &s.key_value[seq * lk * 2 * d..(seq + 1) * lk * 2 * d];
        planar(queries, d, 0, lq, &mut s.q_planar);
        planar(kv, 2 * d, 0, lk, &mut s.k_planar);
        planar(kv, 2 * d, d, lk, &mut s.v_planar);
        s.weights.resize(lk * lanes, 0.0);
        s.max.resize(lanes, 0.0);
        s.total.resize(lanes, 0.0);
        s.context_planar.resize(width, 0.0);
        for i in 0..lq {
            let q = &s.q_planar[i * width..(i + 1) * width];
            // Scores q·k: one row of `weights` per key, one column per head.
            for (j, scores) in s.weights.chunks_exact_mut(lanes).enumerate() {
                let k = &s.k_planar[j * width..(j + 1) * width];
                scores.fill(0.0);
                for (qc, kc) in q.chunks_exact(lanes).zip(k.chunks_exact(lanes)) {
                    for ((sc, a), b) in scores.iter_mut().zip(qc).zip(kc) {
                        *sc += a * b;
                    }
                }
            }
            // Softmax over keys, per head.
            s.max.fill(f32::NEG_INFINITY);
            for scores in s.weights.chunks_exact(lanes) {
                for (m, w) in s.max.iter_mut().zip(scores) {
                    *m = m.max(*w);
                }
            }
            s.total.fill(0.0);
            for scores in s.weights.chunks_exact_mut(lanes) {
                for ((w, m), t) in scores.iter_mut().zip(&s.max).zip(s.total.iter_mut()) {
                    *w = exp_f32(*w - m);
                    *t += *w;
                }
            }
            // Context = Σ_j weight(j, head) · v_j / Σ_j weight(j, head), component by component.
            s.context_planar.fill(0.0);
            for (weights, v) in s
                .weights
                .chunks_exact(lanes)
                .zip(s.v_planar.chunks_exact(width))
            {
                for (cc, vc) in s
                    .context_planar
                    .chunks_exact_mut(lanes)
                    .zip(v.chunks_exact(lanes))
                {
                    for ((c, w), x) in cc.iter_mut().zip(weights).zip(vc) {
                        *c += w * x;
                    }
                }
            }
            let context = &mut s.context[(seq * lq + i) * d..(seq * lq + i + 1) * d];
            for (c, cc) in s.context_planar.chunks_exact(lanes).enumerate() {
                for (h, (v, t)) in cc[..heads].iter().zip(&s.total).enumerate() {
                    context[h * dk + c] = v / t;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::{self, Attention};
    use burn::prelude::*;

    #[test]
    fn matches_burn_attention_for_several_sequences_and_a_single_key() {
        let device = nn::device();
        device.seed(11);
        let d = 8;
        for (heads, lq, lk) in [(4, 3, 5), (2, 1, 4), (8, 2, 1), (1, 4, 4)] {
            let att = Attention::new(d, heads, 0.0, &device);
            let n = 3;
            let q = Tensor::<3>::random([n, lq, d], burn::tensor::Distribution::Default, &device);
            let m = Tensor::<3>::random([n, lk, d], burn::tensor::Distribution::Default, &device);
            let want = nn::to_vec(q.clone() + att.forward(q.clone(), m.clone()));
            let (qv, mv) = (nn::to_vec(q), nn::to_vec(m));
            let mut got = Vec::new();
            att.inference_weights()
                .forward_residual(&qv, lq, &mv, lk, n, &qv, &mut got);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-5,
                    "heads {heads}, lq {lq}, lk {lk}: {g} vs {w}"
                );
            }
        }
    }
}
