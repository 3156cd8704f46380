//! How long a trained model takes to score a series and threshold the scores, in process: the
//! reference `bench/python.sh` holds the Python package's path against (the same model, the same
//! array, the same work: `TrainedModel::score` on the series, then the model's threshold rule).
//!
//! cargo run --release -p vigil-models --example score_timing -- MODEL_DIR SERIES.npy REPEATS
//!
//! Prints one JSON line: the seconds of each repeat (the series is read once, before timing;
//! each repeat scores a copy of it, as the Python path copies its array once).

use std::time::Instant;
use vigil_core::threshold::{decide, ThresholdMethod};
use vigil_models::TrainedModel;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, series, repeats] = &args[..] else {
        anyhow::bail!("usage: score_timing MODEL_DIR SERIES.npy REPEATS");
    };
    let model = TrainedModel::load(model.as_ref())?;
    let series = vigil_core::read::read_series(series.as_ref())?;
    let method = model
        .manifest
        .threshold
        .unwrap_or(ThresholdMethod::Auto(Default::default()));
    let mut seconds = Vec::new();
    let mut alarms = 0;
    for _ in 0..repeats.parse::<usize>()? {
        let started = Instant::now();
        let (scores, _) = model.score(series.clone(), "series")?;
        let decision = decide(method, &model.calibration, &scores.total, None)?;
        seconds.push(started.elapsed().as_secs_f64());
        alarms = decision.alarms.iter().filter(|&&a| a != 0).count();
    }
    println!(
        "{}",
        serde_json::json!({"seconds": seconds, "steps": series.len(), "alarms": alarms})
    );
    Ok(())
}
