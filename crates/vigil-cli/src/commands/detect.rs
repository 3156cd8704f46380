//! `vigil detect`: score a series with a trained model; write scores, thresholds, alarms and
//! per-metric contributions as CSV.

use super::ranking;
use crate::budget::{self, BudgetArgs, Role};
use crate::output::{write_atomic_with, Ui};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use vigil_core::threshold::{decide, decide_stream, Decision, ThresholdMethod};
use vigil_core::topology::Topology;
use vigil_core::write::{csv_writer, write_csv_header};
use vigil_models::stream_state::StreamState;
use vigil_models::TrainedModel;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Model directory written by `vigil train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Series to score (same columns as the training series).
    #[arg(long)]
    pub input: PathBuf,
    /// Output CSV: step, score, threshold, alarm, anomaly_score (score over threshold: 1 is the
    /// alarm boundary), then one contribution column per metric.
    #[arg(long)]
    pub output: PathBuf,
    /// The system's call graph the data comes with (an edge list, as `vigil train
    /// --topology` takes): refused unless it is the graph the model was trained on.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Also write, for every alarm, the components ranked by their summed contributions:
    /// CSV `step,rank,component,contribution` (columns named `component.metric`).
    #[arg(long)]
    pub ranking: Option<PathBuf>,
    /// Label-free threshold: `auto` (calibrated SPOT, or SPOT fitted on this stream's first scores when they sit above the calibration; what it chose is printed), `spot`, `dspot` (SPOT on the residual from a moving level, for drifting scores), `pot`, `pot-batch` (POT fitted on these scores), `ndt` (LSTM-NDT's dynamic threshold on these scores) or `quantile` (default: the rule the model was trained with, else `auto`).
    #[arg(long)]
    pub threshold: Option<String>,
    /// Stream state file: the threshold's state (SPOT's tail, DSPOT's level) and the stream's last steps (the
    /// model's context window) are read from it when it exists and saved to it after scoring,
    /// so that a stream scored in several runs gets the scores and alarms of one run, and a part
    /// may be shorter than the window. For `auto`, `spot`, `dspot`, `pot` and `quantile`.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Steps after which a shift of the scores that persists becomes the new normal (for
    /// `auto`, `spot` and `dspot`; default: the model's setting, else never).
    #[arg(long)]
    pub recalibration_horizon: Option<usize>,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// Scoring chunks a budgeted detect tries, largest first (`None`: the detector's own size).
/// Each core holds one chunk's windows and buffers at a time, so smaller chunks lower the peak.
const CHUNK_LADDER: [Option<usize>; 4] = [None, Some(64), Some(16), Some(4)];

fn chunk_label(cap: Option<usize>) -> String {
    match cap {
        None => "scoring chunks of the detector's own size".into(),
        Some(rows) => format!("scoring chunks of at most {rows} windows"),
    }
}

pub fn run(args: DetectArgs, ui: &Ui) -> anyhow::Result<()> {
    if let Some(name) = &args.threshold {
        if matches!(name.parse()?, ThresholdMethod::BestF1 { .. }) {
            anyhow::bail!("`{name}` needs test labels; use it with `vigil eval`, not `detect`");
        }
    }
    let role = args.budget.role();
    match role {
        Role::Free => {}
        Role::Supervisor(limit) => {
            let labels: Vec<String> = CHUNK_LADDER.iter().map(|&c| chunk_label(c)).collect();
            return budget::supervise(limit, &labels, ui);
        }
        Role::Worker { candidate, share } => {
            let cap = *CHUNK_LADDER.get(candidate).ok_or_else(|| {
                anyhow::anyhow!("there is no scoring-chunk candidate {candidate}")
            })?;
            if let Some(rows) = cap {
                vigil_models::nn::infer::cap_chunk_rows(rows);
            }
            budget::start_worker(share)?;
        }
    }
    let mut inputs = vec![("--input", args.input.as_path())];
    if let Some(state) = &args.state {
        inputs.push(("--state", state));
        vigil_core::write::refuse_overwriting_inputs(
            "--state",
            state,
            &[("--input", &args.input)],
        )?;
    }
    if let Some(topology) = &args.topology {
        inputs.push(("--topology", topology));
    }
    vigil_core::write::refuse_overwriting_inputs("--output", &args.output, &inputs)?;
    for (flag, path) in &inputs[1..] {
        vigil_core::write::refuse_writing_inside(flag, path, "--model", &args.model)?;
    }
    vigil_core::write::refuse_writing_inside("--output", &args.output, "--model", &args.model)?;
    if let Some(ranking) = &args.ranking {
        let mut written = inputs.clone();
        written.push(("--output", args.output.as_path()));
        vigil_core::write::refuse_overwriting_inputs("--ranking", ranking, &written)?;
        vigil_core::write::refuse_writing_inside("--ranking", ranking, "--model", &args.model)?;
    }
    let model = TrainedModel::load(&args.model)?;
    let method = match &args.threshold {
        Some(name) => name.parse()?,
        None => model
            .manifest
            .threshold
            .unwrap_or(ThresholdMethod::Auto(Default::default())),
    };
    let method = match args.recalibration_horizon {
        Some(horizon) => method
            .with_horizon(horizon)
            .map_err(|e| anyhow::anyhow!("--recalibration-horizon: {e}"))?,
        None => method,
    };
    let mut state = match &args.state {
        Some(_) if !method.judges_streams() => return Err(method.refuse_stream().into()),
        Some(path) => Some(StreamState::load_or_new(path, &args.model, method)?),
        None => None,
    };
    let series = vigil_core::read::read_series(&args.input)?;
    if let Some(edges) = &args.topology {
        let topology = Topology::read(&series.metric_names, &args.input, edges)?;
        model
            .check_topology(&topology)
            .with_context(|| format!("--topology {}", edges.display()))?;
    }
    let names = model.manifest.metric_names.clone();
    // Checked before scoring, so that a ranking that cannot be made fails fast.
    let components = match &args.ranking {
        Some(_) => Some(ranking::components(&model)?),
        None => None,
    };
    let what = args.input.display().to_string();
    let (scores, report) = match &mut state {
        Some(state) => {
            let (scores, report, context) =
                model.score_continuing(series, &state.context, &what)?;
            state.context = context;
            (scores, report)
        }
        None => model.score(series, &what)?,
    };
    let Decision {
        thresholds: th,
        alarms: flagged,
        choice,
    } = match &mut state {
        Some(state) => decide_stream(method, &model.calibration, &scores.total, &mut state.rule)?,
        None => decide(method, &model.calibration, &scores.total, None)?,
    };
    write_scores_csv(
        &args.output,
        &names,
        &scores,
        &th,
        &flagged,
        || match role {
            Role::Worker { share, .. } => budget::commit_check(share),
            _ => Ok(()),
        },
    )?;
    if let (Some(path), Some(components)) = (&args.ranking, &components) {
        ranking::write(path, components, &scores, &flagged)?;
    }
    // Saved after the scores: a run that fails before them leaves the previous state.
    if let (Some(state), Some(path)) = (&state, &args.state) {
        state.save(path)?;
    }
    let n_alarms = flagged.iter().filter(|&&a| a != 0).count();
    for drift in &report.drifted {
        ui.note(format!(
            "metric `{}` left its training range by {:.1} times the range's width: the model \
             has not seen such values, so its scores there say little (retrain, or fine-tune \
             with `vigil tune` on recent data)",
            drift.metric, drift.factor
        ));
    }
    // What `auto` chose and why (also kept in the state file, when there is one).
    if let Some(choice) = &choice {
        ui.note(choice.to_string());
    }
    if ui.json {
        crate::say!(
            "{}",
            serde_json::json!({"steps": scores.total.len(), "alarms": n_alarms, "missing_values": report.missing_values, "drifted": report.drifted, "threshold": method, "auto_choice": choice, "output": args.output})
        )?;
    } else if vigil_core::write::is_stdout(&args.output) {
        // The scores went to stdout: the summary must not land among them.
        ui.note(format!(
            "scored {} steps: {n_alarms} alarms",
            scores.total.len()
        ));
    } else {
        crate::say!(
            "scored {} steps: {n_alarms} alarms; written to {}",
            scores.total.len(),
            args.output.display()
        )?;
    }
    Ok(())
}

/// Writes scores as `vigil detect`'s CSV: step, score, threshold, alarm, anomaly_score, then one contribution
/// column per metric. Streamed to the file (the text is several times the size of the scores);
/// `before_commit` runs last and, when it fails, nothing is written.
pub fn write_scores_csv(
    path: &std::path::Path,
    metric_names: &[String],
    scores: &vigil_models::Scores,
    thresholds: &[f64],
    alarms: &[u8],
    before_commit: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    write_atomic_with(path, |mut w| {
        let mut header = vec!["step", "score", "threshold", "alarm", "anomaly_score"];
        let relative = vigil_core::threshold::anomaly_scores(&scores.total, thresholds);
        header.extend(metric_names.iter().map(String::as_str));
        write_csv_header(&mut w, &header)?;
        let mut out = csv_writer(w);
        let m = scores.n_metrics;
        let mut row: Vec<String> = Vec::with_capacity(header.len());
        for t in 0..scores.total.len() {
            row.clear();
            row.push(t.to_string());
            row.push(scores.total[t].to_string());
            row.push(thresholds[t].to_string());
            row.push(alarms[t].to_string());
            row.push(relative[t].to_string());
            row.extend(
                scores.per_metric[t * m..(t + 1) * m]
                    .iter()
                    .map(f32::to_string),
            );
            out.write_record(&row)?;
        }
        out.flush()?;
        drop(out);
        before_commit()
    })
}
