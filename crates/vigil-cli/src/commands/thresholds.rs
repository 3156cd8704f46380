//! `vigil thresholds`: threshold rules compared on scores kept by `vigil bench --keep-scores`,
//! without training again. Each rule sees only an entity's calibration and test scores; the
//! labels only judge the alarms (and give the oracle's best F1, for reference).

use crate::output::Ui;
use anyhow::Context;
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vigil_core::threshold::compare::{judge, judge_alarms, RuleFigures};
use vigil_core::threshold::{SavedScores, ThresholdMethod};

#[derive(Debug, Args)]
pub struct ThresholdsArgs {
    /// Folder written by `vigil bench --keep-scores` (`<detector>/<entity>.json`).
    #[arg(long)]
    pub scores: PathBuf,
    /// A rule to judge, by name (`auto`, `spot`, `dspot`, `pot-batch`, ...) or as JSON with
    /// its parameters (`{"method":"auto","q":1e-4,"level":0.98,"warmup":250}`: POT's `q` and `level`
    /// are needed, auto's other fields left out take their defaults);
    /// repeat for several (default: auto, spot, dspot, pot-batch; none when only `--external`
    /// is given).
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// Folder of alarms raised by other tools on the same scores, judged beside vigil's rules
    /// with the same measures: `<detector>/<entity>.json` holding `{"RULE": [0, 1, ...], ...}`
    /// (written by bench/thresholds/pythresh_alarms.py).
    #[arg(long)]
    pub external: Option<PathBuf>,
}

pub fn run(args: ThresholdsArgs, ui: &Ui) -> anyhow::Result<()> {
    // With only `--external`, only those alarms are judged (vigil's rules can then be judged
    // in another run, in parallel).
    let names = if args.rules.is_empty() && args.external.is_none() {
        ["auto", "spot", "dspot", "pot-batch"]
            .map(String::from)
            .to_vec()
    } else {
        args.rules.clone()
    };
    let rules: Vec<(String, ThresholdMethod)> = names
        .iter()
        .map(|name| parse_rule(name).map(|m| (name.clone(), m)))
        .collect::<anyhow::Result<_>>()?;
    let files = score_files(&args.scores)?;
    if let Some(dir) = args.external.as_ref().filter(|d| !d.is_dir()) {
        anyhow::bail!(
            "--external {} is not a folder; give the folder of `<detector>/<entity>.json` alarm files",
            dir.display()
        );
    }
    let mut rows: Vec<RuleFigures> = Vec::new();
    let mut names = names;
    for file in &files {
        let saved = SavedScores::load(file)?;
        for (name, method) in &rules {
            rows.push(
                judge(&saved, name, *method)
                    .with_context(|| format!("rule {name} on {}", file.display()))?,
            );
        }
        if let Some(external) = &args.external {
            for (name, alarms) in external_alarms(external, &saved)? {
                rows.push(judge_alarms(&saved, &name, &alarms)?);
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    if ui.json {
        crate::say!("{}", serde_json::to_string(&rows)?)?;
    } else {
        crate::say!("{}", summary_markdown(&rows, &names))?;
    }
    Ok(())
}

/// A rule given by name or as a JSON object with its parameters.
fn parse_rule(text: &str) -> anyhow::Result<ThresholdMethod> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).with_context(|| {
            format!("--rule {text} is not a threshold rule's JSON (e.g. {{\"method\":\"spot\",\"q\":1e-4,\"level\":0.98}})")
        })
    } else {
        Ok(text.parse()?)
    }
}

/// The alarms other tools raised on `saved`'s test scores, by rule name (none when the folder
/// has no file for it).
fn external_alarms(dir: &Path, saved: &SavedScores) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let path = dir
        .join(&saved.detector)
        .join(format!("{}.json", saved.entity));
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} should hold {{\"RULE\": [0, 1, ...]}} (alarms per test point)",
            path.display()
        )
    })
}

/// Every `<detector>/<entity>.json` under `dir`, sorted (an entity named `valve1/0`, as SKAB's
/// are, lies one folder deeper).
fn score_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let detectors = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read --scores {}; write it with `vigil bench --keep-scores`",
            dir.display()
        )
    })?;
    for detector in detectors {
        let detector = detector?.path();
        if detector.is_dir() {
            json_files_under(&detector, &mut files)?;
        }
    }
    if files.is_empty() {
        anyhow::bail!(
            "{} holds no `<detector>/<entity>.json` scores; write them with `vigil bench --keep-scores {}`",
            dir.display(),
            dir.display()
        );
    }
    files.sort();
    Ok(files)
}

fn json_files_under(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            json_files_under(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// Means per detector and rule: point-wise, point-adjusted and affiliation F1, the share of the
/// oracle's best F1, and the entities with anomalies but no alarm.
fn summary_markdown(rows: &[RuleFigures], rules: &[String]) -> String {
    let mut detectors: Vec<&str> = rows.iter().map(|r| r.detector.as_str()).collect();
    detectors.dedup();
    let mut out = String::from(
        "| detector | rule | entities | F1 | PA-F1 | affiliation F1 | best F1 (oracle) | F1 / best F1 | anomalous entities with no alarm | entities alarmed on > half their points |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for detector in detectors {
        for rule in rules {
            let of: Vec<&RuleFigures> = rows
                .iter()
                .filter(|r| r.detector == detector && &r.rule == rule)
                .collect();
            let labelled: Vec<&&RuleFigures> = of.iter().filter(|r| r.anomalies > 0).collect();
            let mean = |f: &dyn Fn(&RuleFigures) -> f64| {
                labelled.iter().map(|r| f(r)).sum::<f64>() / labelled.len().max(1) as f64
            };
            let (f1, best) = (mean(&|r| r.f1), mean(&|r| r.best_f1));
            let silent = labelled.iter().filter(|r| r.alarms == 0).count();
            let noisy = of.iter().filter(|r| 2 * r.alarms > r.points).count();
            out.push_str(&format!(
                "| {detector} | {rule} | {} | {f1:.4} | {:.4} | {:.4} | {best:.4} | {:.3} | {silent} | {noisy} |\n",
                labelled.len(),
                mean(&|r| r.pa_f1),
                mean(&|r| r.affiliation_f1.unwrap_or(0.0)),
                if best > 0.0 { f1 / best } else { 0.0 },
            ));
        }
    }
    out
}
