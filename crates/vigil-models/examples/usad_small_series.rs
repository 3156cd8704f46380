//! How well vigil's USAD separates a short inverted burst on the small periodic series of
//! `tests/learning.rs` (window 10, latent 8, batch 16, 30 epochs), per seed — the twin of
//! `bench/reference/usad_small_series.py`, which trains the authors' algorithm in PyTorch on the
//! same series, so that the two ratios can be compared over many seeds (docs/models.md, USAD).
//!
//! cargo run --release -p vigil-models --example usad_small_series -- 1 2 3 4
//!
//! Prints, per seed, the mean score of normal points (50..150), of the burst (200..205) and
//! their ratio, in the Python script's format.

use vigil_models::{registry, FitOptions, MtsInput};

#[path = "../tests/support/periodic.rs"]
mod support;
use support::periodic;

fn main() -> anyhow::Result<()> {
    let seeds: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    if seeds.is_empty() {
        anyhow::bail!("usage: usad_small_series SEED [SEED ...]");
    }
    let config = serde_json::json!({"window": 10, "latent": 8, "batch_size": 16, "epochs": 30});
    let train = periodic(2000);
    let mut test = periodic(400);
    for v in &mut test[200 * 3..205 * 3] {
        *v = 1.0 - *v;
    }
    for seed in seeds {
        let mut det = registry::build("usad", Some(&config))?;
        det.fit(
            &MtsInput::new(&train, 3),
            &FitOptions {
                seed,
                ..FitOptions::default()
            },
        )?;
        let scores = det.score(&MtsInput::new(&test, 3))?;
        let normal = scores.total[50..150].iter().sum::<f64>() / 100.0;
        let burst = scores.total[200..205].iter().sum::<f64>() / 5.0;
        println!(
            "seed {seed}: normal {normal:.4}  burst {burst:.4}  ratio {:.1}x",
            burst / normal
        );
    }
    Ok(())
}
