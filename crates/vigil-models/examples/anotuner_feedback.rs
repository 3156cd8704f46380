//! The AnoTuner paper's feedback protocol (§4.3) on a benchmark, run by `bench/anotuner.sh`.
//!
//! For every entity, detector and seed: train on the training series; the first 30% of the
//! test series is the feedback period, the last 70% the evaluation period. An operator
//! simulator reads the model's alarms in the feedback period (label-free threshold) and gives
//! feedback from the labels: false positives (alarmed runs of normal steps) and false negatives
//! (labelled anomalies no alarm touched), at most `--max-pieces` of each, each at most
//! `--max-piece-steps` long. Four groups: no fine-tuning, FP only, FN only, FP + FN. A
//! fine-tune sees each piece with the `window − 1` steps before it; AnoTuner adds the history
//! TSAL samples (the simulator labels each sampled cluster's medoid from the training labels,
//! normal where there are none), and augments false negatives inside its fit. Baselines get
//! the same feedback through conventional fine-tuning (which learns nothing from missed
//! anomalies alone: their FN-only row is the untuned model). Each tuned model is recalibrated on its
//! scores of the training series, as the base model was, and judged on the evaluation period
//! with the same label-free threshold.
//!
//! Prints one JSON line per (entity, detector, seed, group) to stdout.
//!
//! ```text
//! anotuner_feedback --dataset smd --data-dir ../shared/data --detectors anotuner,usad \
//!     --seeds 1,2 [--entities a,b] [--max-pieces 20] [--max-piece-steps 60] [--epochs N] \
//!     [--tune-epochs N] [--threshold auto] [--clusters 10] [--history 1500]
//! ```

use anyhow::{bail, Context};
use serde_json::json;
use std::path::PathBuf;
use vigil_core::metrics::evaluate;
use vigil_core::read::{load_benchmark, BenchmarkKind};
use vigil_core::threshold::{decide, ThresholdMethod};
use vigil_core::{Entity, Series};
use vigil_models::detectors::anotuner::tsal;
use vigil_models::{fine_tune, train, TrainSpec, TrainedModel, TuneSpec};

#[path = "support/flags.rs"]
mod flags;

struct Args {
    dataset: String,
    data_dir: PathBuf,
    detectors: Vec<String>,
    seeds: Vec<u64>,
    entities: Vec<String>,
    max_pieces: usize,
    max_piece_steps: usize,
    epochs: Option<usize>,
    tune_epochs: Option<usize>,
    threshold: String,
    clusters: usize,
    history: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let given = flags::parse(&[
        "dataset",
        "data-dir",
        "detectors",
        "seeds",
        "entities",
        "max-pieces",
        "max-piece-steps",
        "epochs",
        "tune-epochs",
        "threshold",
        "clusters",
        "history",
    ])?;
    let list = |key: &str| flags::list(&given, key, "");
    let number = |key: &str, default: usize| -> anyhow::Result<usize> {
        given.get(key).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("--{key} must be a whole number, got `{v}`"))
        })
    };
    let optional = |key: &str| -> anyhow::Result<Option<usize>> {
        given
            .get(key)
            .map(|v| {
                v.parse()
                    .with_context(|| format!("--{key} must be a whole number"))
            })
            .transpose()
    };
    let args = Args {
        dataset: given
            .get("dataset")
            .cloned()
            .context("--dataset is required")?,
        data_dir: given
            .get("data-dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared/data")),
        detectors: list("detectors"),
        seeds: list("seeds")
            .iter()
            .map(|s| s.parse().with_context(|| format!("seed `{s}`")))
            .collect::<anyhow::Result<_>>()?,
        entities: list("entities"),
        max_pieces: number("max-pieces", 20)?,
        max_piece_steps: number("max-piece-steps", 60)?,
        epochs: optional("epochs")?,
        tune_epochs: optional("tune-epochs")?,
        threshold: given
            .get("threshold")
            .cloned()
            .unwrap_or_else(|| "auto".into()),
        clusters: number("clusters", 10)?,
        history: number("history", 1500)?,
    };
    if args.detectors.is_empty() || args.seeds.is_empty() {
        bail!("give --detectors and --seeds (comma-separated)");
    }
    Ok(args)
}

/// A stretch of the test series an operator judged: steps `start..end`, anomalous or not.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    anomalous: bool,
}

/// Maximal runs of steps in `range` where `keep` holds.
fn runs(range: std::ops::Range<usize>, keep: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open = None;
    for t in range.clone() {
        match (keep(t), open) {
            (true, None) => open = Some(t),
            (false, Some(s)) => {
                out.push((s, t));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        out.push((s, range.end));
    }
    out
}

/// The operator simulator: false alarms and missed anomalies of the feedback period (the
/// first `cut` steps), the first `most` of each in time, each cut to `longest` steps. An
/// anomaly that goes on past the cut is left out: the evaluation judges its rest. So is a
/// stretch with fewer than `context` steps before it: no full window would end in it.
fn feedback(
    alarms: &[u8],
    labels: &[u8],
    cut: usize,
    context: usize,
    most: usize,
    longest: usize,
) -> (Vec<Piece>, Vec<Piece>) {
    let period = context.min(cut)..cut;
    let cut = |(s, e): (usize, usize), anomalous| Piece {
        start: s,
        end: e.min(s + longest),
        anomalous,
    };
    let false_alarms = runs(period.clone(), |t| alarms[t] != 0 && labels[t] == 0)
        .into_iter()
        .take(most)
        .map(|r| cut(r, false))
        .collect();
    let missed = runs(period, |t| labels[t] != 0)
        .into_iter()
        .filter(|&(s, e)| alarms[s..e].iter().all(|&a| a == 0))
        .filter(|&(_, e)| labels.get(e).is_none_or(|&l| l == 0))
        .take(most)
        .map(|r| cut(r, true))
        .collect();
    (false_alarms, missed)
}

/// Pieces of data laid end to end for a fine-tune, with each step's label and weight.
#[derive(Default)]
struct Tuning {
    values: Vec<f64>,
    labels: Vec<u8>,
    weights: Vec<f32>,
}

impl Tuning {
    /// Adds each piece of `source` after the `context` steps before it, labelled as judged
    /// (its context as the operator sees it: by `source`'s labels, normal where it has none).
    /// Before each, `context` steps of weight 0 (copies of its first row): no window across a
    /// junction between pieces is trained or calibrated on (`vigil_models::fine_tune`).
    fn add(&mut self, source: &Series, pieces: &[Piece], context: usize) {
        let truth = |t: usize| source.labels.as_ref().is_some_and(|l| l[t] != 0);
        let m = source.n_metrics();
        for p in pieces {
            let from = p.start.saturating_sub(context);
            for _ in 0..context {
                self.values
                    .extend_from_slice(&source.values[from * m..(from + 1) * m]);
                self.labels.push(0);
                self.weights.push(0.0);
            }
            self.values
                .extend_from_slice(&source.values[from * m..p.end * m]);
            self.labels.extend(
                (from..p.end).map(|t| u8::from(if t >= p.start { p.anomalous } else { truth(t) })),
            );
            self.weights.extend((from..p.end).map(|_| 1.0f32));
        }
    }

    fn into_series(self, like: &Series) -> anyhow::Result<(Series, Vec<f32>)> {
        let mut series = Series::new(like.metric_names.clone(), self.values)?;
        series.labels = Some(self.labels);
        Ok((series, self.weights))
    }
}

/// TSAL's history for a fine-tune: training windows unlike the feedback, labelled by their
/// cluster's medoid (anomalous when the medoid window holds a labelled training step).
fn tsal_history(
    model: &TrainedModel,
    entity: &Entity,
    feedback_pieces: &[Piece],
    args: &Args,
    seed: u64,
) -> anyhow::Result<Vec<Piece>> {
    let w = model.detector.window();
    let train_windows = entity.train.len().saturating_sub(w) + 1;
    let stride = train_windows.div_ceil(args.history.max(1)).max(1);
    let starts: Vec<usize> = (0..train_windows).step_by(stride).collect();
    let (history, dim) = model.encode(entity.train.clone(), &starts, "training series")?;
    let feedback_starts: Vec<usize> = feedback_pieces
        .iter()
        // The windows that end inside the piece.
        .flat_map(|p| p.start.saturating_sub(w - 1)..p.end.saturating_sub(w - 1))
        .filter(|&s| s + w <= entity.test.len())
        .collect();
    let (codes, _) = model.encode(entity.test.clone(), &feedback_starts, "test series")?;
    // At least as much history as feedback (`tsal::top_up_counts` says why).
    let plan = tsal::plan(
        &history,
        &codes,
        dim,
        args.clusters,
        feedback_starts.len(),
        seed,
    );
    let train_labels = entity.train.labels.as_deref();
    let labels = plan.labels(|cluster| {
        let medoid = starts[plan.clusters.medoids[cluster]];
        train_labels.is_some_and(|l| l[medoid..medoid + w].iter().any(|&v| v != 0))
    });
    Ok(labels
        .into_iter()
        .map(|(member, anomalous)| Piece {
            start: starts[member] + w - 1,
            end: starts[member] + w,
            anomalous,
        })
        .collect())
}

/// Scores of the whole test series, judged on the evaluation period only.
fn judge(
    model: &TrainedModel,
    entity: &Entity,
    from: usize,
    method: ThresholdMethod,
) -> anyhow::Result<(vigil_core::metrics::EvalReport, Vec<u8>)> {
    let labels = entity.test.labels.as_deref().context("test labels")?;
    let (scores, _) = model.score(entity.test.clone(), "test series")?;
    let decision = decide(method, &model.calibration, &scores.total, None)?;
    let m = scores.n_metrics;
    let report = evaluate(
        &scores.total[from..],
        &decision.alarms[from..],
        &labels[from..],
        Some((&scores.per_metric[from * m..], m)),
        None,
    );
    Ok((report, decision.alarms))
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let kind: BenchmarkKind = args.dataset.parse()?;
    let dataset = load_benchmark(kind, &args.data_dir, &args.entities)?;
    // The alarms the simulator reads and the evaluation's alarms must not see the labels.
    if args.threshold == "best-f1" {
        bail!("--threshold best-f1 chooses alarms with the labels; use a label-free rule (auto, pot, spot, dspot)");
    }
    let method: ThresholdMethod = args.threshold.parse()?;
    for entity in &dataset.entities {
        let labels = entity.test.labels.as_deref().context("test labels")?;
        let cut = entity.test.len() * 3 / 10;
        for detector in &args.detectors {
            for &seed in &args.seeds {
                let spec = TrainSpec {
                    detector: detector.clone(),
                    seed,
                    epochs: args.epochs,
                    ..TrainSpec::default()
                };
                let model = train(entity.train.clone(), &spec, None)?;
                let (base, alarms) = judge(&model, entity, cut, method)?;
                let (false_alarms, missed) = feedback(
                    &alarms,
                    labels,
                    cut,
                    model.detector.window() - 1,
                    args.max_pieces,
                    args.max_piece_steps,
                );
                let row = |group: &str,
                           report: &vigil_core::metrics::EvalReport,
                           extra: serde_json::Value| {
                    json!({
                        "dataset": args.dataset, "entity": entity.name, "detector": detector,
                        "seed": seed, "group": group,
                        "pa_precision": report.pa_precision, "pa_recall": report.pa_recall,
                        "pa_f1": report.pa_f1, "f1": report.f1,
                        "affiliation_f1": report.affiliation_f1, "vus_pr": report.vus_pr,
                        "best_f1": report.best_f1, "alarm_rate": report.alarm_rate,
                        "extra": extra,
                    })
                };
                println!(
                    "{}",
                    row(
                        "none",
                        &base,
                        json!({
                            "train_seconds": model.manifest.training.train_seconds,
                            "false_alarm_pieces": false_alarms.len(), "missed_pieces": missed.len(),
                        })
                    )
                );
                let w = model.detector.window();
                for group in ["fp", "fn", "fp+fn"] {
                    let mut pieces: Vec<Piece> = Vec::new();
                    if group.contains("fp") {
                        pieces.extend(&false_alarms);
                    }
                    if group.contains("fn") {
                        pieces.extend(&missed);
                    }
                    if pieces.is_empty() {
                        println!(
                            "{}",
                            row(
                                group,
                                &base,
                                json!({"tuned": false, "why": "no feedback of this kind"})
                            )
                        );
                        continue;
                    }
                    let feedback_steps: usize = pieces.iter().map(|p| p.end - p.start).sum();
                    if detector != "anotuner" && pieces.iter().all(|p| p.anomalous) {
                        // Conventional fine-tuning learns only normal windows: from missed
                        // anomalies alone it has nothing to learn, and the model stays as it is.
                        let why =
                            "conventional fine-tuning learns nothing from missed anomalies alone";
                        println!("{}", row(group, &base, json!({"tuned": false, "why": why})));
                        continue;
                    }
                    let mut tuning = Tuning::default();
                    tuning.add(&entity.test, &pieces, w - 1);
                    let mut history_windows = 0;
                    if detector == "anotuner" {
                        let history = tsal_history(&model, entity, &pieces, &args, seed)?;
                        history_windows = history.len();
                        tuning.add(&entity.train, &history, w - 1);
                    }
                    let (series, weights) = tuning.into_series(&entity.test)?;
                    let tune = TuneSpec {
                        epochs: args.tune_epochs,
                        seed,
                        step_weights: Some(weights),
                        ..TuneSpec::default()
                    };
                    let mut tuned = fine_tune(&model, series, &tune)?;
                    // Recalibrated as the base model was calibrated: on its scores of the
                    // training series (the fine-tune's own calibration holds only the few
                    // judged steps, too few for a tail fit).
                    tuned.calibration = tuned
                        .score(entity.train.clone(), "training series")?
                        .0
                        .total;
                    let (report, _) = judge(&tuned, entity, cut, method)?;
                    println!(
                        "{}",
                        row(
                            group,
                            &report,
                            json!({
                                "tuned": true, "feedback_steps": feedback_steps,
                                "history_windows": history_windows,
                                "tune_seconds": tuned.manifest.training.train_seconds,
                            })
                        )
                    );
                }
            }
        }
    }
    Ok(())
}
