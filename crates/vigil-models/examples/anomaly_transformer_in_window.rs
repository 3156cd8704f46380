//! The Anomaly Transformer's two criteria on one benchmark entity, from one trained network:
//! vigil's streaming score (each point as the newest step of its own window) and the authors'
//! batch criterion (windows that do not overlap, softmax over each window's steps), each judged
//! by the same measures and by the authors' own threshold — the (100 − r)th percentile of the
//! training and test criterion together (r = 0.5 on SMD, 1 on SMAP and MSL), point-adjusted.
//!
//! cargo run --release -p vigil-models --example anomaly_transformer_in_window -- \
//!     DATA_DIR smd machine-1-6 '{"train_stride": 100}' [SEED] [ANOMALY_RATIO_PERCENT]
//!
//! With `pooled` for the entity, the data set's entities are concatenated — training series
//! after training series, test after test — and one model is trained on the lot with a z-score
//! normaliser, as the authors do (their `*_train.npy` files and `StandardScaler`); otherwise the
//! entity is trained as `vigil bench` trains it.
//!
//! Prints one markdown row per criterion (`bench/results/*-anomaly-transformer-criterion.md`).

use std::path::PathBuf;
use vigil_core::clean::clean;
use vigil_core::metrics::evaluate;
use vigil_core::normalise::NormKind;
use vigil_core::read::{load_benchmark, BenchmarkKind};
use vigil_core::threshold::{decide, ThresholdMethod};
use vigil_core::{Entity, Series};
use vigil_models::detectors::anomaly_transformer::{AnomalyTransformer, AnomalyTransformerConfig};
use vigil_models::experiment::run_entity;
use vigil_models::{Detector, MtsInput, Scores, TrainSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        anyhow::bail!(
            "usage: anomaly_transformer_in_window DATA_DIR smd|smap|msl ENTITY CONFIG_JSON [SEED] [ANOMALY_RATIO_PERCENT]"
        );
    }
    let kind: BenchmarkKind = args[1].parse()?;
    let pooled = args[2] == "pooled";
    let only = if pooled {
        vec![]
    } else {
        vec![args[2].clone()]
    };
    let dataset = load_benchmark(kind, &PathBuf::from(&args[0]), &only)?;
    let entity = &if pooled {
        concatenated(&dataset.entities)?
    } else {
        dataset.entities[0].clone()
    };
    let config: serde_json::Value = serde_json::from_str(&args[3])?;
    let seed: u64 = args.get(4).map_or(Ok(1), |s| s.parse())?;
    // The authors' `anormly_ratio`: 0.5 in their SMD script, 1 for SMAP and MSL.
    let default_ratio = if matches!(kind, BenchmarkKind::Smd) {
        0.5
    } else {
        1.0
    };
    let ratio: f64 = args.get(5).map_or(Ok(default_ratio), |s| s.parse())?;
    let labels = entity
        .test
        .labels
        .clone()
        .expect("benchmark test series carry labels");

    // Trained exactly as `vigil bench` trains it (same pipeline, seed and config), so the
    // streaming row reproduces that table's figures for this entity.
    let spec = TrainSpec {
        detector: "anomaly-transformer".into(),
        config: Some(config.clone()),
        seed,
        normaliser: if pooled {
            NormKind::ZScore
        } else {
            TrainSpec::default().normaliser
        },
        ..TrainSpec::default()
    };
    let (_, _, model) = run_entity(entity, &spec, "pot-batch".parse()?, &[])?;
    let (streaming, _) = model.score(entity.test.clone(), "test series")?;

    // The same weights in a detector of our own, to call its batch criterion.
    let m = entity.train.n_metrics();
    let mut network =
        AnomalyTransformer::new(serde_json::from_value::<AnomalyTransformerConfig>(config)?)?;
    network.load_weights(&model.detector.save_weights()?, m)?;
    let prepared = |series: &Series| -> anyhow::Result<Vec<f32>> {
        let mut series = series.clone();
        clean(&mut series, model.manifest.missing_policy)?;
        Ok(model.manifest.normaliser.apply(&series)?)
    };
    let (train, test) = (prepared(&entity.train)?, prepared(&entity.test)?);
    let in_window_train = network.in_window_criterion(&MtsInput::new(&train, m))?;
    let in_window_test = network.in_window_criterion(&MtsInput::new(&test, m))?;

    println!(
        "| criterion | entity | ROC-AUC | PR-AUC | best F1 (oracle) | best PA-F1 (oracle) | PA%K area | PA-F1 (pot-batch) | F1 (authors' threshold, r = {ratio}%) | PA-F1 (authors' threshold) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, train_scores, test_scores) in [
        ("streaming (vigil)", &model.calibration, &streaming),
        (
            "in-window (the authors')",
            &in_window_train.total,
            &in_window_test,
        ),
    ] {
        row(
            name,
            &entity.name,
            train_scores,
            test_scores,
            &labels,
            ratio,
        )?;
    }
    Ok(())
}

/// One entity whose training and test series are every entity's, one after another.
fn concatenated(entities: &[Entity]) -> anyhow::Result<Entity> {
    let join = |part: fn(&Entity) -> &Series| -> anyhow::Result<Series> {
        let first = part(&entities[0]);
        let values = entities
            .iter()
            .flat_map(|e| part(e).values.clone())
            .collect();
        let mut series = Series::new(first.metric_names.clone(), values)?;
        // Labels for all or for none: a gap would shift every label after it.
        let labels: Option<Vec<Vec<u8>>> =
            entities.iter().map(|e| part(e).labels.clone()).collect();
        series.labels = labels.map(|all| all.concat());
        Ok(series)
    };
    Ok(Entity {
        name: format!("{} entities, concatenated", entities.len()),
        train: join(|e| &e.train)?,
        test: join(|e| &e.test)?,
    })
}

/// One markdown row: threshold-free and oracle figures, PA-F1 at POT on the test scores, and
/// F1 / PA-F1 at the authors' percentile threshold.
fn row(
    name: &str,
    entity: &str,
    train: &[f64],
    test: &Scores,
    labels: &[u8],
    ratio: f64,
) -> anyhow::Result<()> {
    let pot = decide(
        "pot-batch".parse::<ThresholdMethod>()?,
        train,
        &test.total,
        Some(labels),
    )?;
    let report = evaluate(&test.total, &pot.alarms, labels, None, None);
    let energy: Vec<f64> = train.iter().chain(&test.total).copied().collect();
    let threshold = percentile(&energy, 100.0 - ratio);
    // The authors alarm strictly above the threshold.
    let alarms: Vec<u8> = test
        .total
        .iter()
        .map(|&s| u8::from(s > threshold))
        .collect();
    let authors = evaluate(&test.total, &alarms, labels, None, None);
    let f = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.4}"));
    println!(
        "| {name} | {entity} | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} |",
        f(report.roc_auc),
        f(report.pr_auc),
        f(report.best_f1),
        f(report.best_pa_f1),
        report.pa_k_area,
        report.pa_f1,
        authors.f1,
        authors.pa_f1,
    );
    Ok(())
}

/// The `q`th percentile with linear interpolation between order statistics (numpy's default,
/// which the authors' threshold uses).
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}
