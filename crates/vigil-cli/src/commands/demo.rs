//! `vigil demo`: the main job on generated data — a small fleet with injected anomalies,
//! trained, scored, thresholded and evaluated, with a report folder.

use super::SpecArgs;
use crate::output::{write_atomic, write_atomic_with, Ui};
use crate::plot::{draw, Figure};
use crate::table;
use clap::Args;
use std::path::PathBuf;
use vigil_core::synth::{generate_fleet, SynthConfig};
use vigil_models::experiment::run_entity;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the report, scores and models.
    #[arg(long, default_value = "vigil-demo")]
    pub out: PathBuf,
    /// Number of generated entities.
    #[arg(long, default_value_t = 3)]
    pub entities: usize,
    #[command(flatten)]
    pub spec: SpecArgs,
}

pub fn run(args: DemoArgs, ui: &Ui) -> anyhow::Result<()> {
    let (spec, method) = args.spec.resolve()?;
    let threshold_name = args.spec.threshold.clone().unwrap_or_else(|| "auto".into());
    let synth = SynthConfig {
        entities: args.entities,
        seed: spec.seed.wrapping_add(42),
        ..SynthConfig::default()
    };
    let fleet = generate_fleet(&synth);
    ui.note(format!(
        "generated {} entities x {} metrics ({} train + {} test steps, {} injected anomalies each: spikes, level shifts, correlation breaks, drifts)",
        fleet.entities.len(),
        synth.metrics,
        synth.train_len,
        synth.test_len,
        synth.anomalies
    ));
    let mut outcomes = Vec::new();
    for entity in &fleet.entities {
        ui.note(format!("training {} on {} ...", spec.detector, entity.name));
        let (outcome, trace, model) = run_entity(entity, &spec, method, &[])?;
        let labels = entity.test.labels.as_deref().unwrap_or(&[]);
        write_atomic_with(&args.out.join(format!("{}.scores.csv", entity.name)), |w| {
            let mut out = vigil_core::write::csv_writer(w);
            out.write_record(["step", "score", "threshold", "alarm", "label"])?;
            for t in 0..trace.scores.len() {
                out.write_record([
                    t.to_string(),
                    trace.scores[t].to_string(),
                    trace.thresholds[t].to_string(),
                    trace.alarms[t].to_string(),
                    labels.get(t).copied().unwrap_or(0).to_string(),
                ])?;
            }
            out.flush()?;
            Ok(())
        })?;
        model.save(&args.out.join("models").join(&entity.name))?;
        let m = entity.test.metric_names.len();
        let figure = Figure {
            title: format!(
                "{}: {} test series, {} threshold",
                entity.name, spec.detector, threshold_name
            ),
            metrics: (0..m.min(3))
                .map(|k| {
                    let values = (0..entity.test.len())
                        .map(|t| entity.test.values[t * m + k])
                        .collect();
                    (entity.test.metric_names[k].clone(), values)
                })
                .collect(),
            scores: &trace.scores,
            thresholds: &trace.thresholds,
            alarms: &trace.alarms,
            labels: entity.test.labels.as_deref(),
        };
        draw(&args.out.join(format!("{}.png", entity.name)), &figure)?;
        outcomes.push(outcome);
    }
    let mean_pa_f1 = table::mean_pa_f1(&outcomes);
    let report = format!(
        "# vigil demo\n\nGenerated fleet: {} entities, {} metrics, seed {}. Detector `{}`, threshold `{threshold_name}` (label-free).\n\n{}\nMean point-adjusted F1: {mean_pa_f1:.4}\n",
        fleet.entities.len(),
        synth.metrics,
        spec.seed,
        spec.detector,
        table::markdown(&outcomes, &threshold_name)
    );
    write_atomic(&args.out.join("report.md"), report.as_bytes())?;
    if ui.json {
        crate::say!(
            "{}",
            serde_json::json!({"mean_pa_f1": mean_pa_f1, "entities": outcomes, "out": args.out})
        )?;
    } else {
        crate::say!("{}", table::markdown(&outcomes, &threshold_name))?;
        crate::say!(
            "mean point-adjusted F1 (label-free {threshold_name} threshold): {mean_pa_f1:.4}"
        )?;
        crate::say!(
            "report, scores, plots and models written to {}/",
            args.out.display()
        )?;
    }
    Ok(())
}
