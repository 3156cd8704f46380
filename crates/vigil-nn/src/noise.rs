//! The random draws a fit makes while it trains (a VAE's posterior samples), from a generator
//! the fit owns. burn's `Tensor::random` draws from one generator per process, so two fits
//! running at once would take each other's numbers; these come from the fit's own seed.

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A fit's own source of noise tensors.
pub struct Noise {
    rng: ChaCha8Rng,
}

impl Noise {
    /// The noise of a fit seeded with `seed` (kept apart from its other uses of the seed:
    /// batch order, dropout masks, initial weights).
    pub fn for_fit(seed: u64) -> Noise {
        Noise {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6E6F_6973_655F_7631),
        }
    }

    /// A tensor of independent standard normal values.
    pub fn standard_normal<const D: usize>(
        &mut self,
        dims: [usize; D],
        device: &Device,
    ) -> Tensor<D> {
        let n = dims.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Tensor::from_data(TensorData::new(values, dims), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_noise_and_another_seed_other_noise() {
        let device = crate::device();
        let draw = |seed| crate::to_vec(Noise::for_fit(seed).standard_normal([4, 50], &device));
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        let x = draw(5);
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
        assert!(mean.abs() < 0.2 && (var - 1.0).abs() < 0.25, "{mean} {var}");
    }
}
