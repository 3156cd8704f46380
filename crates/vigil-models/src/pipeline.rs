//! The train and detect flows around a detector: clean → normalise (fitted on train) → fit/score,
//! with the model directory that makes `detect` apply exactly what `train` learned.

use crate::detector::{Detector, FitOptions, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::model_dir::{self, Manifest, TrainingInfo, CALIBRATION, FORMAT_VERSION};
use crate::registry;
use crate::weights::{f64_bytes, f64s_from, weight_file, WeightFiles};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use vigil_core::clean::{clean, CleanReport, MissingPolicy};
use vigil_core::normalise::{NormKind, Normaliser, DEFAULT_DRIFT_FACTOR};
use vigil_core::window::check_window;
use vigil_core::Series;

/// What to train.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSpec {
    /// Registry name of the detector.
    pub detector: String,
    /// Detector config overrides (JSON object), `None` for the paper's defaults.
    pub config: Option<serde_json::Value>,
    /// Normaliser fitted on the training series.
    pub normaliser: NormKind,
    /// Missing-value policy.
    pub missing: MissingPolicy,
    /// Seed.
    pub seed: u64,
    /// Epoch override.
    pub epochs: Option<usize>,
    /// The share of the training series, at its end, held out of the fit and scored to
    /// calibrate the label-free thresholds on (in-sample scores of the windows a model was
    /// fitted on are optimistic: a threshold fitted on them alarms too much). 0 calibrates on
    /// the fitted steps, as before; at most 0.5. Left out of the serialised spec when 0, so
    /// that the fleet's fingerprints of specs written before it stay the same.
    #[serde(skip_serializing_if = "is_zero_share")]
    pub calibration_share: f64,
    /// The system's components and calls, for detectors that read them (TopoMAD keeps it in
    /// its config, so it travels with the model); `None` for the others. Left out of the
    /// serialised spec when `None`, as `calibration_share` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<crate::detector::Topology>,
}

fn is_zero_share(share: &f64) -> bool {
    *share == 0.0
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            detector: registry::DEFAULT_DETECTOR.into(),
            config: None,
            normaliser: NormKind::MinMax,
            missing: MissingPolicy::Error,
            seed: 0,
            epochs: None,
            calibration_share: 0.0,
            topology: None,
        }
    }
}

impl TrainSpec {
    /// Checks what the user chose (a flag or a config-file key, with the same message): the
    /// epoch override must train at least once, and [`Self::validate_for_library`]'s checks.
    pub fn validate(&self) -> Result<()> {
        vigil_core::validate::positive_count("epochs", self.epochs.unwrap_or(1))?;
        self.validate_for_library()
    }

    /// What [`train`] checks: [`Self::validate`] but for the epoch override, which may be 0 for
    /// a library caller — the network built from the seed and left untrained, as OmniTransfer
    /// initialises a fresh network and federated nodes start from one shared network.
    pub fn validate_for_library(&self) -> Result<()> {
        let share = self.calibration_share;
        if !(0.0..=0.5).contains(&share) {
            return Err(ModelError::Shape(format!(
                "calibration_share (--calibration-share, or the config file's key) must be in \
                 [0, 0.5], got {share}: the share of the training series held out to calibrate \
                 thresholds on (0: calibrate on the fitted steps)"
            )));
        }
        Ok(())
    }
}

impl TrainSpec {
    /// The spec a model with `manifest` was trained by: its detector with its whole config,
    /// normaliser kind, missing-value policy, seed and calibration share — to train the same
    /// model again on other data (the service's scheduled retraining).
    pub fn of_manifest(manifest: &Manifest) -> TrainSpec {
        let training = &manifest.training;
        TrainSpec {
            detector: manifest.detector.clone(),
            config: Some(manifest.config.clone()),
            normaliser: manifest.normaliser.kind,
            missing: manifest.missing_policy,
            seed: training.seed,
            // The config holds the epochs the model trained with.
            epochs: None,
            calibration_share: match training.train_steps {
                0 => 0.0,
                steps => training.calibration_steps as f64 / steps as f64,
            },
            // A detector that reads a topology keeps it in its config.
            topology: None,
        }
    }
}

/// A fitted detector with everything needed to apply it to new data.
pub struct TrainedModel {
    /// The detector.
    pub detector: Box<dyn Detector>,
    /// The manifest (normaliser, metrics, training info).
    pub manifest: Manifest,
    /// Scores of the training series, for label-free threshold calibration.
    pub calibration: Vec<f64>,
}

/// The scores, or an error naming the first step whose score is NaN or infinite: a threshold
/// or a metric computed over such a score would be meaningless without saying so.
pub(crate) fn finite_scores(scores: Scores, kind: &str, what: &str) -> Result<Scores> {
    match scores.total.iter().position(|s| !s.is_finite()) {
        None => Ok(scores),
        Some(step) => Err(ModelError::Training(format!(
            "the {kind} model gave a non-finite score ({}) at step {step} of the {what}; the \
             training has likely diverged — retrain with another seed or a lower learning rate",
            scores.total[step]
        ))),
    }
}

/// A cleaned series as a model sees it: normalised, in f32.
pub(crate) struct Prepared {
    values: Vec<f32>,
    metric_names: Vec<String>,
}

impl Prepared {
    /// Takes the series, so that its f64 values (twice the size of the f32 copy) are freed
    /// before the model trains or scores.
    pub(crate) fn new(series: Series, normaliser: &Normaliser) -> Result<Prepared> {
        Ok(Prepared {
            values: normaliser.apply(&series)?,
            metric_names: series.metric_names,
        })
    }

    pub(crate) fn input(&self) -> MtsInput<'_> {
        MtsInput::new(&self.values, self.metric_names.len())
    }

    pub(crate) fn steps(&self) -> usize {
        self.values.len() / self.metric_names.len().max(1)
    }
}

/// The manifest of a model just trained on `series` (its files are listed when it is saved).
fn new_manifest(
    detector: &dyn Detector,
    spec: &TrainSpec,
    normaliser: Normaliser,
    series: &Prepared,
    training: TrainingInfo,
) -> Manifest {
    Manifest {
        format: "vigil-model".into(),
        format_version: FORMAT_VERSION,
        vigil_version: env!("CARGO_PKG_VERSION").into(),
        detector: detector.kind().into(),
        config: detector.config_json(),
        missing_policy: spec.missing,
        normaliser,
        metric_names: series.metric_names.clone(),
        training,
        files: vec![],
        lineage: Default::default(),
        threshold: None,
    }
}

/// Trains a detector on a training series.
pub fn train(
    mut series: Series,
    spec: &TrainSpec,
    on_epoch: Option<crate::detector::EpochCallback>,
) -> Result<TrainedModel> {
    spec.validate_for_library()?;
    let mut detector = registry::build(&spec.detector, spec.config.as_ref())?;
    let report = clean(&mut series, spec.missing)?;
    check_window(detector.window(), series.len(), "training series")?;
    // The normaliser sees the whole series (held-out steps included: it is label-free, and
    // the calibration scores must come from inputs in the range the model was fitted for).
    let normaliser = Normaliser::fit(spec.normaliser, &series);
    let series_labels = series.labels.take();
    let series = Prepared::new(series, &normaliser)?;
    let input = MtsInput {
        topology: spec.topology.as_ref(),
        ..series.input()
    };
    let held_out = (series.steps() as f64 * spec.calibration_share).round() as usize;
    let fitted_steps = series.steps() - held_out;
    if spec.calibration_share > 0.0 {
        check_held_out(
            held_out,
            fitted_steps,
            detector.window(),
            spec.calibration_share,
        )?;
    }
    let labels = supervised_labels(detector.as_ref(), series_labels.as_deref(), series.steps())?
        .map(|labels| &labels[..fitted_steps]);
    let fit_input = MtsInput {
        values: &input.values[..fitted_steps * input.n_metrics],
        labels,
        ..input
    };
    let options = FitOptions {
        seed: spec.seed,
        epochs: spec.epochs,
        on_epoch,
        ..FitOptions::default()
    };
    let started = Instant::now();
    let summary = detector.fit(&fit_input, &options)?;
    let train_seconds = started.elapsed().as_secs_f64();
    // The held-out steps are scored with the fitted steps before them as context, as a stream
    // that continues the training series would be.
    let mut calibration =
        finite_scores(detector.score(&input)?, detector.kind(), "training series")?.total;
    let calibrated_from = if held_out > 0 { fitted_steps } else { 0 };
    calibration.drain(..calibrated_from);
    // A supervised model's label-free threshold calibrates on the steps labelled normal: its
    // probabilities on the labelled anomalies it learnt are not what normal looks like (as a
    // fine-tune leaves flagged steps out of its calibration).
    if let Some(all) = series_labels.as_deref().filter(|_| detector.supervised()) {
        calibration = calibration
            .into_iter()
            .zip(&all[calibrated_from..])
            .filter(|(_, &label)| label == 0)
            .map(|(score, _)| score)
            .collect();
    }
    let training = TrainingInfo {
        seed: spec.seed,
        train_steps: series.steps(),
        missing_values: report.missing_values,
        epochs: summary.epochs,
        final_loss: summary.final_loss,
        train_seconds,
        labelled_anomalous: labels.map_or(0, |l| l.iter().filter(|&&v| v != 0).count()),
        calibration_steps: held_out,
    };
    let manifest = new_manifest(detector.as_ref(), spec, normaliser, &series, training);
    Ok(TrainedModel {
        detector,
        manifest,
        calibration,
    })
}

/// The training labels a fit of `detector` sees: a supervised detector's, which it needs; none
/// for the others, which fit on every window as normal, as they always have.
fn supervised_labels<'a>(
    detector: &dyn Detector,
    labels: Option<&'a [u8]>,
    steps: usize,
) -> Result<Option<&'a [u8]>> {
    match (detector.supervised(), labels) {
        (false, _) => Ok(None),
        (true, Some(labels)) if labels.len() == steps => Ok(Some(labels)),
        (true, Some(labels)) => Err(ModelError::Shape(format!(
            "{} training labels for {steps} training steps; give one label per step",
            labels.len()
        ))),
        (true, None) => Err(ModelError::config(
            detector.kind(),
            "this detector learns from labels and the training data has none; give a training \
             file with a `label` column (1 marks an anomalous step), or `y` to Python's fit",
        )),
    }
}

/// Refuses a calibration share that leaves too little on either side: the thresholds need 20
/// held-out scores at least (POT fits a tail on the top 2%, DSPOT starts its level on 10),
/// and the fit needs a window.
fn check_held_out(held_out: usize, fitted: usize, window: usize, share: f64) -> Result<()> {
    const LEAST_CALIBRATION: usize = 20;
    if held_out < LEAST_CALIBRATION || fitted < window.max(1) {
        return Err(ModelError::Shape(format!(
            "calibration_share {share} holds out {held_out} of {} training steps, leaving {fitted} \
             to fit on: the calibration needs at least {LEAST_CALIBRATION} steps and the fit at \
             least one window of {window}; change calibration_share or train on more data",
            held_out + fitted
        )));
    }
    Ok(())
}

/// How a new entity's model starts from a base model (OmniTransfer §III-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transfer {
    /// Fine-tune every parameter of the base model.
    Full,
    /// A fresh model takes the base model's generic layer groups, trains the rest with those
    /// frozen, then fine-tunes everything.
    Partial,
}

/// Trains a model for `series` starting from the base model in `base_dir` by `transfer`. The
/// detector and its config are the base model's; `spec` gives the normaliser (fitted on
/// `series`), missing policy, seed and epochs of each stage.
pub fn transfer(
    base_dir: &Path,
    series: Series,
    spec: &TrainSpec,
    transfer: Transfer,
) -> Result<TrainedModel> {
    transfer_from(TrainedModel::load(base_dir)?, series, spec, transfer)
}

/// [`transfer`] from a base model in memory (the fleet's steps as pure functions of models
/// and data, for engines that schedule them: the Python package's `vigil.fleet`).
pub fn transfer_from(
    base: TrainedModel,
    mut series: Series,
    spec: &TrainSpec,
    transfer: Transfer,
) -> Result<TrainedModel> {
    if spec.calibration_share > 0.0 {
        return Err(ModelError::Shape(
            "calibration_share is not applied by OmniTransfer's transfer yet (an entity's model \
             calibrates on the steps it was fitted on); leave it 0 for fleet work"
                .into(),
        ));
    }
    base.check_metrics(&series, "the entity's series")?;
    let report = clean(&mut series, spec.missing)?;
    check_window(base.detector.window(), series.len(), "the entity's series")?;
    let normaliser = Normaliser::fit(spec.normaliser, &series);
    let m = series.n_metrics();
    let series_labels = series.labels.take();
    let series = Prepared::new(series, &normaliser)?;
    let input = MtsInput {
        labels: supervised_labels(
            base.detector.as_ref(),
            series_labels.as_deref(),
            series.steps(),
        )?,
        ..series.input()
    };
    let options = |frozen_groups: Vec<String>| FitOptions {
        seed: spec.seed,
        epochs: spec.epochs,
        frozen_groups,
        warm_start: true,
        ..FitOptions::default()
    };
    let started = Instant::now();
    let (mut detector, mut epochs) = match transfer {
        Transfer::Full => (base.detector, 0),
        Transfer::Partial => {
            let mut fresh = registry::build(&base.manifest.detector, Some(&base.manifest.config))?;
            let generic: Vec<String> = fresh
                .layer_groups()
                .into_iter()
                .filter(|g| g.role == crate::detector::LayerRole::Generic)
                .map(|g| g.name)
                .collect();
            if generic.is_empty() {
                return Err(ModelError::config(
                    fresh.kind(),
                    "declares no generic layers to transfer; use full transfer",
                ));
            }
            // A fresh network first (random weights, this seed), then the base's generic layers.
            fresh.fit(
                &input,
                &FitOptions {
                    seed: spec.seed,
                    epochs: Some(0),
                    ..FitOptions::default()
                },
            )?;
            fresh.import_tensors(&base.detector.export_tensors(&generic)?, m)?;
            let first = fresh.fit(&input, &options(generic))?;
            (fresh, first.epochs)
        }
    };
    let summary = detector.fit(&input, &options(Vec::new()))?;
    epochs += summary.epochs;
    let train_seconds = started.elapsed().as_secs_f64();
    let calibration = finite_scores(
        detector.score(&input)?,
        detector.kind(),
        "the entity's series",
    )?
    .total;
    let training = TrainingInfo {
        seed: spec.seed,
        train_steps: series.steps(),
        missing_values: report.missing_values,
        epochs,
        final_loss: summary.final_loss,
        train_seconds,
        labelled_anomalous: 0,
        calibration_steps: 0,
    };
    let manifest = new_manifest(detector.as_ref(), spec, normaliser, &series, training);
    Ok(TrainedModel {
        detector,
        manifest,
        calibration,
    })
}

impl TrainedModel {
    /// Refuses a series without exactly this model's metrics, naming the difference.
    pub(crate) fn check_metrics(&self, series: &Series, what: &str) -> Result<()> {
        let reference = Series::new(self.manifest.metric_names.clone(), vec![])?;
        Ok(reference.check_same_metrics(series, what)?)
    }

    /// What every use of the model on new data starts with: its metrics checked, its missing
    /// values repaired by the model's policy.
    pub(crate) fn admit(&self, series: &mut Series, what: &str) -> Result<CleanReport> {
        self.check_metrics(series, what)?;
        let mut report = clean(series, self.manifest.missing_policy)?;
        report.drifted = self.manifest.normaliser.drift(series, DEFAULT_DRIFT_FACTOR);
        Ok(report)
    }

    /// Cleans, normalises and scores a series with the stored preparation.
    pub fn score(&self, series: Series, what: &str) -> Result<(Scores, CleanReport)> {
        let (scores, report, _) = self.score_continuing(series, &[], what)?;
        Ok((scores, report))
    }

    /// Scores `series` as the next part of a stream whose last cleaned steps were `context`
    /// (row-major, fewer than [`Detector::window`] rows; empty at the stream's start), so that
    /// its first steps are scored with the steps before them, as one run over the whole stream
    /// scores them. A part may then be shorter than the window. Returns the scores of `series`'s
    /// own steps and the context for the part after it. (Missing values are repaired within the
    /// part, so that errors name its own rows.)
    pub fn score_continuing(
        &self,
        mut series: Series,
        context: &[f64],
        what: &str,
    ) -> Result<(Scores, CleanReport, Vec<f64>)> {
        let names = &self.manifest.metric_names;
        let (m, window) = (names.len(), self.detector.window());
        if !context.len().is_multiple_of(m) || context.len() / m >= window.max(1) {
            return Err(ModelError::Shape(format!(
                "the stream's context holds {} values, not fewer than {window} rows of {m} \
                 metrics; start a new stream state",
                context.len()
            )));
        }
        let report = self.admit(&mut series, what)?;
        let carried = context.len() / m;
        let values = if context.is_empty() {
            std::mem::take(&mut series.values)
        } else {
            [context, &series.values].concat()
        };
        // The series' f64 values go before the model scores (`Prepared::new` says why).
        drop(series);
        let joined = Series::new(names.clone(), values)?;
        check_window(window, joined.len(), what)?;
        let keep = window.saturating_sub(1).min(joined.len());
        let next_context = joined.values[(joined.len() - keep) * m..].to_vec();
        let prepared = Prepared::new(joined, &self.manifest.normaliser)?;
        let scores = self.detector.score(&prepared.input())?;
        let scores = finite_scores(scores, self.detector.kind(), what)?;
        let own = Scores {
            total: scores.total[carried..].to_vec(),
            per_metric: scores.per_metric[carried * m..].to_vec(),
            n_metrics: m,
        };
        Ok((own, report, next_context))
    }

    /// The codes of `series`'s windows starting at `starts` under the detector's own encoder
    /// ([`Detector::encode`]), after the stored cleaning and normalisation: what TSAL
    /// (`detectors::anotuner::tsal`) clusters history and feedback by.
    pub fn encode(
        &self,
        mut series: Series,
        starts: &[usize],
        what: &str,
    ) -> Result<(Vec<f32>, usize)> {
        self.admit(&mut series, what)?;
        let prepared = Prepared::new(series, &self.manifest.normaliser)?;
        self.detector.encode(&prepared.input(), starts)
    }

    /// The system topology the model was trained on, when its detector reads one (TopoMAD
    /// keeps it in its config).
    pub fn topology(&self) -> Result<Option<crate::detector::Topology>> {
        match self.manifest.config.get("topology") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| {
                    ModelError::config(
                        self.detector.kind(),
                        format!("the model's topology cannot be read: {e}"),
                    )
                }),
        }
    }

    /// Refuses `topology` (the data's) unless it is the one the model was trained on.
    pub fn check_topology(&self, topology: &crate::detector::Topology) -> Result<()> {
        let Some(mine) = self.topology()? else {
            return Err(ModelError::config(
                self.detector.kind(),
                "this model was trained without a topology (only topomad reads one); drop \
                 --topology",
            ));
        };
        match mine.difference(topology) {
            None => Ok(()),
            Some(difference) => Err(ModelError::config(
                self.detector.kind(),
                format!(
                    "the data's topology is not the one the model was trained on: {difference}; \
                     retrain on the new graph or pass the training's edge list"
                ),
            )),
        }
    }

    /// Everything the model is, as files in memory: the detector's weights and the calibration
    /// scores (the manifest lists them when they are stored).
    pub fn files(&self) -> Result<WeightFiles> {
        let mut files = self.detector.save_weights()?;
        if files.contains_key(CALIBRATION) {
            return Err(ModelError::Weights(format!(
                "the {} detector writes a file named {CALIBRATION}, which the model keeps for its \
                 calibration scores",
                self.detector.kind()
            )));
        }
        files.insert(CALIBRATION.into(), f64_bytes(&self.calibration));
        Ok(files)
    }

    /// The model from its manifest and files (verified by whoever read them).
    pub fn from_files(manifest: Manifest, files: &WeightFiles) -> Result<TrainedModel> {
        let mut detector = registry::build(&manifest.detector, Some(&manifest.config))
            .map_err(|e| ModelError::Weights(format!("cannot rebuild its detector: {e}")))?;
        detector.load_weights(files, manifest.metric_names.len())?;
        let calibration = f64s_from(CALIBRATION, weight_file(files, CALIBRATION)?)?;
        Ok(TrainedModel {
            detector,
            manifest,
            calibration,
        })
    }

    /// The whole model as one byte string (a tar archive of its model directory's files; see
    /// [`crate::model_bytes`]). Equal models give equal bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::model_bytes::to_archive(&self.manifest, &self.files()?)
    }

    /// The model in `bytes` written by [`TrainedModel::to_bytes`], verified (format, version,
    /// checksums) before anything is built from it.
    pub fn from_bytes(bytes: &[u8]) -> Result<TrainedModel> {
        let (manifest, files) = crate::model_bytes::from_archive(bytes)?;
        TrainedModel::from_files(manifest, &files)
            .map_err(|e| ModelError::Weights(format!("the model archive: {e}")))
    }

    /// Writes the model directory atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let files = self.files()?;
        model_dir::write_model_dir(dir, self.manifest.clone(), &files)
    }

    /// Loads and verifies a model directory.
    pub fn load(dir: &Path) -> Result<TrainedModel> {
        let (manifest, files) = model_dir::read_model_dir(dir)?;
        TrainedModel::from_files(manifest, &files).map_err(|e| match e {
            ModelError::ModelDir { .. } => e,
            other => ModelError::model_dir(dir, other.to_string()),
        })
    }
}
