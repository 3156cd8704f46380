//! The conditional VAE (Sohn et al., NeurIPS 2015) AnoTuner is built on, and its two losses:
//! the ELBO of unsupervised training and the label-aware ELBO (LAELBO, the paper's eq. 2) of
//! fine-tuning from feedback.
//!
//! Encoder q(z | x, c) and decoder p(x | z, c) are the dense VAE's blocks (dense ReLU layers
//! ending in a diagonal Gaussian: mean, softplus standard deviation + ε, as in Donut); the condition c (the window's
//! trend and seasonal parts, `condition.rs`) is concatenated to the input of both. The prior
//! p(z | c) is N(0, I), as the paper states.

use crate::detectors::vae::GaussianBlock;
use crate::nn;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::{relu, softplus};

/// Encoder q(z | x, c) and decoder p(x | z, c).
#[derive(Module, Debug)]
pub(super) struct CvaeNet {
    pub(super) encoder: GaussianBlock,
    pub(super) decoder: GaussianBlock,
}

/// Sizes of one network: values per window `d` (window × metrics), condition values per window
/// `conditions`, hidden units, latent size.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub d: usize,
    pub conditions: usize,
    pub hidden: usize,
    pub latent: usize,
}

impl CvaeNet {
    pub(super) fn new(shape: Shape, device: &Device) -> Self {
        let Shape {
            d,
            conditions,
            hidden,
            latent,
        } = shape;
        CvaeNet {
            encoder: GaussianBlock::new(d + conditions, hidden, latent, device),
            decoder: GaussianBlock::new(latent + conditions, hidden, d, device),
        }
    }

    /// The posterior's mean and standard deviation for windows `x` under conditions `c`.
    pub(super) fn encode(&self, x: Tensor<2>, c: Tensor<2>, eps: f64) -> (Tensor<2>, Tensor<2>) {
        let (mean, raw) = self.encoder.forward_raw(Tensor::cat(vec![x, c], 1));
        (mean, softplus(raw, 1.0).add_scalar(eps))
    }

    /// The likelihood's mean and raw standard deviation for codes `z` under conditions `c`.
    pub(super) fn decode_raw(&self, z: Tensor<2>, c: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        self.decoder.forward_raw(Tensor::cat(vec![z, c], 1))
    }

    /// The two terms of each window's negative ELBO: the Gaussian negative log-likelihood of
    /// every value of `x` (`[batch, d]`) under the decoding of one posterior sample (`noise` is
    /// its standard normal draw, `[batch, latent]`), and KL(q(z | x, c) ‖ N(0, I)) (`[batch, 1]`).
    pub(super) fn elbo_terms(
        &self,
        x: Tensor<2>,
        c: Tensor<2>,
        noise: Tensor<2>,
        eps: f64,
    ) -> (Tensor<2>, Tensor<2>) {
        let (mean_z, std_z) = self.encode(x.clone(), c.clone(), eps);
        let z = mean_z.clone() + std_z.clone() * noise;
        let (mean_x, raw_std_x) = self.decode_raw(z, c);
        let nll = nn::likelihood::gaussian_nll_softplus(x, mean_x, raw_std_x, eps);
        (nll, kl_from_standard_normal(mean_z, std_z))
    }
}

/// KL(N(μ, σ²) ‖ N(0, I)) of each row, summed over the latent dimensions: `[batch, 1]`.
fn kl_from_standard_normal(mean: Tensor<2>, std: Tensor<2>) -> Tensor<2> {
    (mean.square() + std.clone().square() - 1.0)
        .mul_scalar(0.5)
        .sub(std.log())
        .sum_dim(1)
}

/// The label-aware ELBO loss of a batch (the paper's eq. 2), averaged over its windows, from
/// [`CvaeNet::elbo_terms`]: `nll` per value, `kl` per window, `value_anomalous` 1 for each value
/// whose step is labelled anomalous (`[batch, d]`), `window_anomalous` 1 for each window holding
/// one (`[batch, 1]`).
///
/// The likelihood is split by label, as eq. 2 splits it: values labelled normal contribute
/// −log p (pulled in), values labelled anomalous +log p (pushed out); the KL term takes the
/// sign (2y − 1) of the window's label: +KL for a normal window, −KL for one holding an
/// anomaly. Without labels (every value normal) this is the ELBO of training.
///
/// Deviation (the paper is silent): the pushed-out part is unbounded below (a decoder can make
/// any value arbitrarily unlikely), so a window's anomalous values count only until their
/// negative log-likelihood plus the KL term reach `margin_per_value` nats per anomalous value:
/// the window contributes `max(0, margin − (Σ anomalous −log p + KL))`, whose gradient is
/// exactly the paper's below the margin and zero beyond it.
pub(super) fn label_aware_loss(
    nll: Tensor<2>,
    kl: Tensor<2>,
    value_anomalous: Tensor<2>,
    window_anomalous: Tensor<2>,
    margin_per_value: f64,
) -> Tensor<1> {
    let value_normal = value_anomalous.clone().neg().add_scalar(1.0);
    let pulled_in = (nll.clone() * value_normal).sum_dim(1);
    let anomalous_nll = (nll * value_anomalous.clone()).sum_dim(1);
    let margin = value_anomalous.sum_dim(1).mul_scalar(margin_per_value);
    let pushed_out = relu(margin - anomalous_nll - kl.clone());
    let window_normal = window_anomalous.clone().neg().add_scalar(1.0);
    (pulled_in + window_anomalous * pushed_out + window_normal * kl)
        .mean()
        .reshape([1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(
        device: &Device,
        batch: usize,
        shape: Shape,
        seed: f32,
    ) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let draw = |n: usize, k: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as f32 + seed) * k).sin() * 0.8)
                .collect()
        };
        (
            nn::tensor2(draw(batch * shape.d, 0.37), batch, shape.d, device),
            nn::tensor2(
                draw(batch * shape.conditions, 0.53),
                batch,
                shape.conditions,
                device,
            ),
            nn::tensor2(draw(batch * shape.latent, 1.7), batch, shape.latent, device),
        )
    }

    const SHAPE: Shape = Shape {
        d: 6,
        conditions: 12,
        hidden: 8,
        latent: 3,
    };

    /// The LAELBO of a fixed network and noise as a function of the windows' values, with its
    /// gradient by autodiff; `labels` gives each value's label (`batch × d`).
    fn loss_and_gradient(
        net: &CvaeNet,
        xv: &[f32],
        labels: &[f32],
        margin: f64,
    ) -> (f64, Vec<f32>) {
        let device = nn::device_of(net);
        let batch = labels.len() / SHAPE.d;
        let (_, c, noise) = inputs(&device, batch, SHAPE, 1.0);
        let x = nn::tensor2(xv.to_vec(), batch, SHAPE.d, &device).require_grad();
        let windows: Vec<f32> = labels
            .chunks_exact(SHAPE.d)
            .map(|w| {
                if w.iter().any(|&l| l != 0.0) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let value_labels = nn::tensor2(labels.to_vec(), batch, SHAPE.d, &device);
        let window_labels = nn::tensor2(windows, batch, 1, &device);
        let (nll, kl) = net.elbo_terms(x.clone(), c, noise, 1e-4);
        let loss = label_aware_loss(nll, kl, value_labels, window_labels, margin);
        let grads = loss.clone().backward();
        (nn::scalar(loss), nn::to_vec(x.grad(&grads).unwrap()))
    }

    #[test]
    fn laelbo_gradients_match_finite_differences() {
        let device = nn::device().autodiff();
        let net = CvaeNet::new(SHAPE, &device);
        let batch = 4;
        let (x, _, _) = inputs(&device, batch, SHAPE, 0.0);
        let xv = nn::to_vec(x);
        // A normal window, one anomalous throughout, one anomalous in its last step (3 values
        // of 6), another normal one; the margin far enough not to clip (and small enough that
        // the loss keeps f32 precision for the differences).
        let mut labels = vec![0.0f32; batch * SHAPE.d];
        labels[6..12].fill(1.0);
        labels[15..18].fill(1.0);
        let margin = 40.0;
        let (_, grad) = loss_and_gradient(&net, &xv, &labels, margin);
        let h = 1e-2f32;
        for i in [0, 7, 13, 16, 22] {
            let (mut up, mut down) = (xv.clone(), xv.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss_and_gradient(&net, &up, &labels, margin).0
                - loss_and_gradient(&net, &down, &labels, margin).0)
                / (2.0 * h as f64);
            assert!(
                (grad[i] as f64 - numeric).abs() < 2e-2 * (1.0 + numeric.abs()),
                "d/dx[{i}]: {} vs {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn an_anomalous_label_flips_the_gradient_until_the_margin_then_stops_it() {
        let device = nn::device().autodiff();
        let net = CvaeNet::new(SHAPE, &device);
        let (x, _, _) = inputs(&device, 1, SHAPE, 0.0);
        let xv = nn::to_vec(x);
        let margin = 40.0;
        let total = margin * SHAPE.d as f64;
        let (normal_loss, normal) = loss_and_gradient(&net, &xv, &[0.0; 6], margin);
        let (anomalous_loss, anomalous) = loss_and_gradient(&net, &xv, &[1.0; 6], margin);
        assert!(normal_loss < total);
        assert!((anomalous_loss - (total - normal_loss)).abs() < 1e-3 * total);
        for (n, a) in normal.iter().zip(&anomalous) {
            assert!((n + a).abs() <= 1e-5 * (1.0 + n.abs()), "{n} vs {a}");
        }
        // A window anomalous in its second step only: that step's values are pushed out (with
        // the KL term), the first step's still pulled in — the likelihood split by label.
        let (_, c, noise) = inputs(&device, 1, SHAPE, 1.0);
        let x = nn::tensor2(xv.clone(), 1, SHAPE.d, &device);
        let (nll, kl) = net.elbo_terms(x, c, noise, 1e-4);
        let (nll, kl) = (nn::to_vec(nll), nn::to_vec(kl)[0] as f64);
        let first: f64 = nll[..3].iter().map(|&v| v as f64).sum();
        let second: f64 = nll[3..].iter().map(|&v| v as f64).sum();
        let want = first + (3.0 * margin - second - kl).max(0.0);
        let (mixed_loss, _) = loss_and_gradient(&net, &xv, &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0], margin);
        assert!(
            (mixed_loss - want).abs() < 1e-3 * want.abs(),
            "{mixed_loss} vs {want}"
        );
        // A window already less likely than the margin asks for is left alone.
        let clipped_margin = (normal_loss - 1.0) / SHAPE.d as f64;
        let (clipped_loss, clipped) = loss_and_gradient(&net, &xv, &[1.0; 6], clipped_margin);
        assert_eq!(clipped_loss, 0.0);
        assert!(clipped.iter().all(|g| *g == 0.0));
    }
}
