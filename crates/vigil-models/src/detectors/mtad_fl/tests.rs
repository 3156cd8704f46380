use super::*;

const M: usize = 4;

/// A noisy series of `M` metrics in which metric 2 jumps at every step `anomalous(t)` says, with
/// those steps labelled.
fn labelled(len: usize, seed: u32, anomalous: impl Fn(usize) -> bool) -> (Vec<f32>, Vec<u8>) {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f32 / u32::MAX as f32) * 0.2
    };
    let (mut values, mut labels) = (Vec::new(), Vec::new());
    for t in 0..len {
        let a = anomalous(t);
        for c in 0..M {
            let base = 0.4 + 0.1 * ((t + 7 * c) as f32 * 0.3).sin();
            values.push(base + noise() + if a && c == 2 { 0.5 } else { 0.0 });
        }
        labels.push(u8::from(a));
    }
    (values, labels)
}

fn small() -> serde_json::Value {
    serde_json::json!({
        "conv1_filters": 8, "conv2_filters": 16, "conv3_filters": 8,
        "epochs": 15, "batch_size": 32, "learning_rate": 0.01
    })
}

fn trained(kind: &str) -> Box<dyn Detector> {
    let (values, labels) = labelled(600, 1, |t| t % 10 == 3);
    let mut det = crate::registry::build(kind, Some(&small())).unwrap();
    let input = MtsInput::new(&values, M).with_labels(&labels);
    det.fit(&input, &FitOptions::default()).unwrap();
    det
}

#[test]
fn a_fit_without_labels_or_without_an_anomaly_is_refused_with_what_to_do() {
    let (values, labels) = labelled(100, 2, |_| false);
    for kind in ["mtad-local", "mtad-transfer"] {
        let mut det = crate::registry::build(kind, Some(&small())).unwrap();
        assert!(det.supervised());
        let why = det
            .fit(&MtsInput::new(&values, M), &FitOptions::default())
            .unwrap_err()
            .to_string();
        assert!(why.contains("`label` column"), "{kind}: {why}");
        let why = det
            .fit(
                &MtsInput::new(&values, M).with_labels(&labels),
                &FitOptions::default(),
            )
            .unwrap_err()
            .to_string();
        assert!(why.contains("no step anomalous"), "{kind}: {why}");
        let short = &labels[..10];
        let why = det
            .fit(
                &MtsInput::new(&values, M).with_labels(short),
                &FitOptions::default(),
            )
            .unwrap_err()
            .to_string();
        assert!(why.contains("10 labels for 100"), "{kind}: {why}");
    }
}

#[test]
fn both_models_learn_the_labelled_anomaly_and_name_the_metric_that_moved() {
    let (test, labels) = labelled(300, 9, |t| t % 25 == 11);
    for kind in ["mtad-local", "mtad-transfer"] {
        let det = trained(kind);
        let scores = det.score(&MtsInput::new(&test, M)).unwrap();
        let mean = |anomalous: bool| {
            let picked: Vec<f64> = (0..test.len() / M)
                .filter(|&t| (labels[t] != 0) == anomalous)
                .map(|t| scores.total[t])
                .collect();
            picked.iter().sum::<f64>() / picked.len() as f64
        };
        let (anomalous, normal) = (mean(true), mean(false));
        assert!(
            anomalous > 0.8 && normal < 0.2,
            "{kind}: anomalous {anomalous}, normal {normal}"
        );
        for t in (0..300).filter(|t| labels[*t] != 0) {
            let row = &scores.per_metric[t * M..(t + 1) * M];
            let top = (0..M).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            assert_eq!(top, 2, "{kind} at {t}: {row:?}");
            let sum: f32 = row.iter().sum();
            assert!(
                (f64::from(sum) - scores.total[t]).abs() < 1e-5,
                "{kind}: shares sum to {sum}"
            );
        }
    }
}

#[test]
fn the_local_models_hidden_layers_load_into_a_transfer_model() {
    let local = trained("mtad-local");
    let hidden: Vec<String> = HIDDEN_LAYERS.iter().map(|s| s.to_string()).collect();
    let sent = local.export_tensors(&hidden).unwrap();
    assert_eq!(
        sent.len(),
        6,
        "weight and bias of three convolutions: {:?}",
        sent.keys()
    );
    assert!(
        sent.keys().all(|k| k.starts_with("features.conv")),
        "{:?}",
        sent.keys()
    );
    let mut transfer = trained("mtad-transfer");
    let before = transfer.export_tensors(&["classifier".into()]).unwrap();
    transfer.import_tensors(&sent, M).unwrap();
    assert_eq!(transfer.export_tensors(&hidden).unwrap(), sent);
    // The rest of the Transfer model stays its own.
    assert_eq!(
        transfer.export_tensors(&["classifier".into()]).unwrap(),
        before
    );
    // A fresh Transfer model takes them too, ready for the round's fit to warm-start from.
    let mut fresh = crate::registry::build("mtad-transfer", Some(&small())).unwrap();
    fresh.import_tensors(&sent, M).unwrap();
    assert_eq!(fresh.export_tensors(&hidden).unwrap(), sent);
}

#[test]
fn a_saved_model_scores_the_same_once_loaded() {
    let (test, _) = labelled(50, 4, |t| t == 20);
    for kind in ["mtad-local", "mtad-transfer"] {
        let det = trained(kind);
        let files = det.save_weights().unwrap();
        let mut loaded = crate::registry::build(kind, Some(&small())).unwrap();
        loaded.load_weights(&files, M).unwrap();
        let input = MtsInput::new(&test, M);
        assert_eq!(
            det.score(&input).unwrap(),
            loaded.score(&input).unwrap(),
            "{kind}"
        );
        let why = loaded.load_weights(&files, M + 1).unwrap_err().to_string();
        assert!(why.contains("retrain"), "{kind}: {why}");
    }
}

#[test]
fn a_window_is_labelled_by_its_newest_step() {
    let values = vec![0.0f32; 5 * M];
    let labels = [0u8, 0, 1, 0, 0];
    let input = MtsInput::new(&values, M).with_labels(&labels);
    // Windows of 3 end at steps 2, 3 and 4.
    assert_eq!(
        window_targets(&input, 3, "mtad-local", false).unwrap(),
        [1.0, 0.0, 0.0]
    );
    assert_eq!(
        window_targets(&input, 1, "mtad-local", false).unwrap(),
        [0.0, 0.0, 1.0, 0.0, 0.0]
    );
    let normal = [0u8; 5];
    let input = MtsInput::new(&values, M).with_labels(&normal);
    assert!(window_targets(&input, 3, "mtad-local", false).is_err());
    // A fine-tune of a fitted model may see only normal feedback.
    assert_eq!(
        window_targets(&input, 3, "mtad-local", true).unwrap(),
        [0.0; 3]
    );
}

#[test]
fn a_fitted_model_fine_tunes_on_feedback_that_marks_nothing_anomalous() {
    let mut det = trained("mtad-local");
    let (values, _) = labelled(200, 5, |_| false);
    let normal = vec![0u8; 200];
    let options = FitOptions {
        warm_start: true,
        epochs: Some(1),
        ..FitOptions::default()
    };
    det.fit(&MtsInput::new(&values, M).with_labels(&normal), &options)
        .unwrap();
}
