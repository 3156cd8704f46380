//! Markdown tables of entity outcomes: one row per entity and a mean row per detector.

use crate::output::fmt_opt;
use std::fmt::Write as _;
use vigil_models::experiment::EntityOutcome;

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Renders outcomes grouped by detector, with a mean row after each group.
pub fn markdown(outcomes: &[EntityOutcome], threshold: &str) -> String {
    let mut out = String::new();
    // Further thresholds (same on every row) get an F1 and a PA-F1 column each.
    let also: Vec<&str> = outcomes
        .first()
        .map(|o| o.also.iter().map(|a| a.method.as_str()).collect())
        .unwrap_or_default();
    let also_header: String = also
        .iter()
        .map(|m| format!(" F1 ({m}) | PA-F1 ({m}) |"))
        .collect();
    let _ = writeln!(
        out,
        "| detector | entity | F1 ({threshold}) | PA-F1 ({threshold}) |{also_header} PA%K area | affiliation F1 | VUS-PR | VUS-ROC | MCC | ROC-AUC | PR-AUC | best F1 (oracle) | best PA-F1 (oracle) | HitRate@150% | train s | score s | peak RSS MB |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|{}---|---|---|---|---|---|---|---|---|---|---|---|---|",
        "---|---|".repeat(also.len())
    );
    let mut detectors: Vec<&str> = outcomes.iter().map(|o| o.detector.as_str()).collect();
    detectors.dedup();
    for det in detectors {
        let group: Vec<&EntityOutcome> = outcomes.iter().filter(|o| o.detector == det).collect();
        for o in &group {
            let r = &o.report;
            let also_cells: String = o
                .also
                .iter()
                .map(|a| format!(" {:.4} | {:.4} |", a.f1, a.pa_f1))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {:.4} | {:.4} |{also_cells} {:.4} | {} | {} | {} | {:.4} | {} | {} | {} | {} | {} | {:.1} | {:.2} | {} |",
                o.detector,
                o.entity,
                r.f1,
                r.pa_f1,
                r.pa_k_area,
                fmt_opt(r.affiliation_f1),
                fmt_opt(r.vus_pr),
                fmt_opt(r.vus_roc),
                r.mcc,
                fmt_opt(r.roc_auc),
                fmt_opt(r.pr_auc),
                fmt_opt(r.best_f1),
                fmt_opt(r.best_pa_f1),
                fmt_opt(r.hit_rate_150),
                o.train_seconds,
                o.score_seconds,
                o.peak_rss_bytes.map(|b| format!("{:.0}", b as f64 / 1e6)).unwrap_or_else(|| "—".into())
            );
        }
        let m = |f: fn(&EntityOutcome) -> Option<f64>| fmt_opt(mean(group.iter().map(|o| f(o))));
        let also_means: String = (0..also.len())
            .map(|k| {
                let f1 = mean(group.iter().map(|o| o.also.get(k).map(|a| a.f1)));
                let pa = mean(group.iter().map(|o| o.also.get(k).map(|a| a.pa_f1)));
                format!(" {} | {} |", fmt_opt(f1), fmt_opt(pa))
            })
            .collect();
        let _ = writeln!(
            out,
            "| **{det}** | **mean of {}** | {} | {} |{also_means} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | |",
            group.len(),
            m(|o| Some(o.report.f1)),
            m(|o| Some(o.report.pa_f1)),
            m(|o| Some(o.report.pa_k_area)),
            m(|o| o.report.affiliation_f1),
            m(|o| o.report.vus_pr),
            m(|o| o.report.vus_roc),
            m(|o| Some(o.report.mcc)),
            m(|o| o.report.roc_auc),
            m(|o| o.report.pr_auc),
            m(|o| o.report.best_f1),
            m(|o| o.report.best_pa_f1),
            m(|o| o.report.hit_rate_150),
            m(|o| Some(o.train_seconds)),
            m(|o| Some(o.score_seconds)),
        );
    }
    out
}

/// The memory view of `vigil bench --memory` (the GON paper's Tables 2-3): F1, peak memory
/// and F1 per GB for every row, each row measured in its own process. The mean row divides
/// the mean F1 by the mean peak memory.
pub fn memory_markdown(outcomes: &[EntityOutcome], threshold: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| detector | entity | PA-F1 ({threshold}) | best PA-F1 (oracle) | peak memory GB | PA-F1 / GB | train s | test s |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let gb = |o: &EntityOutcome| o.peak_rss_bytes.map(|b| b as f64 / 1e9);
    let mut detectors: Vec<&str> = outcomes.iter().map(|o| o.detector.as_str()).collect();
    detectors.dedup();
    for det in detectors {
        let group: Vec<&EntityOutcome> = outcomes.iter().filter(|o| o.detector == det).collect();
        for o in &group {
            let per_gb = gb(o).map(|g| o.report.pa_f1 / g);
            let _ = writeln!(
                out,
                "| {det} | {} | {:.4} | {} | {} | {} | {:.1} | {:.2} |",
                o.entity,
                o.report.pa_f1,
                fmt_opt(o.report.best_pa_f1),
                gb(o).map_or_else(|| "—".into(), |g| format!("{g:.3}")),
                per_gb.map_or_else(|| "—".into(), |v| format!("{v:.2}")),
                o.train_seconds,
                o.score_seconds
            );
        }
        let f1 = mean(group.iter().map(|o| Some(o.report.pa_f1)));
        let memory = mean(group.iter().map(|o| gb(o)));
        let per_gb = f1.zip(memory).map(|(f, g)| f / g);
        let _ = writeln!(
            out,
            "| **{det}** | **mean of {}** | {} | {} | {} | {} | {} | {} |",
            group.len(),
            fmt_opt(f1),
            fmt_opt(mean(group.iter().map(|o| o.report.best_pa_f1))),
            memory.map_or_else(|| "—".into(), |g| format!("{g:.3}")),
            per_gb.map_or_else(|| "—".into(), |v| format!("{v:.2}")),
            fmt_opt(mean(group.iter().map(|o| Some(o.train_seconds)))),
            fmt_opt(mean(group.iter().map(|o| Some(o.score_seconds)))),
        );
    }
    out
}

/// Mean point-adjusted F1 at the label-free threshold.
pub fn mean_pa_f1(outcomes: &[EntityOutcome]) -> f64 {
    mean(outcomes.iter().map(|o| Some(o.report.pa_f1))).unwrap_or(0.0)
}
