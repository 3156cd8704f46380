//! Dropout with a fast, seedable mask generator.
//!
//! burn's `Dropout` draws each mask element from the device's ChaCha generator as an f32; on the
//! small transformers of our zoo that was 18% of a TranAD training step (perf, SMD shapes). Here
//! masks come from a per-thread xoshiro generator, 16 bits per decision, seeded by
//! [`seed_dropout`] at the start of each fit so that training stays reproducible.

use burn::module::Module;
use burn::prelude::*;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::cell::RefCell;

thread_local! {
    static MASK_RNG: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(0));
}

/// Restarts this thread's dropout masks from `seed`.
pub fn seed_dropout(seed: u64) {
    MASK_RNG.with(|r| *r.borrow_mut() = SmallRng::seed_from_u64(seed ^ 0xD1B5_4A32_D192_ED03));
}

/// This thread's dropout generator, for carrying it to the thread that continues the work
/// ([`super::Epochs`] runs a training loop on a pool worker).
pub fn mask_generator() -> SmallRng {
    MASK_RNG.with(|r| r.borrow().clone())
}

/// Makes `rng` this thread's dropout generator (see [`mask_generator`]).
pub fn set_mask_generator(rng: SmallRng) {
    MASK_RNG.with(|r| *r.borrow_mut() = rng);
}

/// An inverted-dropout mask of `n` values from this thread's generator: 0 with probability
/// `prob`, else 1/(1 − prob). Shared with the fused attention op, which drops attention weights.
pub fn keep_mask(n: usize, prob: f64) -> Vec<f32> {
    let keep_scale = (1.0 / (1.0 - prob)) as f32;
    let cut = (prob * 65536.0).round() as u32;
    let mut mask = Vec::with_capacity(n);
    MASK_RNG.with(|r| {
        let mut rng = r.borrow_mut();
        while mask.len() < n {
            let mut bits = rng.next_u64();
            for _ in 0..4.min(n - mask.len()) {
                let keep = (bits & 0xFFFF) as u32 >= cut;
                mask.push(if keep { keep_scale } else { 0.0 });
                bits >>= 16;
            }
        }
    });
    mask
}

/// Inverted dropout: zeroes each element with probability `prob` while training (autodiff
/// device), scales the rest by 1/(1 − prob); the identity when scoring.
#[derive(Module, Debug)]
pub struct Dropout {
    prob: f64,
}

impl Dropout {
    /// Dropout with drop probability `prob` in [0, 1).
    pub fn new(prob: f64) -> Dropout {
        assert!((0.0..1.0).contains(&prob), "dropout probability {prob}");
        Dropout { prob }
    }

    /// The drop probability.
    pub fn prob(&self) -> f64 {
        self.prob
    }

    /// Applies the mask when training.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if self.prob == 0.0 || !x.device().is_autodiff() {
            return x;
        }
        let shape = x.shape();
        let mask = keep_mask(shape.num_elements(), self.prob);
        let mask = Tensor::<D>::from_data(TensorData::new(mask, shape), &x.device());
        x * mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_right_share_keeps_the_mean_and_repeats_from_a_seed() {
        let device = crate::device().autodiff();
        let ones = || Tensor::<2>::ones([100, 1000], &device);
        let drop = Dropout::new(0.1);
        seed_dropout(7);
        let a = crate::to_vec(drop.forward(ones()));
        let zeros = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        assert!((zeros - 0.1).abs() < 0.005, "dropped {zeros}");
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        seed_dropout(7);
        assert_eq!(a, crate::to_vec(drop.forward(ones())));
        // Scoring (no autodiff) leaves values alone.
        let plain = Tensor::<2>::ones([2, 2], &crate::device());
        assert_eq!(crate::to_vec(drop.forward(plain)), vec![1.0; 4]);
    }
}
