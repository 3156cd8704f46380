//! Multi-head attention with PyTorch's `nn.MultiheadAttention` semantics. The projections are
//! burn `Linear`s; the core — scores, softmax, dropout on the weights (from our seedable
//! generator, [`super::dropout`]), weighted sum — is one fused op with a hand-written backward
//! pass ([`kernels`], [`extension`]), checked against finite differences and against the same
//! attention composed from burn tensor ops (tests below).

mod extension;
pub mod kernels;

pub use extension::AttentionBackend;

use super::Dropout;
use burn::backend::Dispatch;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// Scaled dot-product attention over `heads` heads with q/k/v/output projections and dropout on
/// the attention weights (PyTorch's `nn.MultiheadAttention` semantics).
#[derive(Module, Debug)]
pub struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    dropout: Dropout,
    heads: usize,
}

impl Attention {
    /// `d_model` must be a multiple of `heads`.
    pub fn new(d_model: usize, heads: usize, dropout: f64, device: &Device) -> Attention {
        assert!(
            heads > 0 && d_model.is_multiple_of(heads),
            "{d_model} % {heads}"
        );
        let linear = || LinearConfig::new(d_model, d_model).init(device);
        Attention {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            dropout: Dropout::new(dropout),
            heads,
        }
    }

    /// Attends `query` [B, Lq, D] over `memory` [B, Lk, D]; returns [B, Lq, D].
    pub fn forward(&self, query: Tensor<3>, memory: Tensor<3>) -> Tensor<3> {
        let [_, _, d] = query.dims();
        let (h, dk) = (self.heads, d / self.heads);
        let scale = 1.0 / (dk as f64).sqrt();
        let q = self.query.forward(query).mul_scalar(scale);
        let k = self.key.forward(memory.clone());
        let v = self.value.forward(memory);
        // The core (scores, softmax, dropout on the weights, weighted sum) is one fused op with
        // its own backward pass (`kernels.rs` says why).
        let context = <Dispatch as AttentionBackend>::attention_core(
            q.into_dispatch(),
            k.into_dispatch(),
            v.into_dispatch(),
            h,
            self.dropout.prob(),
        );
        let context = Tensor::<3>::from_dispatch(context);
        self.output.forward(context)
    }

    /// The trained weights, for scoring with [`super::infer`]'s kernels.
    pub fn inference_weights(&self) -> super::infer::AttentionWeights {
        super::infer::AttentionWeights::new(
            &self.query,
            &self.key,
            &self.value,
            &self.output,
            self.heads,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention for one batch row written out with loops, from the projected q, k, v.
    fn naive(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        lq: usize,
        lk: usize,
        d: usize,
        h: usize,
    ) -> Vec<f32> {
        let dk = d / h;
        let mut out = vec![0.0f32; lq * d];
        for head in 0..h {
            for i in 0..lq {
                let s: Vec<f32> = (0..lk)
                    .map(|j| {
                        (0..dk)
                            .map(|c| q[i * d + head * dk + c] * k[j * d + head * dk + c])
                            .sum::<f32>()
                            / (dk as f32).sqrt()
                    })
                    .collect();
                let max = s.iter().copied().fold(f32::MIN, f32::max);
                let e: Vec<f32> = s.iter().map(|x| (x - max).exp()).collect();
                let z: f32 = e.iter().sum();
                for j in 0..lk {
                    for c in 0..dk {
                        out[i * d + head * dk + c] += e[j] / z * v[j * d + head * dk + c];
                    }
                }
            }
        }
        out
    }

    /// The core composed from burn tensor ops, as `forward` computed it before the fused op.
    fn composed_forward(att: &Attention, query: Tensor<3>, memory: Tensor<3>) -> Tensor<3> {
        let [b, lq, d] = query.dims();
        let [_, lk, _] = memory.dims();
        let (h, dk) = (att.heads, d / att.heads);
        let q = att
            .query
            .forward(query)
            .mul_scalar(1.0 / (dk as f64).sqrt());
        let k = att.key.forward(memory.clone());
        let v = att.value.forward(memory);
        let split = |t: Tensor<3>, l: usize| t.reshape([b, l, h, dk]).swap_dims(1, 2);
        let scores = split(q, lq).matmul(split(k, lk).swap_dims(2, 3));
        let weights = burn::tensor::activation::softmax(scores, 3);
        let context = weights
            .matmul(split(v, lk))
            .swap_dims(1, 2)
            .reshape([b, lq, d]);
        att.output.forward(context)
    }

    #[test]
    fn fused_gradients_match_the_composed_attention() {
        let device = crate::device().autodiff();
        device.seed(8);
        let (lq, lk, d, heads) = (3, 5, 8, 4);
        let att = Attention::new(d, heads, 0.0, &device);
        let q = Tensor::<3>::random([2, lq, d], burn::tensor::Distribution::Default, &device)
            .require_grad();
        let m = Tensor::<3>::random([2, lk, d], burn::tensor::Distribution::Default, &device)
            .require_grad();
        let r = Tensor::<3>::random([2, lq, d], burn::tensor::Distribution::Default, &device);
        let grads_of = |out: Tensor<3>| {
            let g = (out * r.clone()).sum().backward();
            let wq = att.query.weight.grad(&g).unwrap();
            let wk = att.key.weight.grad(&g).unwrap();
            let wv = att.value.weight.grad(&g).unwrap();
            let gq = q.grad(&g).unwrap();
            let gm = m.grad(&g).unwrap();
            [wq, wk, wv]
                .map(crate::to_vec)
                .into_iter()
                .chain([gq, gm].map(crate::to_vec))
                .collect::<Vec<_>>()
        };
        let fused = grads_of(att.forward(q.clone(), m.clone()));
        let composed = grads_of(composed_forward(&att, q.clone(), m.clone()));
        for (f, c) in fused.iter().zip(&composed) {
            assert_eq!(f.len(), c.len());
            for (a, b) in f.iter().zip(c) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn dropout_on_the_weights_is_seeded_and_inverted() {
        let device = crate::device().autodiff();
        device.seed(9);
        let att = Attention::new(4, 2, 0.5, &device);
        let q = Tensor::<3>::random([64, 2, 4], burn::tensor::Distribution::Default, &device);
        let m = Tensor::<3>::random([64, 3, 4], burn::tensor::Distribution::Default, &device);
        let run = || {
            crate::seed_dropout(1);
            crate::to_vec(att.forward(q.clone(), m.clone()))
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b, "same seed, same mask");
        let clean = crate::to_vec(composed_forward(&att, q.clone(), m.clone()));
        assert_ne!(a, clean, "training applies dropout");
        // Inverted dropout keeps the expectation: over many rows the means agree.
        let mean = |v: &[f32]| v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        assert!(
            (mean(&a) - mean(&clean)).abs() < 0.1,
            "{} vs {}",
            mean(&a),
            mean(&clean)
        );
    }

    #[test]
    fn matches_a_loop_implementation() {
        let device = crate::device();
        device.seed(5);
        let (lq, lk, d) = (2, 5, 8);
        for heads in [1, 4] {
            let att = Attention::new(d, heads, 0.0, &device);
            let q = Tensor::<3>::random([1, lq, d], burn::tensor::Distribution::Default, &device);
            let m = Tensor::<3>::random([1, lk, d], burn::tensor::Distribution::Default, &device);
            let pq = crate::to_vec(att.query.forward(q.clone()));
            let pk = crate::to_vec(att.key.forward(m.clone()));
            let pv = crate::to_vec(att.value.forward(m.clone()));
            let context = naive(&pq, &pk, &pv, lq, lk, d, heads);
            let context = Tensor::<3>::from_data(TensorData::new(context, [1, lq, d]), &device);
            let expected = crate::to_vec(att.output.forward(context));
            let got = crate::to_vec(att.forward(q, m));
            let worst = got
                .iter()
                .zip(&expected)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-5, "{heads} heads: differs by {worst}");
        }
    }

    #[test]
    fn one_key_returns_its_projected_value() {
        // With a single key the softmax weight is 1: the output is output(value(memory)).
        let device = crate::device();
        let att = Attention::new(4, 2, 0.0, &device);
        let q = Tensor::<3>::random([2, 3, 4], burn::tensor::Distribution::Default, &device);
        let m = Tensor::<3>::random([2, 1, 4], burn::tensor::Distribution::Default, &device);
        let expected = att
            .output
            .forward(att.value.forward(m.clone()))
            .repeat_dim(1, 3);
        let got = crate::to_vec(att.forward(q, m));
        let worst = got
            .iter()
            .zip(crate::to_vec(expected))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "{worst}");
    }
}
