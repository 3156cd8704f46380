//! `vigil eval`: score a labelled series with a trained model and print every measure.

use crate::output::{fmt_opt, Ui};
use clap::Args;
use std::path::PathBuf;
use vigil_core::metrics::localisation::{check_faults, localisation, read_faults};
use vigil_core::metrics::EvalReport;
use vigil_core::threshold::ThresholdMethod;
use vigil_models::experiment::threshold_and_evaluate;
use vigil_models::TrainedModel;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory written by `vigil train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled test series (a CSV with a `label` column).
    #[arg(long)]
    pub test: PathBuf,
    /// Threshold: `auto` (default: calibrated SPOT, or SPOT on these scores when they sit above the calibration), `spot`, `dspot`, `pot`, `pot-batch`, `ndt`, `quantile`, or the oracles `best-f1`, `best-f1-adjusted`.
    #[arg(long, default_value = "auto")]
    pub threshold: String,
    /// Labelled faults (CSV `start,end,component`, steps of the test series): also report how
    /// often the faulty component is ranked first and among the first three by its summed
    /// contributions over the fault (columns named `component.metric`).
    #[arg(long)]
    pub faults: Option<PathBuf>,
}

pub fn run(args: EvalArgs, ui: &Ui) -> anyhow::Result<()> {
    let method: ThresholdMethod = args.threshold.parse()?;
    let model = TrainedModel::load(&args.model)?;
    let series = vigil_core::read::read_series(&args.test)?;
    let labels = series.labels.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no `label` column; eval needs labels (use `detect` for unlabelled data)",
            args.test.display()
        )
    })?;
    let interpretation = series.interpretation.clone();
    // Checked against the data before scoring, so that a bad faults file fails fast.
    let faults = match &args.faults {
        Some(path) => {
            let faults = read_faults(path)?;
            let components = super::ranking::components(&model)?;
            check_faults(path, &faults, &components.names, series.len())?;
            Some((faults, components))
        }
        None => None,
    };
    let (scores, _) = model.score(series, &args.test.display().to_string())?;
    let (report, _, _) = threshold_and_evaluate(
        &scores,
        &model.calibration,
        method,
        &labels,
        interpretation.as_deref(),
    )?;
    let located = match &faults {
        Some((faults, components)) => Some(localisation(
            &scores.per_metric,
            &components.of_column,
            &components.names,
            faults,
        )?),
        None => None,
    };
    if ui.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(located) = located {
            value["localisation"] = serde_json::to_value(located)?;
        }
        crate::say!("{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        print_report(&report, &args.threshold)?;
        if let Some(l) = located {
            crate::say!(
                "localisation:             top-1 {:.4}  top-3 {:.4}  over {} faults",
                l.top1,
                l.top3,
                l.faults
            )?;
        }
    }
    Ok(())
}

pub fn print_report(r: &EvalReport, threshold: &str) -> anyhow::Result<()> {
    crate::say!(
        "at the {threshold} threshold:  P {:.4}  R {:.4}  F1 {:.4}  MCC {:.4}  alarm rate {:.4}",
        r.precision,
        r.recall,
        r.f1,
        r.mcc,
        r.alarm_rate
    )?;
    crate::say!(
        "point-adjusted:           P {:.4}  R {:.4}  PA-F1 {:.4}  PA%K area {:.4}",
        r.pa_precision,
        r.pa_recall,
        r.pa_f1,
        r.pa_k_area
    )?;
    crate::say!(
        "affiliation:              P {}  R {}  F1 {}",
        fmt_opt(r.affiliation_precision),
        fmt_opt(r.affiliation_recall),
        fmt_opt(r.affiliation_f1)
    )?;
    crate::say!(
        "threshold-free:           ROC-AUC {}  PR-AUC {}  VUS-ROC {}  VUS-PR {}",
        fmt_opt(r.roc_auc),
        fmt_opt(r.pr_auc),
        fmt_opt(r.vus_roc),
        fmt_opt(r.vus_pr)
    )?;
    crate::say!(
        "oracle (uses labels):     best F1 {}  best PA-F1 {}",
        fmt_opt(r.best_f1),
        fmt_opt(r.best_pa_f1)
    )?;
    if r.hit_rate_100.is_some() {
        crate::say!(
            "interpretation:           HitRate@100% {}  HitRate@150% {}",
            fmt_opt(r.hit_rate_100),
            fmt_opt(r.hit_rate_150)
        )?;
    }
    Ok(())
}
