//! The Anomaly Transformer's network: a token embedding (a width-3 circular convolution, no
//! bias) plus sinusoidal positions, encoder layers of anomaly-attention and a feed-forward
//! block, a final layer norm and a linear reconstruction of every step.
//!
//! Anomaly-attention computes two associations per head and step: the *series* association
//! (softmax of scaled query·key scores, which also weights the values) and the *prior*
//! association, a Gaussian kernel over the distance |i − j| with a learned width σ_i per step,
//! normalised over j. The training objective and the score compare the two (`mod.rs`).

use super::prior::gaussian_prior;
use crate::nn;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid};

/// One anomaly-attention layer: projections, both associations, output projection.
#[derive(Module, Debug)]
pub struct AnomalyAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    /// d_model → one raw width per head.
    sigma: Linear,
    output: Linear,
    heads: usize,
}

/// What an attention layer returns besides its output: `batch × heads × steps × steps` each.
pub struct Associations {
    /// Softmax of the query·key scores.
    pub series: Tensor<4>,
    /// The Gaussian prior over distances, normalised per row.
    pub prior: Tensor<4>,
}

impl AnomalyAttention {
    fn new(d_model: usize, heads: usize, device: &Device) -> Self {
        let linear = |out| LinearConfig::new(d_model, out).init(device);
        AnomalyAttention {
            query: linear(d_model),
            key: linear(d_model),
            value: linear(d_model),
            sigma: linear(heads),
            output: linear(d_model),
            heads,
        }
    }

    fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Associations) {
        let [b, l, d] = x.dims();
        let (h, e) = (self.heads, d / self.heads);
        let split = |t: Tensor<3>| t.reshape([b, l, h, e]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (e as f64).sqrt());
        let series = nn::softmax::softmax_last(scores);
        let context = series.clone().matmul(v).swap_dims(1, 2).reshape([b, l, d]);
        // σ = 3^(sigmoid(5s) + 1e-5) − 1, per head and step (the authors' squashing).
        let raw = self.sigma.forward(x).swap_dims(1, 2).reshape([b, h, l, 1]);
        let sigma = (sigmoid(raw.mul_scalar(5.0)).add_scalar(1e-5))
            .mul_scalar(3f64.ln())
            .exp()
            .sub_scalar(1.0);
        // N(|i − j|; 0, σ_i) normalised over j (one fused op, prior.rs).
        let prior = gaussian_prior(sigma);
        (self.output.forward(context), Associations { series, prior })
    }
}

/// Encoder layer: x ← norm1(x + attention(x)); x ← norm2(x + ff2(gelu(ff1(x)))).
#[derive(Module, Debug)]
pub struct EncoderLayer {
    attention: AnomalyAttention,
    norm1: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    norm2: LayerNorm,
}

impl EncoderLayer {
    fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Associations) {
        let (attended, associations) = self.attention.forward(x.clone());
        let x = self.norm1.forward(x + attended);
        let y = self.ff2.forward(gelu(self.ff1.forward(x.clone())));
        (self.norm2.forward(x + y), associations)
    }
}

/// The whole network. Field names are the layer groups (`layer_groups` in `mod.rs`).
#[derive(Module, Debug)]
pub struct AnomalyTransformerNet {
    /// The width-3 circular convolution as one product over [x_{t−1}, x_t, x_{t+1}].
    embedding: Linear,
    encoder: Vec<EncoderLayer>,
    final_norm: LayerNorm,
    projection: Linear,
}

/// The network's output for a batch of windows.
pub struct Forward {
    /// The reconstruction of every step, `batch × steps × metrics`.
    pub reconstruction: Tensor<3>,
    /// Each encoder layer's associations.
    pub associations: Vec<Associations>,
}

impl AnomalyTransformerNet {
    pub fn new(
        metrics: usize,
        d_model: usize,
        heads: usize,
        layers: usize,
        feedforward: usize,
        device: &Device,
    ) -> Self {
        let norm = || LayerNormConfig::new(d_model).init(device);
        AnomalyTransformerNet {
            embedding: LinearConfig::new(3 * metrics, d_model)
                .with_bias(false)
                .init(device),
            encoder: (0..layers)
                .map(|_| EncoderLayer {
                    attention: AnomalyAttention::new(d_model, heads, device),
                    norm1: norm(),
                    ff1: LinearConfig::new(d_model, feedforward).init(device),
                    ff2: LinearConfig::new(feedforward, d_model).init(device),
                    norm2: norm(),
                })
                .collect(),
            final_norm: norm(),
            projection: LinearConfig::new(d_model, metrics).init(device),
        }
    }

    /// The constant inputs of a forward pass over windows of `steps` steps on `device`, built
    /// once per fit or score call rather than once per batch.
    pub fn fixed_encodings(&self, steps: usize, device: &Device) -> FixedEncodings {
        let d = self.embedding.weight.val().dims()[1];
        FixedEncodings {
            positions: positions(steps, d, device).reshape([1, steps, d]),
        }
    }

    pub fn forward(&self, x: Tensor<3>, fixed: &FixedEncodings) -> Forward {
        let [_, l, _] = x.dims();
        // Circular padding: step 0's predecessor is the window's last step, and vice versa.
        let previous = Tensor::cat(
            vec![x.clone().narrow(1, l - 1, 1), x.clone().narrow(1, 0, l - 1)],
            1,
        );
        let next = Tensor::cat(
            vec![x.clone().narrow(1, 1, l - 1), x.clone().narrow(1, 0, 1)],
            1,
        );
        let tokens = self
            .embedding
            .forward(Tensor::cat(vec![previous, x, next], 2));
        let mut h = tokens + fixed.positions.clone();
        let mut associations = Vec::with_capacity(self.encoder.len());
        for layer in &self.encoder {
            let (out, a) = layer.forward(h);
            h = out;
            associations.push(a);
        }
        Forward {
            reconstruction: self.projection.forward(self.final_norm.forward(h)),
            associations,
        }
    }
}

/// The sinusoidal positions (`1 × steps × d_model`) every forward pass adds.
pub struct FixedEncodings {
    positions: Tensor<3>,
}

/// The sinusoidal positional encoding (sin on even, cos on odd dimensions), `steps × d_model`.
fn positions(steps: usize, d_model: usize, device: &Device) -> Tensor<2> {
    let values = (0..steps)
        .flat_map(|p| {
            (0..d_model).map(move |i| {
                let rate = (-(10000f64.ln()) * (i - i % 2) as f64 / d_model as f64).exp();
                let angle = p as f64 * rate;
                (if i % 2 == 0 { angle.sin() } else { angle.cos() }) as f32
            })
        })
        .collect();
    nn::tensor2(values, steps, d_model, device)
}
