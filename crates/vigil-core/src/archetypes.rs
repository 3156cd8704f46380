//! Archetype fleets, for OmniTransfer's clustering and transfer (`vigil fleet`, issue 4): `N`
//! entities drawn from `K` archetypes. An archetype is a daily shape per metric (three harmonics
//! of the day with their own amplitudes and phases, and a bump at some hour); an entity of
//! that archetype scales and offsets each metric at random, adds a trend and noise, is shifted
//! in phase by a whole number of steps (the same for all its metrics — a server in another time
//! zone), and has anomalies injected into its test series. The archetype of every entity and
//! its shift are returned, so that clustering and phase alignment can be checked against them.

use crate::series::{Dataset, Entity, Interpretation, Series};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// How to generate an archetype fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchetypeFleetConfig {
    /// Number of entities.
    pub entities: usize,
    /// Number of archetypes they are drawn from (round robin, so every archetype is used).
    pub archetypes: usize,
    /// Metrics per entity.
    pub metrics: usize,
    /// Steps per day (288: five-minute sampling).
    pub period: usize,
    /// Days of training data (anomaly-free).
    pub train_days: usize,
    /// Days of test data (with anomalies).
    pub test_days: usize,
    /// Noise standard deviation relative to a metric's daily amplitude.
    pub noise: f64,
    /// Largest trend, in daily amplitudes per day.
    pub trend: f64,
    /// Shift entities by up to a whole day (false: no shifts).
    pub phase_shifts: bool,
    /// Anomalous segments injected into each test series.
    pub anomalies: usize,
    /// Seed for every random choice.
    pub seed: u64,
}

impl Default for ArchetypeFleetConfig {
    fn default() -> Self {
        ArchetypeFleetConfig {
            entities: 100,
            archetypes: 10,
            metrics: 8,
            period: 288,
            train_days: 3,
            test_days: 2,
            noise: 0.1,
            trend: 0.05,
            phase_shifts: true,
            anomalies: 4,
            seed: 7,
        }
    }
}

impl ArchetypeFleetConfig {
    /// Checks every field; the message names the field (as its `vigil fleet generate` flag)
    /// and the allowed range.
    pub fn validate(&self) -> crate::Result<()> {
        let at_least = |name: &str, value: usize, least: usize| {
            if value < least {
                Err(crate::CoreError::invalid(format!(
                    "{name} must be at least {least}, got {value}"
                )))
            } else {
                Ok(())
            }
        };
        at_least("--entities", self.entities, 1)?;
        at_least("--archetypes", self.archetypes, 1)?;
        at_least("--metrics", self.metrics, 1)?;
        at_least("--period", self.period, 2)?;
        at_least("train_days", self.train_days, 1)?;
        at_least("test_days", self.test_days, 1)?;
        crate::validate::non_negative("--noise", self.noise)?;
        crate::validate::non_negative("trend", self.trend)?;
        Ok(())
    }
}

/// A generated fleet and the truth behind it.
#[derive(Debug, Clone)]
pub struct ArchetypeFleet {
    /// Entities `entity-0000`, `entity-0001`, ...
    pub dataset: Dataset,
    /// The archetype of every entity.
    pub archetype: Vec<usize>,
    /// The phase shift of every entity, in steps: its series is its archetype's delayed by this.
    pub shift: Vec<usize>,
}

/// One archetype: for each metric, harmonic amplitudes and phases and a bump.
#[derive(Debug, Clone)]
struct Archetype {
    harmonics: Vec<[(f64, f64); 3]>,
    bump: Vec<(f64, f64, f64)>,
}

impl Archetype {
    fn draw(metrics: usize, rng: &mut ChaCha8Rng) -> Archetype {
        Archetype {
            harmonics: (0..metrics)
                .map(|_| {
                    [1.0, 0.5, 0.25]
                        .map(|scale| (scale * rng.gen_range(0.3..1.0), rng.gen_range(0.0..TAU)))
                })
                .collect(),
            // (height, centre as a fraction of the day, width as a fraction of the day)
            bump: (0..metrics)
                .map(|_| {
                    (
                        rng.gen_range(-1.0..1.0),
                        rng.gen_range(0.0..1.0),
                        rng.gen_range(0.03..0.12),
                    )
                })
                .collect(),
        }
    }

    /// The shape of metric `j` at fraction `x` of the day (periodic in `x`).
    fn value(&self, j: usize, x: f64) -> f64 {
        let harmonic: f64 = self.harmonics[j]
            .iter()
            .enumerate()
            .map(|(h, &(a, phase))| a * ((h + 1) as f64 * TAU * x + phase).sin())
            .sum();
        let (height, centre, width) = self.bump[j];
        // Circular distance to the bump's centre.
        let d = (x - centre).rem_euclid(1.0);
        let d = d.min(1.0 - d);
        harmonic + height * (-(d * d) / (2.0 * width * width)).exp()
    }
}

/// Generates the fleet; the same config always gives the same fleet.
pub fn generate_archetype_fleet(cfg: &ArchetypeFleetConfig) -> ArchetypeFleet {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let k = cfg.archetypes.max(1);
    let m = cfg.metrics.max(1);
    let period = cfg.period.max(2);
    let shapes: Vec<Archetype> = (0..k).map(|_| Archetype::draw(m, &mut rng)).collect();
    let names: Vec<String> = (0..m).map(|j| format!("metric_{j}")).collect();
    let (mut entities, mut archetype, mut shift) = (Vec::new(), Vec::new(), Vec::new());
    for e in 0..cfg.entities {
        let a = e % k;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (0x9E37_79B9 * (e as u64 + 1)));
        let delay = if cfg.phase_shifts {
            rng.gen_range(0..period)
        } else {
            0
        };
        let (train, test) = entity_series(cfg, &shapes[a], delay, &names, &mut rng);
        entities.push(Entity {
            name: format!("entity-{e:04}"),
            train,
            test,
        });
        archetype.push(a);
        shift.push(delay);
    }
    ArchetypeFleet {
        dataset: Dataset {
            name: "archetype-fleet".into(),
            entities,
        },
        archetype,
        shift,
    }
}

/// The noise-free, unscaled shape of `archetype` over `steps` steps delayed by `delay`,
/// metric-major (`metrics x steps`): what phase alignment is checked on.
pub fn archetype_shape(
    cfg: &ArchetypeFleetConfig,
    archetype: usize,
    delay: usize,
    steps: usize,
) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let m = cfg.metrics.max(1);
    let shapes: Vec<Archetype> = (0..=archetype)
        .map(|_| Archetype::draw(m, &mut rng))
        .collect();
    let shape = &shapes[archetype];
    let period = cfg.period.max(2) as f64;
    (0..m)
        .flat_map(|j| {
            (0..steps).map(move |t| shape.value(j, (t as f64 - delay as f64) / period) as f32)
        })
        .collect()
}

fn entity_series(
    cfg: &ArchetypeFleetConfig,
    shape: &Archetype,
    delay: usize,
    names: &[String],
    rng: &mut ChaCha8Rng,
) -> (Series, Series) {
    let m = names.len();
    let period = cfg.period.max(2);
    let (train_len, test_len) = (cfg.train_days * period, cfg.test_days * period);
    let total = train_len + test_len;
    let scale: Vec<f64> = (0..m).map(|_| rng.gen_range(2.0..20.0)).collect();
    let offset: Vec<f64> = (0..m).map(|_| rng.gen_range(10.0..100.0)).collect();
    let trend: Vec<f64> = (0..m)
        .map(|_| rng.gen_range(-cfg.trend..=cfg.trend))
        .collect();
    let noise = Normal::new(0.0, cfg.noise.max(0.0)).expect("a finite standard deviation");
    let mut values = vec![0f64; total * m];
    for t in 0..total {
        let x = (t as f64 - delay as f64) / period as f64;
        let days = t as f64 / period as f64;
        for j in 0..m {
            values[t * m + j] =
                offset[j] + scale[j] * (shape.value(j, x) + trend[j] * days + noise.sample(rng));
        }
    }
    let (labels, interpretation) = inject(cfg, &scale, train_len, test_len, &mut values, m, rng);
    // Five-minute steps.
    let to_series = |range| crate::synth::series_of_rows(names, &values, range, 300);
    let train = to_series(0..train_len);
    let mut test = to_series(train_len..total);
    test.labels = Some(labels);
    test.interpretation = Some(interpretation);
    (train, test)
}

/// Spikes and level shifts on a few metrics, spread over the test series.
fn inject(
    cfg: &ArchetypeFleetConfig,
    scale: &[f64],
    train_len: usize,
    test_len: usize,
    values: &mut [f64],
    m: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<u8>, Vec<Interpretation>) {
    let mut labels = vec![0u8; test_len];
    let mut interpretation = Vec::new();
    if cfg.anomalies == 0 || test_len < 8 * cfg.anomalies {
        return (labels, interpretation);
    }
    let slot = test_len / cfg.anomalies;
    for a in 0..cfg.anomalies {
        let spike = a % 2 == 0;
        let len = if spike {
            rng.gen_range(1..=3)
        } else {
            rng.gen_range(10..=30)
        }
        .min(slot / 2)
        .max(1);
        let start = a * slot + rng.gen_range(slot / 4..slot - len);
        let count = rng.gen_range(1..=(m / 2).max(1));
        let mut affected: Vec<usize> = rand::seq::index::sample(rng, m, count).into_vec();
        affected.sort_unstable();
        let sign = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        for t in start..start + len {
            for &j in &affected {
                let size = if spike { rng.gen_range(2.0..4.0) } else { 1.5 };
                values[(train_len + t) * m + j] += sign * size * scale[j];
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
    fn the_fleet_is_deterministic_and_follows_its_truth() {
        let cfg = ArchetypeFleetConfig {
            entities: 12,
            archetypes: 3,
            noise: 0.0,
            trend: 0.0,
            anomalies: 2,
            ..ArchetypeFleetConfig::default()
        };
        let a = generate_archetype_fleet(&cfg);
        let b = generate_archetype_fleet(&cfg);
        assert_eq!(
            a.dataset.entities[5].train.values,
            b.dataset.entities[5].train.values
        );
        assert_eq!(a.archetype, (0..12).map(|e| e % 3).collect::<Vec<_>>());
        // Without noise or trend, an entity's training series is its archetype's shape, delayed,
        // scaled and offset per metric: perfectly correlated with it.
        let e = 4;
        let entity = &a.dataset.entities[e].train;
        let steps = entity.len();
        let shape = archetype_shape(&cfg, a.archetype[e], a.shift[e], steps);
        for j in 0..cfg.metrics {
            let x: Vec<f64> = (0..steps)
                .map(|t| entity.values[t * cfg.metrics + j])
                .collect();
            let y: Vec<f64> = shape[j * steps..(j + 1) * steps]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (mx, my) = (mean(&x), mean(&y));
            let cov: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
            let sx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum::<f64>().sqrt();
            let sy: f64 = y.iter().map(|b| (b - my).powi(2)).sum::<f64>().sqrt();
            assert!(
                cov / (sx * sy) > 0.9999,
                "metric {j}: correlation {}",
                cov / (sx * sy)
            );
        }
        let labels = a.dataset.entities[0].test.labels.as_ref().unwrap();
        assert_eq!(crate::metrics::adjust::segments(labels).len(), 2);
    }
}
