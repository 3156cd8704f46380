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
use support::{mean_over, periodic, periodic_with_burst, BURST, NORMAL};

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
    let test = periodic_with_burst(400);
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
        let normal = mean_over(&scores.total, NORMAL);
        let burst = mean_over(&scores.total, BURST);
        println!(
            "seed {seed}: normal {normal:.4}  burst {burst:.4}  ratio {:.1}x",
            burst / normal
        );
    }
    Ok(())
}
