//! The mini-batch training loop every neural detector runs: epochs of shuffled, seeded batches of
//! training windows, each epoch's mean loss checked for divergence and reported to the caller.
//! A detector supplies only what differs — how one batch becomes a loss and an update.

use super::{dropout, scalar, TrainingWindows};
use crate::detector::FitOptions;
use crate::error::{ModelError, Result};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::Tensor;
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn epoch_generator(seed: u64, epoch: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Shuffled mini-batches of `0..n` for one epoch, reproducible from `(seed, epoch)`.
pub fn epoch_batches(n: usize, batch: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut epoch_generator(seed, epoch));
    order.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
}

/// Mini-batches of one epoch drawn by weight: `weights.len()` indices drawn with replacement,
/// index `i` with probability `weights[i] / Σ weights`, reproducible from `(seed, epoch)`.
/// `None` when no weight is positive (or one is negative or not finite).
pub fn weighted_epoch_batches(
    weights: &[f64],
    batch: usize,
    seed: u64,
    epoch: usize,
) -> Option<Vec<Vec<usize>>> {
    let draw = WeightedIndex::new(weights).ok()?;
    let mut rng = epoch_generator(seed, epoch);
    let order: Vec<usize> = (0..weights.len()).map(|_| draw.sample(&mut rng)).collect();
    Some(order.chunks(batch.max(1)).map(|c| c.to_vec()).collect())
}

/// Learning rate of `epoch` (counted from 1) under a step decay: `base` times `factor` once for
/// every `every` epochs completed — TranAD's and the dense VAE's schedule, and with factor 0.5
/// InterFusion's annealing and the Anomaly Transformer's halving.
pub fn step_decay(base: f64, factor: f64, every: usize, epoch: usize) -> f64 {
    base * factor.powi((epoch.saturating_sub(1) / every.max(1)) as i32)
}

/// One optimiser step down `loss`'s gradient. Returns the updated network and the loss's value
/// (read before the backward pass, which consumes the graph).
pub fn descend<N: Module>(
    optimiser: &mut ModuleOptimizer,
    learning_rate: f64,
    net: N,
    loss: Tensor<1>,
) -> (N, f64) {
    let value = scalar(loss.clone().detach());
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    (optimiser.step(learning_rate, net, grads), value)
}

/// The epochs of one training run: `epochs` passes over the training windows in shuffled
/// batches of `batch_size` ([`epoch_batches`], seeded by `options.seed` and the epoch number),
/// or drawn by weight when the input carries weights ([`weighted_epoch_batches`]).
pub struct Epochs<'a> {
    model: &'a str,
    windows: usize,
    weights: Option<Vec<f64>>,
    batch_size: usize,
    epochs: usize,
    options: &'a FitOptions,
    smallest_batch: usize,
}

impl<'a> Epochs<'a> {
    /// `model` names the detector in the error a diverging loss raises.
    pub fn new(
        model: &'a str,
        windows: &TrainingWindows,
        batch_size: usize,
        epochs: usize,
        options: &'a FitOptions,
    ) -> Self {
        Self::over(
            model,
            windows.len(),
            windows.weights(),
            batch_size,
            epochs,
            options,
        )
    }

    /// Epochs over `examples` training examples that are not all windows of one series (a
    /// fine-tune that adds generated windows), drawn by `weights` when given (one per example).
    pub fn over(
        model: &'a str,
        examples: usize,
        weights: Option<Vec<f64>>,
        batch_size: usize,
        epochs: usize,
        options: &'a FitOptions,
    ) -> Self {
        Self {
            model,
            windows: examples,
            weights,
            batch_size,
            epochs,
            options,
            smallest_batch: 1,
        }
    }

    /// Skips batches of fewer than `n` windows (in practice an epoch's short last batch), for
    /// losses that need several rows: batch norm's spread, a mixture's covariances.
    pub fn skip_batches_below(mut self, n: usize) -> Self {
        self.smallest_batch = n;
        self
    }

    /// Runs every epoch: `step(net, batch, epoch)` trains on the windows numbered `batch`
    /// (indices into `0..windows`) in epoch `epoch` (from 1) and returns the network and the loss
    /// to report for that batch. Returns the trained network and the last epoch's mean loss.
    pub fn run<N: Send>(
        &self,
        net: N,
        step: impl FnMut(N, &[usize], usize) -> (N, f64) + Send,
    ) -> Result<(N, f64)> {
        self.run_checked(net, step, |_, _| {})
    }

    /// [`run`](Self::run), calling `after_epoch(net, epoch)` once each epoch's loss has been
    /// checked and reported (for choosing a network by held-out loss).
    ///
    /// The loop runs on a worker of rayon's pool (`rayon::scope` moves it there when called from
    /// another thread, e.g. `main`). Run from outside, every parallel product or element-wise
    /// op hands its work to the pool's workers while the calling thread waits, and between ops
    /// the workers spin against that thread for the cores: on 2 cores a third thread competed
    /// for them, and the dense VAE's epoch went from 0.49 to 0.41 s once the loop ran on a
    /// worker (`bench/speed.sh 10 vae`, 2-core Xeon).
    pub fn run_checked<N: Send>(
        &self,
        net: N,
        step: impl FnMut(N, &[usize], usize) -> (N, f64) + Send,
        after_epoch: impl FnMut(&N, usize) + Send,
    ) -> Result<(N, f64)> {
        // The masks continue from the caller's dropout generator (seeded by the detector's fit),
        // which lives in a thread-local: carry it there and back. The worker's own generator is
        // put back afterwards: a worker waiting inside one fit's loop may run another fit's loop
        // (rayon steals the whole scope), which must leave the first fit's masks as it found them.
        let masks = dropout::mask_generator();
        let (result, masks) = rayon::scope(|_| {
            let workers_own = dropout::mask_generator();
            dropout::set_mask_generator(masks);
            let result = self.run_here(net, step, after_epoch);
            let masks = dropout::mask_generator();
            dropout::set_mask_generator(workers_own);
            (result, masks)
        });
        dropout::set_mask_generator(masks);
        result
    }

    fn run_here<N>(
        &self,
        mut net: N,
        mut step: impl FnMut(N, &[usize], usize) -> (N, f64),
        mut after_epoch: impl FnMut(&N, usize),
    ) -> Result<(N, f64)> {
        let mut last_loss = f64::NAN;
        for epoch in 1..=self.epochs {
            let (mut loss_sum, mut batches) = (0.0, 0usize);
            for batch in self.batches(epoch)? {
                if batch.len() < self.smallest_batch {
                    continue;
                }
                let (next, loss) = step(net, &batch, epoch);
                net = next;
                loss_sum += loss;
                batches += 1;
            }
            last_loss = self.end_epoch(epoch, loss_sum, batches)?;
            after_epoch(&net, epoch);
        }
        Ok((net, last_loss))
    }

    /// The batches of `epoch`: shuffled, or drawn by weight.
    fn batches(&self, epoch: usize) -> Result<Vec<Vec<usize>>> {
        let seed = self.options.seed;
        match &self.weights {
            None => Ok(epoch_batches(self.windows, self.batch_size, seed, epoch)),
            Some(weights) if weights.is_empty() => Ok(Vec::new()),
            Some(weights) if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) => {
                Err(ModelError::Training(format!(
                    "{}: the step weights must be one per step, each finite and zero or more",
                    self.model
                )))
            }
            Some(weights) => weighted_epoch_batches(weights, self.batch_size, seed, epoch)
                .ok_or_else(|| {
                    ModelError::Training(format!(
                        "{}: no training window has a positive weight (weights must be finite \
                         and zero or more, and some window's steps above zero)",
                        self.model
                    ))
                }),
        }
    }

    /// Closes an epoch: the mean batch loss, an error if it is no longer finite, and the
    /// caller's epoch callback.
    fn end_epoch(&self, epoch: usize, loss_sum: f64, batches: usize) -> Result<f64> {
        let loss = loss_sum / batches.max(1) as f64;
        if !loss.is_finite() {
            return Err(ModelError::Training(format!(
                "{} loss became {loss} at epoch {epoch}; lower learning_rate",
                self.model
            )));
        }
        if let Some(callback) = &self.options.on_epoch {
            callback(epoch, self.epochs, loss);
        }
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::{step_decay, weighted_epoch_batches};

    #[test]
    fn weighted_batches_draw_in_proportion_and_never_a_weightless_window() {
        let weights = [0.0, 1.0, 3.0, 0.0];
        let mut drawn = [0usize; 4];
        for epoch in 1..=1000 {
            let batches = weighted_epoch_batches(&weights, 3, 7, epoch).unwrap();
            assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 4);
            batches.iter().flatten().for_each(|&i| drawn[i] += 1);
        }
        assert_eq!((drawn[0], drawn[3]), (0, 0));
        let share = drawn[2] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
        // Reproducible from the seed and the epoch.
        assert_eq!(
            weighted_epoch_batches(&weights, 3, 7, 5),
            weighted_epoch_batches(&weights, 3, 7, 5)
        );
        assert!(weighted_epoch_batches(&[0.0, 0.0], 3, 7, 1).is_none());
        assert!(weighted_epoch_batches(&[1.0, -1.0], 3, 7, 1).is_none());
    }

    #[test]
    fn step_decay_multiplies_once_per_completed_period() {
        let rates: Vec<f64> = (1..=7).map(|e| step_decay(1e-3, 0.5, 3, e)).collect();
        assert_eq!(rates, [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4]);
        assert_eq!(step_decay(1e-3, 0.5, 1, 3), 2.5e-4);
    }
}
