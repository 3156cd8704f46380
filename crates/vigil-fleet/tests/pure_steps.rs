//! The fleet's steps as pure functions of models and data (what the Python package's
//! `vigil.fleet` and `vigil.ray` run) against the same steps through a fleet directory (what
//! `vigil fleet train-base` and `transfer` run): the same models and the same lineage.

use std::collections::HashMap;
use vigil_core::archetypes::{generate_archetype_fleet, ArchetypeFleetConfig};
use vigil_core::Series;
use vigil_fleet::cluster::Cut;
use vigil_fleet::fleet::{cluster_fleet, ClusterConfig};
use vigil_fleet::transfer::{
    adapt, adapt_from, base_dir, base_model, lineage_from, place, train_base_model, TransferConfig,
};
use vigil_models::{TrainSpec, TrainedModel};

#[test]
fn the_pure_steps_make_the_models_and_lineage_of_the_fleet_directorys() {
    let fleet = generate_archetype_fleet(&ArchetypeFleetConfig {
        entities: 12,
        archetypes: 2,
        metrics: 2,
        period: 24,
        ..ArchetypeFleetConfig::default()
    });
    let entities = &fleet.dataset.entities;
    let (offline, online) = entities.split_at(8);
    let names: Vec<String> = offline.iter().map(|e| e.name.clone()).collect();
    let series: Vec<Series> = offline.iter().map(|e| e.train.clone()).collect();
    let config = ClusterConfig {
        segment_length: 24,
        cut: Cut::Clusters(2),
        ..ClusterConfig::default()
    };
    let clusters = cluster_fleet(&names, &series, &config).unwrap();
    let by_name: HashMap<&str, &Series> = names.iter().map(|n| n.as_str()).zip(&series).collect();
    let spec = TrainSpec {
        detector: "usad".into(),
        config: Some(serde_json::json!({"window": 4, "latent": 3, "batch_size": 16})),
        epochs: Some(2),
        seed: 3,
        ..TrainSpec::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let transfer = TransferConfig {
        spec: TrainSpec {
            seed: 3,
            epochs: Some(1),
            ..TrainSpec::default()
        },
        steps: 24,
        tau: None,
    };
    for c in 0..clusters.clusters.len() {
        train_base_model(dir.path(), &clusters, c, &spec, |n| by_name.get(n).copied()).unwrap();
        let pure = base_model(&clusters, c, &spec, |n| by_name.get(n).copied()).unwrap();
        let saved = TrainedModel::load(&base_dir(dir.path(), c)).unwrap();
        assert_eq!(pure.manifest.lineage, saved.manifest.lineage);
        assert_eq!(pure.calibration, saved.calibration, "cluster {c}");
    }
    for entity in online {
        let (from_dir, record) = adapt(
            dir.path(),
            &clusters,
            &entity.name,
            &entity.train,
            &transfer,
        )
        .unwrap();
        let placement = place(&clusters, &entity.name, &entity.train, &transfer).unwrap();
        assert_eq!(placement.cluster, record.cluster);
        let base = TrainedModel::load(&base_dir(dir.path(), placement.cluster)).unwrap();
        // The lineage from the base model in memory is the one read from its directory.
        let lineage = lineage_from(&clusters, &base, &transfer).unwrap();
        assert_eq!(lineage, record.lineage, "{}", entity.name);
        let (pure, pure_record) =
            adapt_from(base, lineage, &entity.name, placement, &transfer).unwrap();
        assert_eq!(
            (
                pure_record.transfer,
                pure_record.distance,
                pure_record.steps
            ),
            (record.transfer, record.distance, record.steps)
        );
        let test = entity.test.clone();
        let (a, _) = from_dir.score(test.clone(), "test").unwrap();
        let (b, _) = pure.score(test, "test").unwrap();
        assert_eq!(a.total, b.total, "{}", entity.name);
    }
}
