//! Labels in training (issue 26 item 4): `fine_tune` continues a trained model on new data of
//! its entity, learning from operators' labels, with chosen layer groups frozen — or refuses
//! with the reason where a detector cannot.

use vigil_core::Series;
use vigil_models::{fine_tune, registry, TrainSpec, TrainedModel, TuneSpec};

#[path = "support/small.rs"]
#[allow(dead_code)]
mod small;
#[path = "support/periodic.rs"]
#[allow(dead_code)]
mod support;
use small::{quick_config, small_config, training_labels, NEURAL_DETECTORS};
use support::{periodic, periodic_with_burst, BURST};

fn series(values: Vec<f32>, labels: Option<Vec<u8>>) -> Series {
    let values = values.into_iter().map(f64::from).collect();
    let mut series = Series::new(vec!["a".into(), "b".into(), "c".into()], values).unwrap();
    series.labels = labels;
    series
}

fn trained(name: &str, config: serde_json::Value) -> TrainedModel {
    let spec = TrainSpec {
        detector: name.into(),
        config: Some(config),
        seed: 1,
        ..TrainSpec::default()
    };
    let labels = training_labels(name, 600);
    vigil_models::train(series(periodic(600), labels), &spec, None).unwrap()
}

/// [`periodic`] over `n` steps with the shape of [`BURST`] repeated every 100 steps, and labels
/// that mark those steps.
fn feedback(n: usize) -> (Vec<f32>, Vec<u8>) {
    let mut values = periodic(n);
    let mut labels = vec![0u8; n];
    for t in 0..n {
        if (BURST.start % 100..BURST.end % 100).contains(&(t % 100)) {
            labels[t] = 1;
            for v in &mut values[t * 3..t * 3 + 3] {
                *v = 1.0 - *v;
            }
        }
    }
    (values, labels)
}

#[test]
fn every_detector_fine_tunes_with_labels_or_says_why_not() {
    let (values, labels) = feedback(500);
    for info in registry::detectors() {
        let model = trained(info.name, quick_config(info.name));
        let before = model.to_bytes().unwrap();
        let spec = TuneSpec {
            seed: 2,
            ..TuneSpec::default()
        };
        let tuned = fine_tune(&model, series(values.clone(), Some(labels.clone())), &spec);
        if NEURAL_DETECTORS.contains(&info.name) {
            let tuned = tuned.unwrap_or_else(|e| panic!("{}: {e}", info.name));
            let flagged = labels.iter().filter(|&&l| l != 0).count();
            assert_eq!(tuned.manifest.training.labelled_anomalous, flagged);
            assert_eq!(tuned.calibration.len(), 500 - flagged, "{}", info.name);
            // The model it came from, as the fingerprint of its directory once written.
            let dir = tempfile::tempdir().unwrap();
            model.save(&dir.path().join("m")).unwrap();
            assert_eq!(
                tuned.manifest.lineage["fine_tuned_from"],
                vigil_models::model_dir::model_fingerprint(&dir.path().join("m")).unwrap()
            );
            assert!(
                tuned.to_bytes().unwrap() != before,
                "{}: fine-tuning changed nothing",
                info.name
            );
        } else {
            let why = tuned.err().unwrap().to_string();
            assert!(
                why.contains("cannot continue training"),
                "{}: {why}",
                info.name
            );
        }
        assert!(
            model.to_bytes().unwrap() == before,
            "{}: the model fine-tuned from changed",
            info.name
        );
    }
}

/// How far the fine-tuned model ranks [`BURST`] above normal steps (mean score over the burst
/// less over steps 50..150) after 20 epochs on [`feedback`] data with `labels` and `weights`.
fn burst_above_normal(
    model: &TrainedModel,
    labels: Option<Vec<u8>>,
    step_weights: Option<Vec<f32>>,
) -> f64 {
    let (values, _) = feedback(2000);
    let spec = TuneSpec {
        epochs: Some(20),
        seed: 2,
        step_weights,
        ..TuneSpec::default()
    };
    let tuned = fine_tune(model, series(values, labels), &spec).unwrap();
    let (scores, _) = tuned
        .score(series(periodic_with_burst(400), None), "test")
        .unwrap();
    let mean =
        |r: std::ops::Range<usize>| scores.total[r.clone()].iter().sum::<f64>() / r.len() as f64;
    mean(BURST) - mean(50..150)
}

/// What an operator flagged is not learnt as normal: fine-tuned on data where the same burst
/// recurs, a model told it is anomalous still ranks it far above normal steps; one that was not
/// told learns it and ranks it lower.
#[test]
fn a_burst_labelled_anomalous_is_not_learnt_as_normal() {
    let model = trained("vae", small_config("vae"));
    let (_, labels) = feedback(2000);
    let told = burst_above_normal(&model, Some(labels), None);
    let untold = burst_above_normal(&model, None, None);
    assert!(
        told > untold + 100.0,
        "labelled: burst − normal = {told}; unlabelled: {untold}"
    );
}

/// Per-step weights: fine-tuned on data where the same burst recurs, a model that gives the
/// burst's steps weight 0 does not learn it and still ranks it far above normal steps; one that
/// weighs them ten times the rest learns it and ranks it lower.
#[test]
fn step_weights_decide_how_much_a_step_is_learnt() {
    let model = trained("vae", small_config("vae"));
    let (_, labels) = feedback(2000);
    let burst_weighted = |weight: f32| {
        let weights = labels.iter().map(|&l| if l != 0 { weight } else { 1.0 });
        burst_above_normal(&model, None, Some(weights.collect()))
    };
    let (left_out, emphasised) = (burst_weighted(0.0), burst_weighted(10.0));
    assert!(
        left_out > emphasised + 100.0,
        "burst weight 0: burst − normal = {left_out}; weight 10: {emphasised}"
    );
}

#[test]
fn steps_weighted_zero_stay_out_of_the_calibration() {
    let model = trained("usad", quick_config("usad"));
    let (values, _) = feedback(500);
    let weights: Vec<f32> = (0..500)
        .map(|t| if t % 100 < 7 { 0.0 } else { 1.0 })
        .collect();
    let spec = TuneSpec {
        seed: 2,
        step_weights: Some(weights),
        ..TuneSpec::default()
    };
    let tuned = fine_tune(&model, series(values, None), &spec).unwrap();
    // Out: the 35 steps weighted 0, and the steps whose window (10 steps) holds one of them —
    // the 9 after each run of 7: training never drew those windows either.
    let window = model.detector.window();
    assert_eq!(window, 10);
    assert_eq!(tuned.calibration.len(), 500 - 5 * (7 + window - 1));
}

#[test]
fn frozen_groups_stay_as_they_were() {
    let model = trained("usad", quick_config("usad"));
    let (values, labels) = feedback(500);
    let spec = TuneSpec {
        frozen_groups: vec!["encoder".into()],
        seed: 2,
        ..TuneSpec::default()
    };
    let tuned = fine_tune(&model, series(values, Some(labels)), &spec).unwrap();
    let group = ["encoder".to_string()];
    assert_eq!(
        tuned.detector.export_tensors(&group).unwrap(),
        model.detector.export_tensors(&group).unwrap()
    );
    assert_ne!(
        tuned.detector.export_tensors(&[]).unwrap(),
        model.detector.export_tensors(&[]).unwrap()
    );
}

#[test]
fn impossible_fine_tunes_are_refused_with_the_reason() {
    let model = trained("usad", quick_config("usad"));
    let (values, _) = feedback(300);
    let refused = |series: Series, spec: &TuneSpec| {
        fine_tune(&model, series, spec).err().unwrap().to_string()
    };
    let unknown = TuneSpec {
        frozen_groups: vec!["decoder9".into()],
        ..TuneSpec::default()
    };
    let why = refused(series(values.clone(), None), &unknown);
    assert!(why.contains("decoder9") && why.contains("encoder"), "{why}");
    let why = refused(
        series(values.clone(), Some(vec![1; 300])),
        &TuneSpec::default(),
    );
    assert!(why.contains("nothing normal to learn from"), "{why}");
    let no_epochs = TuneSpec {
        epochs: Some(0),
        ..TuneSpec::default()
    };
    assert!(refused(series(values.clone(), None), &no_epochs).contains("epochs"));
    let weighted = |weights: Vec<f32>| TuneSpec {
        step_weights: Some(weights),
        ..TuneSpec::default()
    };
    let why = refused(series(values.clone(), None), &weighted(vec![1.0; 299]));
    assert!(
        why.contains("299 step weights") && why.contains("300 steps"),
        "{why}"
    );
    let mut negative = vec![1.0; 300];
    negative[7] = -1.0;
    let why = refused(series(values.clone(), None), &weighted(negative));
    assert!(why.contains("step_weights[7] is -1"), "{why}");
    let why = refused(series(values.clone(), None), &weighted(vec![0.0; 300]));
    assert!(
        why.contains("no training window has a positive weight"),
        "{why}"
    );
    let other = Series::new(vec!["x".into()], vec![0.0; 300]).unwrap();
    assert!(refused(other, &TuneSpec::default()).contains("metric"));
}
