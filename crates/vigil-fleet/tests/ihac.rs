//! I-HAC on generated fleets: issue 4's acceptance for clustering and phase alignment.

use rayon::prelude::*;
use vigil_core::archetypes::{archetype_shape, generate_archetype_fleet, ArchetypeFleetConfig};
use vigil_fleet::align::{roll, Aligner};
use vigil_fleet::baseline::BaselineConfig;
use vigil_fleet::cluster::{cluster, Cut};
use vigil_fleet::rand_index::adjusted_rand_index;
use vigil_fleet::segments::{slice, standardise, Segment};

#[test]
fn i_hac_recovers_ten_archetypes_among_a_thousand_entities() {
    let cfg = ArchetypeFleetConfig {
        entities: 1000,
        archetypes: 10,
        ..ArchetypeFleetConfig::default()
    };
    let fleet = generate_archetype_fleet(&cfg);
    let baseline = BaselineConfig::default();
    // One segment per entity: its newest day of training data, the span a new entity brings.
    let segments: Vec<Segment> = fleet
        .dataset
        .entities
        .par_iter()
        .enumerate()
        .flat_map_iter(|(e, entity)| {
            slice(
                e,
                &entity.train.values,
                cfg.metrics,
                cfg.period,
                Some(1),
                &baseline,
            )
        })
        .collect();
    assert_eq!(segments.len(), 1000);
    let clustering = cluster(&segments, Cut::Clusters(10), 5).unwrap();
    let found: Vec<usize> = clustering
        .entity_clusters(&segments, 1000)
        .into_iter()
        .map(|c| c.expect("every entity has a segment"))
        .collect();
    let ari = adjusted_rand_index(&found, &fleet.archetype);
    assert!(ari >= 0.9, "adjusted Rand index {ari}");
}

#[test]
fn phase_alignment_recovers_injected_shifts_exactly_on_noise_free_copies() {
    let cfg = ArchetypeFleetConfig {
        entities: 40,
        archetypes: 10,
        noise: 0.0,
        trend: 0.0,
        anomalies: 0,
        ..ArchetypeFleetConfig::default()
    };
    let fleet = generate_archetype_fleet(&cfg);
    let day = cfg.period;
    let aligner = Aligner::new(day);
    let as_segment = |entity: usize, mut values: Vec<f32>| {
        standardise(&mut values, day);
        Segment {
            entity,
            start: 0,
            len: day,
            metrics: cfg.metrics,
            values,
        }
    };
    for (e, entity) in fleet.dataset.entities.iter().enumerate() {
        let archetype = fleet.archetype[e];
        let reference = as_segment(e, archetype_shape(&cfg, archetype, 0, day));
        // The entity's second training day, as it was generated (scaled, offset, delayed).
        let m = cfg.metrics;
        let metric_major: Vec<f32> = (0..m)
            .flat_map(|j| (day..2 * day).map(move |t| (t, j)))
            .map(|(t, j)| entity.train.values[t * m + j] as f32)
            .collect();
        let copy = as_segment(e, metric_major);
        let (shift, _) = aligner.best_shift(&aligner.reference(&reference), &copy);
        assert_eq!((day - shift) % day, fleet.shift[e], "entity {e}");
        let back = roll(&copy, shift);
        let worst = back
            .values
            .iter()
            .zip(&reference.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "entity {e}: aligned copy differs by {worst}");
    }
}
