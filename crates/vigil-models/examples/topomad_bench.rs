//! TopoMAD's benchmark on generated microservice systems, run by `bench/topomad.sh`.
//!
//! For every system seed: generate a system (`vigil_core::microservices`: a call graph, a
//! fault-free training series, a test series with faults at one component at a time), train
//! each model on the training series, score the test series, and report detection at the
//! label-free threshold (point-wise and point-adjusted F1, VUS-PR, the best-F1 oracle beside
//! them) and localisation: for every fault, components ranked by their summed per-metric
//! contributions over the fault's steps; top-1 and top-3 accuracy.
//!
//! Models: `topomad` (the call graph), `topomad-nograph` (the same model with no edges: every
//! component alone) and zoo detectors by name, whose contributions are summed per component by
//! their columns' prefixes. Prints one JSON line per (system, model) to stdout.
//!
//! ```text
//! topomad_bench --systems 1,2,3 --models topomad,topomad-nograph,pca,usad \
//!     [--components 8] [--noise 0.03] [--epochs N] [--threshold auto]
//! ```

use anyhow::{bail, Context};
use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;
use vigil_core::metrics::localisation::{components_of_columns, localisation, LabelledFault};
use vigil_core::microservices::{generate_system, SystemConfig};
use vigil_core::threshold::ThresholdMethod;
use vigil_models::experiment::threshold_and_evaluate;
use vigil_models::{train, TrainSpec};

struct Args {
    systems: Vec<u64>,
    models: Vec<String>,
    components: usize,
    noise: f64,
    epochs: Option<usize>,
    threshold: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut given: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let key = flag
            .strip_prefix("--")
            .with_context(|| format!("unexpected argument `{flag}`; flags are --name value"))?;
        let value = it
            .next()
            .with_context(|| format!("--{key} needs a value"))?;
        given.insert(key.to_string(), value);
    }
    let list = |key: &str, default: &str| -> Vec<String> {
        given
            .get(key)
            .map_or(default, String::as_str)
            .split(',')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    let systems = list("systems", "1")
        .iter()
        .map(|s| {
            s.parse()
                .with_context(|| format!("--systems takes whole numbers, got `{s}`"))
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let parse = |key: &str| -> anyhow::Result<Option<f64>> {
        given
            .get(key)
            .map(|v| {
                v.parse()
                    .with_context(|| format!("--{key} must be a number, got `{v}`"))
            })
            .transpose()
    };
    let known = [
        "systems",
        "models",
        "components",
        "noise",
        "epochs",
        "threshold",
    ];
    if let Some(unknown) = given.keys().find(|k| !known.contains(&k.as_str())) {
        bail!("unknown flag --{unknown}; flags: --{}", known.join(", --"));
    }
    Ok(Args {
        systems,
        models: list("models", "topomad,topomad-nograph,pca,usad"),
        components: parse("components")?.map_or(8, |v| v as usize),
        noise: parse("noise")?.unwrap_or(0.03),
        epochs: parse("epochs")?.map(|v| v as usize),
        threshold: given.get("threshold").cloned().unwrap_or("auto".into()),
    })
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let method: ThresholdMethod = args.threshold.parse()?;
    for &seed in &args.systems {
        let config = SystemConfig {
            components: args.components,
            noise: args.noise,
            seed,
            ..SystemConfig::default()
        };
        let system = generate_system(&config)?;
        let topology = system.topology();
        let labels = system
            .test
            .labels
            .clone()
            .expect("generated tests are labelled");
        let faults: Vec<LabelledFault> = system
            .faults
            .iter()
            .map(|f| LabelledFault {
                start: f.start,
                end: f.end,
                component: system.components[f.component].clone(),
            })
            .collect();
        let (components, of_column) = components_of_columns(&system.test.metric_names)?;
        for model_name in &args.models {
            let (detector, config, topology) = match model_name.as_str() {
                "topomad" => ("topomad", None, Some(topology.clone())),
                "topomad-nograph" => (
                    "topomad",
                    Some(json!({"graph": "none"})),
                    Some(topology.clone()),
                ),
                other => (other, None, None),
            };
            let spec = TrainSpec {
                detector: detector.into(),
                config,
                seed,
                epochs: args.epochs,
                topology,
                ..TrainSpec::default()
            };
            let model = train(system.train.clone(), &spec, None)
                .with_context(|| format!("training {model_name} on system {seed}"))?;
            let started = Instant::now();
            let (scores, _) = model.score(system.test.clone(), "test series")?;
            let score_seconds = started.elapsed().as_secs_f64();
            let (report, _, _) =
                threshold_and_evaluate(&scores, &model.calibration, method, &labels, None)?;
            let located = localisation(&scores.per_metric, &of_column, &components, &faults)?;
            println!(
                "{}",
                json!({
                    "system": seed,
                    "components": args.components,
                    "noise": args.noise,
                    "model": model_name,
                    "threshold": args.threshold,
                    "precision": report.precision,
                    "recall": report.recall,
                    "f1": report.f1,
                    "pa_f1": report.pa_f1,
                    "vus_pr": report.vus_pr,
                    "best_f1": report.best_f1,
                    "top1": located.top1,
                    "top3": located.top3,
                    "faults": located.faults,
                    "epochs": model.manifest.training.epochs,
                    "train_seconds": model.manifest.training.train_seconds,
                    "score_seconds": score_seconds,
                })
            );
        }
    }
    Ok(())
}
