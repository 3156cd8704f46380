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
//! With `--testbed DIR`, the same on a recorded system instead (`bench/testbed/record.py`'s
//! train.csv, test.csv, edges.csv and faults.csv).
//!
//! ```text
//! topomad_bench --systems 1,2,3 --models topomad,topomad-nograph,pca,usad \
//!     [--components 8] [--noise 0.03] [--epochs N] [--threshold auto]
//! topomad_bench --testbed bench/testbed/data --models topomad,topomad-nograph,pca
//! ```

use anyhow::Context;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use vigil_core::metrics::localisation::{localisation, read_faults, LabelledFault};
use vigil_core::microservices::{generate_system, SystemConfig};
use vigil_core::threshold::ThresholdMethod;
use vigil_core::topology::Topology;
use vigil_core::Series;
use vigil_models::experiment::threshold_and_evaluate;
use vigil_models::{train, TrainSpec};

#[path = "support/flags.rs"]
mod flags;

struct Args {
    systems: Vec<u64>,
    models: Vec<String>,
    components: usize,
    noise: f64,
    epochs: Option<usize>,
    threshold: String,
    testbed: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let given = flags::parse(&[
        "systems",
        "models",
        "components",
        "noise",
        "epochs",
        "threshold",
        "testbed",
    ])?;
    let list = |key: &str, default: &str| flags::list(&given, key, default);
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
    Ok(Args {
        systems,
        models: list("models", "topomad,topomad-nograph,pca,usad"),
        components: parse("components")?.map_or(8, |v| v as usize),
        noise: parse("noise")?.unwrap_or(0.03),
        epochs: parse("epochs")?.map(|v| v as usize),
        threshold: given.get("threshold").cloned().unwrap_or("auto".into()),
        testbed: given.get("testbed").map(PathBuf::from),
    })
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let method: ThresholdMethod = args.threshold.parse()?;
    if let Some(dir) = &args.testbed {
        let read = |name: &str| vigil_core::read::read_series(&dir.join(name));
        let (train, test) = (read("train.csv")?, read("test.csv")?);
        let topology = Topology::read(
            &train.metric_names,
            &dir.join("train.csv"),
            &dir.join("edges.csv"),
        )?;
        let faults = read_faults(&dir.join("faults.csv"))?;
        let data = Data {
            name: "testbed",
            system: 0,
            train,
            test,
            topology,
            faults,
        };
        return run_models(&data, &args, method);
    }
    for &seed in &args.systems {
        let config = SystemConfig {
            components: args.components,
            noise: args.noise,
            seed,
            ..SystemConfig::default()
        };
        let system = generate_system(&config)?;
        let faults = system
            .faults
            .iter()
            .map(|f| LabelledFault {
                start: f.start,
                end: f.end,
                component: system.components[f.component].clone(),
                line: 0,
            })
            .collect();
        let data = Data {
            name: "generated",
            system: seed,
            topology: system.topology(),
            train: system.train,
            test: system.test,
            faults,
        };
        run_models(&data, &args, method)?;
    }
    Ok(())
}

/// One system's data: its series, topology and labelled faults.
struct Data {
    name: &'static str,
    system: u64,
    train: Series,
    test: Series,
    topology: Topology,
    faults: Vec<LabelledFault>,
}

/// Trains, scores and judges every model of `args` on `data`; one JSON line each.
fn run_models(data: &Data, args: &Args, method: ThresholdMethod) -> anyhow::Result<()> {
    let labels = data
        .test
        .labels
        .clone()
        .context("the test series has no labels")?;
    let component_of = data.topology.component_of_column();
    let components = &data.topology.components;
    for model_name in &args.models {
        let (detector, config, topology) = match model_name.as_str() {
            "topomad" => ("topomad", None, Some(data.topology.clone())),
            "topomad-nograph" => (
                "topomad",
                Some(json!({"graph": "none"})),
                Some(data.topology.clone()),
            ),
            other => (other, None, None),
        };
        let spec = TrainSpec {
            detector: detector.into(),
            config,
            seed: data.system.max(1),
            epochs: args.epochs,
            topology,
            ..TrainSpec::default()
        };
        let model = train(data.train.clone(), &spec, None).with_context(|| {
            format!(
                "training {model_name} on {} system {}",
                data.name, data.system
            )
        })?;
        let started = Instant::now();
        let (scores, _) = model.score(data.test.clone(), "test series")?;
        let score_seconds = started.elapsed().as_secs_f64();
        let (report, _, _) =
            threshold_and_evaluate(&scores, &model.calibration, method, &labels, None)?;
        let located = localisation(&scores.per_metric, &component_of, components, &data.faults)?;
        println!(
            "{}",
            json!({
                "data": data.name,
                "system": data.system,
                "components": components.len(),
                "model": model_name,
                "threshold": args.threshold,
                "precision": report.precision,
                "recall": report.recall,
                "f1": report.f1,
                "pa_f1": report.pa_f1,
                "vus_pr": report.vus_pr,
                "best_f1": report.best_f1,
                "alarm_rate": report.alarm_rate,
                "top1": located.top1,
                "top3": located.top3,
                "faults": located.faults,
                "epochs": model.manifest.training.epochs,
                "train_seconds": model.manifest.training.train_seconds,
                "score_seconds": score_seconds,
            })
        );
    }
    Ok(())
}
