//! The trained network a neural detector holds, with the checks and checkpoint plumbing every
//! such detector shares: the metric count it was trained on, save/load, named tensors, warm starts.

use crate::error::{ModelError, Result};
use crate::weights::{weight_file, NamedTensors, WeightFiles};
use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use std::sync::Arc;

/// Builds a detector's untrained network for a metric count on a device.
type Builder<N> = Arc<dyn Fn(usize, &Device) -> N + Send + Sync>;

/// A detector's network once fitted, remembered with the number of metrics it expects, and the
/// recipe for a fresh one (a fit from scratch, a load, a partial load all start from one).
#[derive(Clone)]
pub struct Fitted<N> {
    kind: &'static str,
    file: &'static str,
    build: Builder<N>,
    slot: Option<(N, usize)>,
}

impl<N> std::fmt::Debug for Fitted<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fitted")
            .field("kind", &self.kind)
            .field("file", &self.file)
            .field("metrics", &self.slot.as_ref().map(|(_, m)| *m))
            .finish()
    }
}

impl<N: Module + Clone> Fitted<N> {
    /// Nothing fitted yet; `file` is the weights file name inside a model directory, `build`
    /// makes an untrained network for a metric count (it captures the detector's config).
    pub fn new(
        kind: &'static str,
        file: &'static str,
        build: impl Fn(usize, &Device) -> N + Send + Sync + 'static,
    ) -> Fitted<N> {
        Fitted {
            kind,
            file,
            build: Arc::new(build),
            slot: None,
        }
    }

    /// Nothing fitted yet, for a detector configured by `config`: `build` makes an untrained
    /// network from the config for a metric count on a device.
    pub fn for_config<C: crate::config::DetectorConfig>(
        config: &C,
        file: &'static str,
        build: impl Fn(&C, usize, &Device) -> N + Send + Sync + 'static,
    ) -> Fitted<N> {
        let config = config.clone();
        Fitted::new(C::KIND, file, move |m, device| build(&config, m, device))
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
        ModelError::not_fitted(self.kind)
    }

    /// Stores a trained network.
    pub fn set(&mut self, net: N, n_metrics: usize) {
        self.slot = Some((net, n_metrics));
    }

    /// Stores the network a fit trained: without gradient tracking, on the fit's device.
    pub fn keep_trained(
        &mut self,
        net: &N,
        n_metrics: usize,
        options: &crate::detector::FitOptions,
    ) {
        self.set(net.valid().to_device(&options.device), n_metrics);
    }

    /// The autodiff device and the network a fit starts from: the fitted one when
    /// `options.warm_start` asks for it and it expects `n_metrics` metrics (fine-tuning), else
    /// a fresh one; with `options.frozen_groups` frozen (transfer learning).
    pub fn start_fit(
        &self,
        n_metrics: usize,
        options: &crate::detector::FitOptions,
    ) -> (Device, N) {
        let device = options.device.clone().autodiff();
        let warm = options
            .warm_start
            .then(|| self.warm_start(n_metrics, &device))
            .flatten();
        let net = warm.unwrap_or_else(|| self.build_drawn(n_metrics, &device, Some(options.seed)));
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

    /// Adds the network's weights to `files` (burnpack bytes under the detector's file name).
    pub fn save(&self, files: &mut WeightFiles) -> Result<()> {
        let (net, _) = self.slot.as_ref().ok_or_else(|| self.not_fitted())?;
        files.insert(self.file.into(), super::named::to_burnpack(net)?);
        Ok(())
    }

    /// An untrained network, about to be overwritten by loaded or imported values: on the
    /// device of the network it replaces, or the process's device when there is none yet.
    fn fresh(&self, n_metrics: usize) -> N {
        let device = match &self.slot {
            Some((net, _)) => super::device_of(net),
            None => super::device(),
        };
        self.build_drawn(n_metrics, &device, None)
    }

    /// A new network with every initial weight drawn, holding burn's generator alone (seeded
    /// with `seed` when given): burn draws a parameter lazily, on first read, which must not
    /// happen after the generator is let go ([`super::with_burn_generator`]).
    fn build_drawn(&self, n_metrics: usize, device: &Device, seed: Option<u64>) -> N {
        super::with_burn_generator(seed, device, || {
            let net = (self.build)(n_metrics, device);
            super::named::materialise(&net);
            net
        })
    }

    /// Loads all weights from `files` into a fresh network for `n_metrics` metrics.
    pub fn load(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let bytes = weight_file(files, self.file)?;
        let record =
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| {
                ModelError::Weights(format!(
                    "{} is unreadable ({e:?}); retrain the model",
                    self.file
                ))
            })?;
        let net = self.fresh(n_metrics).try_load_record(record).map_err(|e| {
            ModelError::Weights(format!(
                "{} does not fit this model's shape ({e:?}); was it trained on other metrics?",
                self.file
            ))
        })?;
        self.slot = Some((net, n_metrics));
        Ok(())
    }

    /// The fitted network's parameters whose path contains one of `groups` (all when empty).
    pub fn export(&self, groups: &[String]) -> Result<NamedTensors> {
        let (net, _) = self.slot.as_ref().ok_or_else(|| self.not_fitted())?;
        Ok(super::named::export_module(net, groups))
    }

    /// Sets the parameters named in `tensors`, in the fitted network when it expects
    /// `n_metrics` metrics, otherwise in a fresh one (whose other parameters are untrained).
    /// The network is taken, not cloned: burn's clones share batch-norm running statistics,
    /// so importing into a clone would change the original's too.
    pub fn import(&mut self, tensors: &NamedTensors, n_metrics: usize) -> Result<()> {
        let fitted = matches!(&self.slot, Some((_, m)) if *m == n_metrics);
        let target = match self.slot.take() {
            Some((net, _)) if fitted => net,
            other => {
                self.slot = other;
                self.fresh(n_metrics)
            }
        };
        if let Err(e) = super::named::check_import(&target, tensors) {
            // Only the network taken out of the slot goes back: a fresh one was never fitted.
            if fitted {
                self.slot = Some((target, n_metrics));
            }
            return Err(e);
        }
        let net = super::named::import_module(target, tensors)?;
        self.slot = Some((net, n_metrics));
        Ok(())
    }
}

/// The checkpoint methods of a `Detector` whose whole trained state is its `net: Fitted<_>`
/// field; invoke it inside the `impl Detector` block. Detectors with state besides the network
/// (GDN's error scale, DAGMM's mixture, ...) write the three methods themselves.
macro_rules! fitted_checkpoints {
    () => {
        fn save_weights(&self) -> $crate::error::Result<$crate::weights::WeightFiles> {
            let mut files = $crate::weights::WeightFiles::new();
            self.net.save(&mut files)?;
            Ok(files)
        }

        fn load_weights(
            &mut self,
            files: &$crate::weights::WeightFiles,
            n_metrics: usize,
        ) -> $crate::error::Result<()> {
            self.net.load(files, n_metrics)
        }

        $crate::nn::fitted_network!();
    };
}
pub(crate) use fitted_checkpoints;

/// What every `Detector` whose network is its `net: Fitted<_>` field shares (every neural
/// detector, including those that write their checkpoints themselves): warm starts that continue
/// from the fitted network ([`Fitted::start_fit`]), training windows chosen by labels
/// ([`crate::nn::TrainingWindows`]), and its parameters as named tensors.
macro_rules! fitted_network {
    () => {
        fn continues_training(&self) -> bool {
            true
        }

        fn learns_from_labels(&self) -> bool {
            true
        }

        fn export_tensors(
            &self,
            groups: &[String],
        ) -> $crate::error::Result<$crate::weights::NamedTensors> {
            self.net.export(groups)
        }

        fn import_tensors(
            &mut self,
            tensors: &$crate::weights::NamedTensors,
            n_metrics: usize,
        ) -> $crate::error::Result<()> {
            self.net.import(tensors, n_metrics)
        }
    };
}
pub(crate) use fitted_network;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::FitOptions;
    use crate::nn::test_nets::TwoLayers;

    fn requires_grad(net: &TwoLayers) -> (bool, bool) {
        (
            net.first.weight.val().is_require_grad(),
            net.second.weight.val().is_require_grad(),
        )
    }

    #[test]
    fn each_warm_fit_freezes_exactly_the_groups_it_is_given() {
        let mut fitted: Fitted<TwoLayers> =
            Fitted::new("test", "test.bpk", |_, device| TwoLayers::new(device));
        let (_, net) = fitted.start_fit(3, &FitOptions::default());
        assert_eq!(requires_grad(&net), (true, true));
        fitted.set(net.valid(), 3);
        // Partial transfer's first stage: the generic layer frozen.
        let options = FitOptions {
            warm_start: true,
            frozen_groups: vec!["first".into()],
            ..FitOptions::default()
        };
        let (_, net) = fitted.start_fit(3, &options);
        assert_eq!(requires_grad(&net), (false, true));
        fitted.set(net.valid(), 3);
        // Its second stage fine-tunes everything: the snapshot's frozen group must thaw.
        let options = FitOptions {
            warm_start: true,
            ..FitOptions::default()
        };
        let (_, net) = fitted.start_fit(3, &options);
        assert_eq!(requires_grad(&net), (true, true));
    }
}
