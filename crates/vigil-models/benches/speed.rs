//! Times one detector on one data file, the way `bench/reference/*.py` time PyTorch:
//! seconds per training epoch (mean after the first, warm-up epoch), scoring points per second
//! over every point of the same series (median of 5 passes), and the process's peak RSS. Prints one JSON line.
//!
//!     cargo bench -p vigil-models --bench speed -- --detector usad --data smd_like.npy --epochs 3
//!
//! `bench/speed.sh` runs it beside the PyTorch scripts and writes `bench/results/speed.md`.

use std::sync::{Arc, Mutex};
use std::time::Instant;
use vigil_models::{memory::peak_rss_bytes, registry, FitOptions, MtsInput};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    vigil_models::allocator::keep_freed_buffers();
    let args: Vec<String> = std::env::args().collect();
    let detector = arg(&args, "--detector").ok_or("--detector NAME is required")?;
    let data = arg(&args, "--data").ok_or("--data FILE.npy is required")?;
    let epochs: usize = arg(&args, "--epochs").map_or(Ok(3), |e| e.parse())?;
    let config: Option<serde_json::Value> = arg(&args, "--config")
        .map(|c| serde_json::from_str(&c))
        .transpose()?;

    let series = vigil_core::read::read_series(std::path::Path::new(&data))?;
    let m = series.metric_names.len();
    // The file is already normalised (bench/reference/smd_like.py): the detector reads it as is.
    let values: Vec<f32> = series.values.iter().map(|&v| v as f32).collect();
    let input = MtsInput::new(&values, m);
    let mut det = registry::build(&detector, config.as_ref())?;

    let ends = Arc::new(Mutex::new(Vec::new()));
    let sink = ends.clone();
    let options = FitOptions {
        epochs: Some(epochs),
        on_epoch: Some(Arc::new(move |_, _, _| {
            sink.lock().unwrap().push(Instant::now())
        })),
        ..FitOptions::default()
    };
    let start = Instant::now();
    det.fit(&input, &options)?;
    let mut marks = vec![start];
    marks.extend(ends.lock().unwrap().iter().copied());
    let epoch_seconds: Vec<f64> = marks
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let timed = if epoch_seconds.len() > 1 {
        &epoch_seconds[1..]
    } else {
        &epoch_seconds[..]
    };

    // Median of SCORE_REPEATS passes: one pass is tens of milliseconds, too short to time once on
    // a shared machine (bench/reference/common.py does the same).
    const SCORE_REPEATS: usize = 5;
    let mut pass_seconds = Vec::with_capacity(SCORE_REPEATS);
    let mut scored = 0;
    for _ in 0..SCORE_REPEATS {
        let start = Instant::now();
        scored = det.score(&input)?.total.len();
        pass_seconds.push(start.elapsed().as_secs_f64());
    }
    pass_seconds.sort_by(f64::total_cmp);
    let score_seconds = pass_seconds[SCORE_REPEATS / 2];

    let report = serde_json::json!({
        "implementation": format!("vigil {}", env!("CARGO_PKG_VERSION")),
        "model": detector,
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "epoch_seconds": timed.iter().sum::<f64>() / timed.len() as f64,
        "score_points_per_second": scored as f64 / score_seconds,
        "peak_rss_mb": peak_rss_bytes().map_or(f64::NAN, |b| b as f64 / 1048576.0),
    });
    println!("{report}");
    Ok(())
}
