//! Markdown tables of `vigil bench --fleet`: one split's strategies with their times against one
//! model per entity, and the mean over several random splits.

use serde::Serialize;
use std::fmt::Write as _;
use vigil_fleet::evaluation::{Strategy, StrategyResult};

/// One random split's run of every strategy.
#[derive(Debug, Serialize)]
pub struct SplitRun {
    /// The seed that drew it (`None`: the online entities were named).
    pub seed: Option<u64>,
    pub offline: Vec<String>,
    pub online: Vec<String>,
    pub results: Vec<StrategyResult>,
}

/// The columns both tables share, with `last` (its own last column) and the separator line.
fn header(out: &mut String, threshold: &str, last: &str, last_align: &str) {
    let _ = writeln!(
        out,
        "| strategy | base models | F1* | mean F1* | PA-F1 ({threshold}) | offline s | online s | total s | online / per-entity | total / per-entity | {last} |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{last_align}|"
    );
}

/// A percentage of one model per entity's online seconds (`-` without that reference).
fn share(x: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if r > 0.0 => format!("{:.1}%", 100.0 * x / r),
        _ => "-".into(),
    }
}

/// One split: a row per strategy, what OmniTransfer's offline work is repaid after, and F1*
/// per online entity when there are few of them.
pub fn split_markdown(run: &SplitRun, threshold: &str) -> String {
    let results = &run.results;
    let mut out = String::new();
    let reference = results
        .iter()
        .find(|r| r.strategy == Strategy::OneModelPerEntity)
        .map(|r| r.online_seconds);
    header(&mut out, threshold, "full / partial", "---");
    for r in results {
        let total = r.offline_seconds + r.online_seconds;
        let transfers = if r.strategy == Strategy::OneModelPerEntity {
            "-".to_string()
        } else {
            format!("{} / {}", r.full, r.partial)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.1} | {:.1} | {:.1} | {} | {} | {transfers} |",
            r.strategy.label(),
            r.base_models,
            r.f1_star,
            r.mean_f1_star,
            r.pa_f1,
            r.offline_seconds,
            r.online_seconds,
            total,
            share(r.online_seconds, reference),
            share(total, reference),
        );
    }
    if let (Some(p), Some(o)) = (
        reference,
        results
            .iter()
            .find(|r| r.strategy == Strategy::OmniTransfer),
    ) {
        let saved_per_entity = (p - o.online_seconds) / run.online.len().max(1) as f64;
        if saved_per_entity > 0.0 {
            let _ = writeln!(
                out,
                "\nOmniTransfer saves {saved_per_entity:.2}s of training per online entity; its offline cost ({:.1}s) is repaid after {:.0} online entities.",
                o.offline_seconds,
                (o.offline_seconds / saved_per_entity).ceil()
            );
        }
    }
    if run.online.len() <= 16 && !results.is_empty() {
        let _ = writeln!(out, "\nF1* per online entity:\n");
        let _ = write!(out, "| entity |");
        for r in results {
            let _ = write!(out, " {} |", r.strategy.label());
        }
        let _ = write!(out, "\n|---|");
        for _ in results {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        for (i, e) in results[0].entities.iter().enumerate() {
            let _ = write!(out, "| {} |", e.entity);
            for r in results {
                let cell = &r.entities[i];
                let how = match (cell.cluster, cell.transfer) {
                    (Some(c), Some(t)) => format!(" (c{c}, {})", format!("{t:?}").to_lowercase()),
                    _ => String::new(),
                };
                let _ = write!(out, " {:.4}{how} |", cell.f1_star);
            }
            out.push('\n');
        }
    }
    out
}

/// The mean over splits of every strategy that ran in all of them, and in how many splits its
/// F1* was at least one model per entity's.
pub fn mean_markdown(runs: &[SplitRun], threshold: &str) -> String {
    let mut out = String::new();
    let Some(first) = runs.first() else {
        return out;
    };
    let n = runs.len() as f64;
    let of = |run: &SplitRun, s: Strategy| run.results.iter().find(|r| r.strategy == s).cloned();
    let mean = |s: Strategy, f: &dyn Fn(&StrategyResult) -> f64| {
        runs.iter()
            .filter_map(|run| of(run, s))
            .map(|r| f(&r))
            .sum::<f64>()
            / n
    };
    let has_reference = runs
        .iter()
        .all(|run| of(run, Strategy::OneModelPerEntity).is_some());
    let reference = has_reference.then(|| mean(Strategy::OneModelPerEntity, &|r| r.online_seconds));
    header(&mut out, threshold, "F1* ≥ per-entity", "---:");
    for r in &first.results {
        let s = r.strategy;
        let online = mean(s, &|r| r.online_seconds);
        let offline = mean(s, &|r| r.offline_seconds);
        let at_least = if has_reference && s != Strategy::OneModelPerEntity {
            let wins = runs
                .iter()
                .filter(
                    |run| match (of(run, s), of(run, Strategy::OneModelPerEntity)) {
                        (Some(a), Some(b)) => a.f1_star >= b.f1_star,
                        _ => false,
                    },
                )
                .count();
            format!("{wins} of {}", runs.len())
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.4} | {:.4} | {:.4} | {offline:.1} | {online:.1} | {:.1} | {} | {} | {at_least} |",
            s.label(),
            mean(s, &|r| r.base_models as f64),
            mean(s, &|r| r.f1_star),
            mean(s, &|r| r.mean_f1_star),
            mean(s, &|r| r.pa_f1),
            offline + online,
            share(online, reference),
            share(offline + online, reference),
        );
    }
    out
}
