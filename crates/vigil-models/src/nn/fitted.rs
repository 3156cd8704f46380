//! The trained network a neural detector holds, with the checks and checkpoint plumbing every
//! such detector shares: the metric count it was trained on, save/load, partial loads, warm starts.

use crate::error::{ModelError, Result};
use burn::module::Module;
use burn::prelude::*;
use std::path::Path;

/// A detector's network once fitted, remembered with the number of metrics it expects.
#[derive(Debug, Clone)]
pub struct Fitted<N> {
    kind: &'static str,
    file: &'static str,
    slot: Option<(N, usize)>,
}

impl<N: Module + Clone> Fitted<N> {
    /// Nothing fitted yet; `file` is the weights file name inside a model directory.
    pub fn empty(kind: &'static str, file: &'static str) -> Fitted<N> {
        Fitted {
            kind,
            file,
            slot: None,
        }
    }

    /// The network, if it was fitted on `n_metrics` metrics.
    pub fn get(&self, n_metrics: usize) -> Result<&N> {
        match &self.slot {
            Some((net, m)) if *m == n_metrics => Ok(net),
            Some((_, m)) => Err(ModelError::Shape(format!(
                "the {} model was trained on {m} metrics, the data has {n_metrics}",
                self.kind
            ))),
            None => Err(self.not_fitted()),
        }
    }

    fn not_fitted(&self) -> ModelError {
        ModelError::Training(format!("the {} model is not fitted", self.kind))
    }

    /// Stores a trained network.
    pub fn set(&mut self, net: N, n_metrics: usize) {
        self.slot = Some((net, n_metrics));
    }

    /// The seeded autodiff device and the network a fit starts from: the fitted one when
    /// `options.warm_start` asks for it and it expects `n_metrics` metrics (fine-tuning), else
    /// `fresh(device)`; with `options.frozen_groups` frozen (transfer learning).
    pub fn start_fit(
        &self,
        n_metrics: usize,
        options: &crate::detector::FitOptions,
        fresh: impl FnOnce(&Device) -> N,
    ) -> (Device, N) {
        let device = super::device().autodiff();
        device.seed(options.seed);
        let warm = options
            .warm_start
            .then(|| self.warm_start(n_metrics, &device))
            .flatten();
        let net = warm.unwrap_or_else(|| fresh(&device));
        (device, super::freeze_groups(net, &options.frozen_groups))
    }

    /// The fitted network moved onto `device` to continue training (a warm start), when it
    /// exists and expects `n_metrics` metrics.
    fn warm_start(&self, n_metrics: usize, device: &Device) -> Option<N> {
        match &self.slot {
            // The stored network is a validation snapshot (or was loaded into one): `train`
            // turns gradient tracking back on, or the first backward pass finds nothing to
            // differentiate. `unfreeze` first: a snapshot remembers the groups an earlier fit
            // froze, and each fit freezes exactly the groups it is asked to (`start_fit`).
            Some((net, m)) if *m == n_metrics => Some(net.clone().fork(device).unfreeze().train()),
            _ => None,
        }
    }

    /// Writes the weights into `dir`; returns the file names written.
    pub fn save(&self, dir: &Path) -> Result<Vec<String>> {
        let (net, _) = self.slot.as_ref().ok_or_else(|| self.not_fitted())?;
        super::save_module(net, dir, self.file)?;
        Ok(vec![self.file.into()])
    }

    /// Loads all weights from `dir` into `fresh`, a network built for `n_metrics` metrics.
    pub fn load(&mut self, dir: &Path, n_metrics: usize, fresh: N) -> Result<()> {
        self.slot = Some((super::load_module(fresh, dir, self.file)?, n_metrics));
        Ok(())
    }

    /// Loads only the layer `groups` from `dir`, into the fitted network when it expects
    /// `n_metrics` metrics, otherwise into `fresh()`. `fresh` must build an independent network
    /// at each call: the donor's weights are read into one.
    pub fn load_layers(
        &mut self,
        dir: &Path,
        n_metrics: usize,
        groups: &[String],
        fresh: impl Fn() -> N,
    ) -> Result<()> {
        let target = match self.slot.take() {
            Some((net, m)) if m == n_metrics => net,
            _ => fresh(),
        };
        let net = super::load_module_groups(target, fresh(), dir, self.file, groups)?;
        self.slot = Some((net, n_metrics));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::FitOptions;
    use burn::nn::{Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct TwoLayers {
        first: Linear,
        second: Linear,
    }

    fn requires_grad(net: &TwoLayers) -> (bool, bool) {
        (
            net.first.weight.val().is_require_grad(),
            net.second.weight.val().is_require_grad(),
        )
    }

    #[test]
    fn each_warm_fit_freezes_exactly_the_groups_it_is_given() {
        let mut fitted: Fitted<TwoLayers> = Fitted::empty("test", "test.bpk");
        let fresh = |device: &Device| TwoLayers {
            first: LinearConfig::new(3, 3).init(device),
            second: LinearConfig::new(3, 1).init(device),
        };
        let (_, net) = fitted.start_fit(3, &FitOptions::default(), fresh);
        assert_eq!(requires_grad(&net), (true, true));
        fitted.set(net.valid(), 3);
        // Partial transfer's first stage: the generic layer frozen.
        let options = FitOptions {
            warm_start: true,
            frozen_groups: vec!["first".into()],
            ..FitOptions::default()
        };
        let (_, net) = fitted.start_fit(3, &options, |_| unreachable!("a warm start"));
        assert_eq!(requires_grad(&net), (false, true));
        fitted.set(net.valid(), 3);
        // Its second stage fine-tunes everything: the snapshot's frozen group must thaw.
        let options = FitOptions {
            warm_start: true,
            ..FitOptions::default()
        };
        let (_, net) = fitted.start_fit(3, &options, |_| unreachable!("a warm start"));
        assert_eq!(requires_grad(&net), (true, true));
    }
}
