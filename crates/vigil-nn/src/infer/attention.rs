//! Multi-head attention for scoring, on slices (see the parent module for why), with the
//! semantics of [`crate::Attention`]: q/k/v projections, softmax(q·kᵀ/√d_k)·v per head,
//! output projection.

use super::{Dense, Linear};
use crate::attention::kernels::{score_sequence, SequenceScratch};
use crate::Activation;

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
    sequence: SequenceScratch,
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
                self.attend(seq, lq, lk, &mut s);
            }
        }
        self.output
            .forward_residual(&s.context, n * lq, residual, out);
    }

    /// The context of sequence `seq` from its projected queries, keys and values, with the
    /// training op's per-sequence kernel (`attention/kernels.rs`: heads across SIMD lanes).
    fn attend(&self, seq: usize, lq: usize, lk: usize, s: &mut Scratch) {
        let d = self.d_model;
        let kv = &s.key_value[seq * lk * 2 * d..(seq + 1) * lk * 2 * d];
        score_sequence(
            self.heads,
            d,
            (&s.query[seq * lq * d..(seq + 1) * lq * d], d, lq),
            (kv, &kv[d..], 2 * d, lk),
            &mut s.context[seq * lq * d..(seq + 1) * lq * d],
            &mut s.sequence,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{self as nn, Attention};
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
