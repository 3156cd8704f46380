//! `vigil detect`: score a series with a trained model; write scores, thresholds, alarms and
//! per-metric contributions as CSV.

use crate::output::{write_atomic, Ui};
use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;
use vigil_core::threshold::{alarms, thresholds, ThresholdMethod};
use vigil_models::TrainedModel;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Model directory written by `vigil train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Series to score (same columns as the training series).
    #[arg(long)]
    pub input: PathBuf,
    /// Output CSV: step, score, threshold, alarm, then one contribution column per metric.
    #[arg(long)]
    pub output: PathBuf,
    /// Label-free threshold: `spot` (default), `pot`, `pot-batch` (POT fitted on these scores) or `quantile`.
    #[arg(long, default_value = "spot")]
    pub threshold: String,
}

pub fn run(args: DetectArgs, ui: &Ui) -> anyhow::Result<()> {
    let method: ThresholdMethod = args.threshold.parse()?;
    if matches!(method, ThresholdMethod::BestF1 { .. }) {
        anyhow::bail!(
            "`{}` needs test labels; use it with `vigil eval`, not `detect`",
            args.threshold
        );
    }
    let model = TrainedModel::load(&args.model)?;
    let series = vigil_core::read::read_series(&args.input)?;
    let names = model.manifest.metric_names.clone();
    let (scores, report) = model.score(series, &args.input.display().to_string())?;
    let th = thresholds(method, &model.calibration, &scores.total, None)?;
    let flagged = alarms(&scores.total, &th);
    let mut csv = String::from("step,score,threshold,alarm");
    for n in &names {
        let _ = write!(csv, ",{n}");
    }
    csv.push('\n');
    let m = scores.n_metrics;
    for t in 0..scores.total.len() {
        let _ = write!(csv, "{t},{},{},{}", scores.total[t], th[t], flagged[t]);
        for v in &scores.per_metric[t * m..(t + 1) * m] {
            let _ = write!(csv, ",{v}");
        }
        csv.push('\n');
    }
    write_atomic(&args.output, csv.as_bytes())?;
    let n_alarms = flagged.iter().filter(|&&a| a != 0).count();
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"steps": scores.total.len(), "alarms": n_alarms, "missing_values": report.missing_values, "output": args.output})
        );
    } else {
        println!(
            "scored {} steps: {n_alarms} alarms; written to {}",
            scores.total.len(),
            args.output.display()
        );
    }
    Ok(())
}
