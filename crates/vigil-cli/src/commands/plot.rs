//! `vigil plot`: draw a series with the scores, threshold and alarms that `vigil detect` wrote
//! for it, and the labelled anomalies when known, to a PNG or SVG file.

use crate::output::Ui;
use crate::plot::{draw, Figure};
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The series that was scored (any format `vigil detect` reads; a `label` column is shaded).
    #[arg(long)]
    pub series: PathBuf,
    /// The CSV `vigil detect` wrote for it (step, score, threshold, alarm, anomaly_score, contributions).
    #[arg(long)]
    pub scores: PathBuf,
    /// Labels as a file of one 0/1 per line (e.g. SMD's test_label), when the series has none.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Figure to write: `.png` or `.svg`.
    #[arg(long)]
    pub output: PathBuf,
    /// How many metric panels: the metrics with the largest summed contribution.
    #[arg(long, default_value_t = 4)]
    pub metrics: usize,
}

/// The columns of a `vigil detect` CSV.
struct DetectOutput {
    scores: Vec<f64>,
    thresholds: Vec<f64>,
    alarms: Vec<u8>,
    /// Summed contribution of each metric over the series.
    contribution_sums: Vec<f64>,
}

fn read_detect_output(path: &Path) -> anyhow::Result<DetectOutput> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .clone();
    if header.len() < 4
        || &header[1] != "score"
        || &header[2] != "threshold"
        || &header[3] != "alarm"
    {
        bail!(
            "{}: not a `vigil detect` output (expected columns step,score,threshold,alarm,...)",
            path.display()
        );
    }
    // Per-metric contributions follow `anomaly_score` (files from before it: `alarm`).
    let first_metric = if header.get(4) == Some("anomaly_score") {
        5
    } else {
        4
    };
    let mut out = DetectOutput {
        scores: Vec::new(),
        thresholds: Vec::new(),
        alarms: Vec::new(),
        contribution_sums: vec![0.0; header.len() - first_metric],
    };
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record =
            record.with_context(|| format!("{}: line {line} is unreadable", path.display()))?;
        let field = |col: usize| -> anyhow::Result<f64> {
            record
                .get(col)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .with_context(|| {
                    format!(
                        "{}: line {line}, column `{}` is not a number",
                        path.display(),
                        &header[col]
                    )
                })
        };
        out.scores.push(field(1)?);
        out.thresholds.push(field(2)?);
        out.alarms.push(u8::from(field(3)? != 0.0));
        for (k, sum) in out.contribution_sums.iter_mut().enumerate() {
            *sum += field(first_metric + k)?;
        }
    }
    if out.scores.is_empty() {
        bail!("{}: has a header but no rows", path.display());
    }
    Ok(out)
}

pub fn run(args: PlotArgs, ui: &Ui) -> anyhow::Result<()> {
    let mut inputs = vec![
        ("--series", args.series.as_path()),
        ("--scores", &args.scores),
    ];
    if let Some(labels) = &args.labels {
        inputs.push(("--labels", labels));
    }
    vigil_core::write::refuse_overwriting_inputs("--output", &args.output, &inputs)?;
    let series = vigil_core::read::read_series(&args.series)?;
    let detected = read_detect_output(&args.scores)?;
    let steps = series.len();
    if detected.scores.len() != steps {
        bail!(
            "{} has {} rows but {} has {steps} time steps; plot the scores of this series",
            args.scores.display(),
            detected.scores.len(),
            args.series.display()
        );
    }
    let m = series.metric_names.len();
    if detected.contribution_sums.len() != m {
        bail!(
            "{} has {} contribution columns but {} has {m} metrics",
            args.scores.display(),
            detected.contribution_sums.len(),
            args.series.display()
        );
    }
    let labels = match &args.labels {
        Some(path) => {
            let labels = vigil_core::read::text::read_label_lines(path)?;
            if labels.len() != steps {
                bail!(
                    "{} has {} labels for {steps} time steps",
                    path.display(),
                    labels.len()
                );
            }
            Some(labels)
        }
        None => series.labels.clone(),
    };
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| detected.contribution_sums[b].total_cmp(&detected.contribution_sums[a]));
    let metrics = order
        .into_iter()
        .take(args.metrics)
        .enumerate()
        .map(|(rank, k)| {
            let values = (0..steps).map(|t| series.values[t * m + k]).collect();
            let name = format!(
                "{} (rank {} by contribution to the score)",
                series.metric_names[k],
                rank + 1
            );
            (name, values)
        })
        .collect();
    let figure = Figure {
        title: format!("{} — {}", args.series.display(), args.scores.display()),
        metrics,
        scores: &detected.scores,
        thresholds: &detected.thresholds,
        alarms: &detected.alarms,
        labels: labels.as_deref(),
    };
    draw(&args.output, &figure)?;
    if ui.json {
        crate::say!("{}", serde_json::json!({"output": args.output}))?;
    } else {
        crate::say!("figure written to {}", args.output.display())?;
    }
    Ok(())
}
