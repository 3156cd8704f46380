//! Scoring claimed steps with the model in service: the model's score of each step (after the
//! stream's context), the threshold rule continued from the stream's state, and the rows kept.

use super::model::{RuleStart, ServingModel};
use super::stream::{Claim, StreamMemory};
use crate::store::ScoreRow;
use vigil_core::threshold::{anomaly_scores, decide_stream};
use vigil_core::Series;

/// One stream's claim, scored.
pub struct Scored {
    pub rows: Vec<ScoreRow>,
    pub memory: StreamMemory,
}

/// Scores `claim`'s steps of `entity` as the next part of its stream.
pub fn score_claim(model: &ServingModel, entity: &str, claim: Claim) -> Result<Scored, String> {
    let names = model.metrics().to_vec();
    let m = names.len();
    let Claim {
        steps, mut memory, ..
    } = claim;
    let values: Vec<f64> = steps
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .collect();
    let series = Series::new(names, values).map_err(|e| e.to_string())?;
    let what = format!("stream of entity `{entity}`");
    let (scores, _report, context) = model
        .model
        .score_continuing(series, &memory.context, &what)
        .map_err(|e| e.to_string())?;
    let (thresholds, alarms): (Vec<f64>, Vec<bool>) = match &model.start {
        RuleStart::Constant(threshold) => (
            vec![*threshold; scores.total.len()],
            scores.total.iter().map(|s| s >= threshold).collect(),
        ),
        RuleStart::State(start) => {
            if memory.rule.is_none() {
                memory.rule = Some(start.as_ref().clone());
            }
            let decision = decide_stream(
                model.threshold,
                &model.model.calibration,
                &scores.total,
                &mut memory.rule,
            )
            .map_err(|e| e.to_string())?;
            let alarms = decision.alarms.iter().map(|a| *a == 1).collect();
            (decision.thresholds, alarms)
        }
    };
    memory.context = context;
    let anomaly = anomaly_scores(&scores.total, &thresholds);
    let id = model.id();
    let rows = steps
        .iter()
        .enumerate()
        .map(|(i, step)| ScoreRow {
            entity: entity.to_string(),
            ts: step.ts,
            model: id.clone(),
            score: scores.total[i],
            threshold: thresholds[i],
            anomaly_score: anomaly[i],
            alarm: alarms[i],
            filled: step.filled,
            contributions: scores.per_metric[i * m..(i + 1) * m].to_vec(),
        })
        .collect();
    Ok(Scored { rows, memory })
}
