//! Synthetic fleets: realistic small multivariate series with labelled, explained anomalies,
//! for the demo, the tests and benchmarks that need no external data.
//!
//! Each entity has `metrics` metrics driven by three shared latent factors (a daily cycle, its
//! second harmonic and a slow AR(1) load), so metrics are correlated as real server metrics are;
//! each metric adds its own offset, trend and noise. Test series carry injected anomalies of four
//! kinds, labelled per point and with the metrics they touched (interpretation labels).

use crate::series::{Dataset, Entity, Interpretation, Series};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// How to generate a fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SynthConfig {
    /// Number of entities.
    pub entities: usize,
    /// Metrics per entity.
    pub metrics: usize,
    /// Training time steps per entity (anomaly-free).
    pub train_len: usize,
    /// Test time steps per entity.
    pub test_len: usize,
    /// Steps per day (1440 = one-minute sampling).
    pub period: usize,
    /// Anomalous segments injected into each test series.
    pub anomalies: usize,
    /// Noise standard deviation relative to the daily amplitude.
    pub noise: f64,
    /// Seed for every random choice.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            entities: 3,
            metrics: 8,
            train_len: 4320,
            test_len: 2880,
            period: 1440,
            anomalies: 8,
            noise: 0.05,
            seed: 42,
        }
    }
}

/// The kinds of anomaly the generator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// A few points far off on a few metrics.
    Spike,
    /// A sustained step on a subset of metrics.
    LevelShift,
    /// One metric decouples from the factors it normally follows (values stay in range).
    CorrelationBreak,
    /// A slow ramp away from normal on a subset of metrics.
    Drift,
}

const KINDS: [AnomalyKind; 4] = [
    AnomalyKind::Spike,
    AnomalyKind::LevelShift,
    AnomalyKind::CorrelationBreak,
    AnomalyKind::Drift,
];

struct EntityModel {
    loadings: Vec<[f64; 3]>,
    offset: Vec<f64>,
    amplitude: Vec<f64>,
    trend: Vec<f64>,
    phase: f64,
}

/// Generates a fleet named `synthetic` with entities `entity-0`, `entity-1`, ...
pub fn generate_fleet(cfg: &SynthConfig) -> Dataset {
    let entities = (0..cfg.entities)
        .map(|e| {
            generate_entity(
                cfg,
                format!("entity-{e}"),
                cfg.seed.wrapping_mul(1_000_003).wrapping_add(e as u64),
            )
        })
        .collect();
    Dataset {
        name: "synthetic".into(),
        entities,
    }
}

fn generate_entity(cfg: &SynthConfig, name: String, seed: u64) -> Entity {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = cfg.metrics.max(1);
    let model = EntityModel {
        loadings: (0..m)
            .map(|_| {
                [
                    rng.gen_range(0.5..1.0),
                    rng.gen_range(-0.4..0.4),
                    rng.gen_range(0.1..0.5),
                ]
            })
            .collect(),
        offset: (0..m).map(|_| rng.gen_range(10.0..100.0)).collect(),
        amplitude: (0..m).map(|_| rng.gen_range(2.0..20.0)).collect(),
        trend: (0..m).map(|_| rng.gen_range(-0.02..0.02)).collect(),
        phase: rng.gen_range(0.0..TAU),
    };
    let total = cfg.train_len + cfg.test_len;
    let factors = latent_factors(total, cfg.period.max(2), model.phase, &mut rng);
    let noise = Normal::new(0.0, cfg.noise).expect("noise is a finite standard deviation");
    let mut values = vec![0f64; total * m];
    for t in 0..total {
        let days = t as f64 / cfg.period.max(1) as f64;
        for j in 0..m {
            let l = model.loadings[j];
            let signal = l[0] * factors[t][0] + l[1] * factors[t][1] + l[2] * factors[t][2];
            values[t * m + j] = model.offset[j]
                + model.amplitude[j] * (signal + model.trend[j] * days + noise.sample(&mut rng));
        }
    }
    let (labels, interpretation) = inject_anomalies(cfg, &model, &factors, &mut values, &mut rng);
    let names: Vec<String> = (0..m).map(|j| format!("metric_{j}")).collect();
    let to_series = |range| series_of_rows(&names, &values, range, 60);
    let train = to_series(0..cfg.train_len);
    let mut test = to_series(cfg.train_len..total);
    test.labels = Some(labels);
    test.interpretation = Some(interpretation);
    Entity { name, train, test }
}

/// Rows `range` of generated `values` (`steps x names.len()`, row-major) as a series with
/// timestamps every `step_seconds` from a fixed origin.
pub(crate) fn series_of_rows(
    names: &[String],
    values: &[f64],
    range: std::ops::Range<usize>,
    step_seconds: i64,
) -> Series {
    let m = names.len();
    // Rounded through f32 as the generator always has, so that a generated fleet (and every
    // result measured on one) stays the same from version to version.
    let v: Vec<f64> = values[range.start * m..range.end * m]
        .iter()
        .map(|&x| f64::from(x as f32))
        .collect();
    let mut s = Series::new(names.to_vec(), v).expect("rows x metrics by construction");
    s.timestamps = Some(
        range
            .map(|t| 1_700_000_000 + step_seconds * t as i64)
            .collect(),
    );
    s
}

/// Daily cycle, second harmonic with its own phase, and a slow mean-reverting load.
fn latent_factors(n: usize, period: usize, phase: f64, rng: &mut ChaCha8Rng) -> Vec<[f64; 3]> {
    let step = Normal::new(0.0, 0.01).expect("constant standard deviation");
    let mut ar = 0.0;
    let harmonic_phase = rng.gen_range(0.0..TAU);
    (0..n)
        .map(|t| {
            let x = TAU * t as f64 / period as f64;
            ar = 0.995 * ar + step.sample(rng);
            [(x + phase).sin(), (2.0 * x + harmonic_phase).sin(), ar]
        })
        .collect()
}

fn inject_anomalies(
    cfg: &SynthConfig,
    model: &EntityModel,
    factors: &[[f64; 3]],
    values: &mut [f64],
    rng: &mut ChaCha8Rng,
) -> (Vec<u8>, Vec<Interpretation>) {
    let m = cfg.metrics.max(1);
    let mut labels = vec![0u8; cfg.test_len];
    let mut interpretation = Vec::new();
    if cfg.anomalies == 0 || cfg.test_len < 200 {
        return (labels, interpretation);
    }
    // Spread the anomalies over the test series, one per slot, leaving normal data between them.
    let slot = cfg.test_len / cfg.anomalies;
    for a in 0..cfg.anomalies {
        let kind = KINDS[a % KINDS.len()];
        let len = match kind {
            AnomalyKind::Spike => rng.gen_range(1..=3),
            AnomalyKind::LevelShift => rng.gen_range(20..=60),
            AnomalyKind::CorrelationBreak => rng.gen_range(30..=80),
            AnomalyKind::Drift => rng.gen_range(60..=120),
        }
        .min(slot / 2)
        .max(1);
        let start = a * slot + rng.gen_range(slot / 4..slot - len);
        let n_affected = rng.gen_range(1..=(m / 2).max(1));
        let mut affected: Vec<usize> = rand::seq::index::sample(rng, m, n_affected).into_vec();
        affected.sort_unstable();
        let sign = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        for (k, t) in (start..start + len).enumerate() {
            let global = cfg.train_len + t;
            for &j in &affected {
                let amp = model.amplitude[j];
                let cell = &mut values[global * m + j];
                match kind {
                    AnomalyKind::Spike => *cell += sign * amp * rng.gen_range(1.5..3.0),
                    AnomalyKind::LevelShift => *cell += sign * amp * 0.8,
                    AnomalyKind::Drift => *cell += sign * amp * 1.2 * (k + 1) as f64 / len as f64,
                    AnomalyKind::CorrelationBreak => {
                        // Follow the daily cycle in anti-phase: plausible values, broken correlation.
                        let l = model.loadings[j];
                        let f = factors[global];
                        *cell -= 2.0 * amp * l[0] * f[0];
                    }
                }
            }
            labels[t] = 1;
        }
        interpretation.push(Interpretation {
            start,
            end: start + len - 1,
            metrics: affected,
        });
    }
    (labels, interpretation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_is_deterministic_and_labelled() {
        let cfg = SynthConfig {
            entities: 2,
            ..SynthConfig::default()
        };
        let a = generate_fleet(&cfg);
        let b = generate_fleet(&cfg);
        assert_eq!(a.entities[1].test.values, b.entities[1].test.values);
        assert_ne!(a.entities[0].train.values, a.entities[1].train.values);
        let test = &a.entities[0].test;
        let labels = test.labels.as_ref().unwrap();
        let n_segments = crate::metrics::adjust::segments(labels).len();
        assert_eq!(n_segments, cfg.anomalies);
        assert_eq!(test.interpretation.as_ref().unwrap().len(), cfg.anomalies);
        assert!(test.values.iter().all(|v| v.is_finite()));
    }
}
