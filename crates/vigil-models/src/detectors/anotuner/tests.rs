use super::*;
use burn::prelude::Tensor;

/// `len` steps of 3 metrics: two waves of period 5 and a slow ramp, with a little noise.
fn series(len: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .flat_map(|t| {
            let phase = 2.0 * std::f32::consts::PI * t as f32 / 5.0;
            let noise: [f32; 3] = std::array::from_fn(|_| rng.gen_range(-0.03..0.03));
            [
                0.5 + 0.3 * phase.sin() + noise[0],
                0.5 + 0.3 * phase.cos() + noise[1],
                0.2 + 0.6 * (t % 200) as f32 / 200.0 + noise[2],
            ]
        })
        .collect()
}

fn small() -> AnotunerConfig {
    AnotunerConfig {
        window: 10,
        hidden: 24,
        latent: 4,
        epochs: 8,
        batch_size: 64,
        ..AnotunerConfig::default()
    }
}

fn fitted(values: &[f32]) -> Anotuner {
    fitted_for(values, small().epochs)
}

fn fitted_for(values: &[f32], epochs: usize) -> Anotuner {
    let mut det = Anotuner::new(AnotunerConfig { epochs, ..small() }).unwrap();
    det.fit(&MtsInput::new(values, 3), &FitOptions::default())
        .unwrap();
    det
}

#[test]
fn kernel_scores_match_burns_forward_pass_and_a_spike_scores_high() {
    let m = 3;
    let mut values = series(600, 1);
    let det = fitted(&values);
    values[400 * m + 1] += 1.5;
    let input = MtsInput::new(&values, m);
    let got = det.score(&input).unwrap();
    // The reference: burn's forward pass on the windows and their conditions.
    let (w, eps) = (det.config.window, det.config.std_epsilon);
    let net = det.net.get(m).unwrap();
    let mut x = Vec::new();
    windows_ending_at(input.values, m, w, 0..input.len(), &mut x);
    let c = det.decomposer().conditions(&x, input.len(), m).unwrap();
    let device = nn::device();
    let x = nn::tensor2(x, input.len(), w * m, &device);
    let c = nn::tensor2(c, input.len(), 2 * w * m, &device);
    let (mean_z, _) = net.encode(x.clone(), c.clone(), eps);
    let (mean_x, raw_std) = net.decode_raw(mean_z, c);
    let newest = |t: Tensor<2>| t.narrow(1, (w - 1) * m, m);
    let want = nn::to_vec(nn::likelihood::gaussian_nll_softplus(
        newest(x),
        newest(mean_x),
        newest(raw_std),
        eps,
    ));
    for (g, w) in got.per_metric.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-3 * (1.0 + w.abs()), "{g} vs {w}");
    }
    let typical = median(&got.total[100..380]);
    assert!(
        got.total[400] > typical + 10.0,
        "spike {} vs median {typical}",
        got.total[400]
    );
    assert!(got.per_metric[400 * m + 1] > got.per_metric[400 * m]);
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[test]
fn generated_false_negatives_carry_their_sources_condition_and_resemble_it() {
    let m = 3;
    let values = series(500, 2);
    let det = fitted_for(&values, 20);
    let input = MtsInput::new(&values, m);
    let (w, stl) = (det.config.window, det.decomposer());
    let sources = [37, 211];
    let per_source = 5;
    let net = det.net.get(m).unwrap();
    let generated =
        augment::false_negatives(net, &stl, &input, w, &sources, per_source, 1e-4, 9).unwrap();
    assert_eq!(generated.count, sources.len() * per_source);
    assert_eq!(
        generated.step_labels,
        vec![0u8; generated.count * det.config.window]
    );
    let d = w * m;
    for (k, &s) in sources.iter().enumerate() {
        let source = &values[s * m..(s + w) * m];
        let mut condition = Vec::new();
        stl.condition_into(source, m, &mut condition).unwrap();
        for j in 0..per_source {
            let g = k * per_source + j;
            assert_eq!(
                &generated.conditions[g * 2 * d..(g + 1) * 2 * d],
                &condition[..],
                "generated window {g}"
            );
            // Decoded under the source's trend and season, a generated window is nearer its
            // source than the other source (a window of another phase of the waves).
            let window = &generated.values[g * d..(g + 1) * d];
            let other = sources[1 - k];
            let gap = |to: &[f32]| {
                window
                    .iter()
                    .zip(to)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f32>()
                    / d as f32
            };
            let (own, others) = (gap(source), gap(&values[other * m..(other + w) * m]));
            assert!(
                own < 0.75 * others,
                "window {g}: {own} from its source, {others} from the other"
            );
        }
    }
    // Several draws per source: not copies of one another.
    assert_ne!(generated.values[..d], generated.values[d..2 * d]);
}

#[test]
fn a_fine_tune_with_feedback_trains_on_the_generated_windows_too() {
    let m = 3;
    let values = series(400, 3);
    let mut det = fitted(&values);
    let mut labels = vec![0u8; 400];
    labels[200..203].fill(1);
    let input = MtsInput::new(&values, m).with_labels(&labels);
    let options = FitOptions {
        warm_start: true,
        epochs: Some(1),
        ..FitOptions::default()
    };
    let summary = det.fit(&input, &options).unwrap();
    // 391 windows, 12 of them holding a labelled step (191..=202); each of those 12 gives
    // min(32, ceil(379 / 12) - 1 = 31) generated windows.
    assert_eq!(summary.windows, 391 + 12 * 31);
    // Unsupervised training (no warm start) leaves labelled windows out and generates none.
    let mut fresh = Anotuner::new(small()).unwrap();
    let summary = fresh
        .fit(
            &input,
            &FitOptions {
                epochs: Some(1),
                ..FitOptions::default()
            },
        )
        .unwrap();
    assert_eq!(summary.windows, 391 - 12);
}

/// ROC AUC of `scores` for `positives` against every other step in `among`.
fn auc(scores: &[f64], positives: &[usize], among: impl Iterator<Item = usize>) -> f64 {
    let negatives: Vec<usize> = among.filter(|t| !positives.contains(t)).collect();
    let mut wins = 0.0;
    for &p in positives {
        for &n in &negatives {
            wins += match scores[p].total_cmp(&scores[n]) {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => 0.0,
            };
        }
    }
    wins / (positives.len() * negatives.len()) as f64
}

#[test]
fn false_alarm_feedback_lowers_its_windows_scores_and_keeps_the_anomalies_ranked() {
    let m = 3;
    let train = series(800, 4);
    let mut det = fitted(&train);
    // Test data: metric 0 runs at a new level for steps 100..200 (benign: operators call its
    // alarms false), and spikes at 300, 340, 380 (true anomalies, never shown to the tune).
    let mut test = series(450, 5);
    for t in 100..200 {
        test[t * m] += 0.25;
    }
    let spikes = [300usize, 340, 380];
    for &t in &spikes {
        test[t * m + 2] += 1.0;
    }
    let before = det.score(&MtsInput::new(&test, m)).unwrap().total;
    // The feedback: steps 90..200 of the test labelled normal, after the training history and
    // a separator of zero-weight steps (no window across the junction is learnt).
    let w = det.config.window;
    let mut tune = train.clone();
    tune.extend_from_slice(&test[90 * m..(90 + w) * m]);
    tune.extend_from_slice(&test[90 * m..200 * m]);
    let mut weights = vec![1.0f32; tune.len() / m];
    weights[800..800 + w].fill(0.0);
    let labels = vec![0u8; tune.len() / m];
    let options = FitOptions {
        warm_start: true,
        epochs: Some(4),
        ..FitOptions::default()
    };
    let input = MtsInput::new(&tune, m)
        .with_labels(&labels)
        .with_weights(&weights);
    det.fit(&input, &options).unwrap();
    let after = det.score(&MtsInput::new(&test, m)).unwrap().total;
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (told_before, told_after) = (mean(&before[110..200]), mean(&after[110..200]));
    assert!(
        told_after < told_before - 0.5 * (told_before - median(&before[220..290])).abs(),
        "feedback windows: {told_before} before, {told_after} after"
    );
    // Tolerance: the spikes' ROC AUC among the steps the tune never saw drops by at most 0.05.
    let untouched = || (220..450).chain(0..90);
    let (auc_before, auc_after) = (
        auc(&before, &spikes, untouched()),
        auc(&after, &spikes, untouched()),
    );
    assert!(
        auc_after >= auc_before - 0.05,
        "{auc_before} -> {auc_after}"
    );
}

/// [`series`] with metric 2 dipping by 0.4 for 3 steps at every step `t` with `t % 100 == 50`.
fn with_dips(len: usize, seed: u64) -> Vec<f32> {
    let mut values = series(len, seed);
    for t in (0..len).filter(|t| t % 100 >= 50 && t % 100 < 53) {
        values[t * 3 + 2] -= 0.4;
    }
    values
}

#[test]
fn missed_anomaly_feedback_raises_the_scores_of_the_pattern_it_names() {
    let m = 3;
    // The dips are in the training data, so the model learns them as normal: a false negative.
    let train = with_dips(1000, 6);
    let mut det = fitted_for(&train, 15);
    let test = with_dips(1000, 7);
    let before = det.score(&MtsInput::new(&test, m)).unwrap().total;
    // Feedback: the dips of test steps 0..500 labelled anomalous; beside them, training
    // history without dips (normal), after zero-weight separators.
    let w = det.config.window;
    let clean = series(600, 8);
    let mut tune = clean.clone();
    let mut labels = vec![0u8; 600];
    let mut weights = vec![1.0f32; 600];
    tune.extend_from_slice(&test[..w * m]);
    labels.extend(vec![0u8; w]);
    weights.extend(vec![0.0f32; w]);
    tune.extend_from_slice(&test[..500 * m]);
    labels.extend((0..500).map(|t| u8::from(t % 100 >= 50 && t % 100 < 53)));
    weights.extend(vec![1.0f32; 500]);
    let input = MtsInput::new(&tune, m)
        .with_labels(&labels)
        .with_weights(&weights);
    let options = FitOptions {
        warm_start: true,
        epochs: Some(6),
        ..FitOptions::default()
    };
    det.fit(&input, &options).unwrap();
    let after = det.score(&MtsInput::new(&test, m)).unwrap().total;
    // Held out: the dips of steps 500..1000, which the feedback never showed.
    let dips: Vec<usize> = (500..1000)
        .filter(|t| t % 100 >= 50 && t % 100 < 53)
        .collect();
    let (auc_before, auc_after) = (
        auc(&before, &dips, 500..1000),
        auc(&after, &dips, 500..1000),
    );
    // Measured: 0.922 -> 0.981 (the dips' scores already ranked high; the rest is the gain).
    assert!(
        auc_after > auc_before + 0.03,
        "held-out dips' ROC AUC {auc_before} -> {auc_after}"
    );
    let normal: Vec<f64> = (500..1000)
        .filter(|t| !dips.contains(t))
        .map(|t| after[t])
        .collect();
    let normal_before: Vec<f64> = (500..1000)
        .filter(|t| !dips.contains(t))
        .map(|t| before[t])
        .collect();
    let lift = |s: &[f64], baseline: f64| {
        dips.iter().map(|&t| s[t] - baseline).sum::<f64>() / dips.len() as f64
    };
    assert!(lift(&after, median(&normal)) > lift(&before, median(&normal_before)));
}

#[test]
fn codes_are_one_row_per_window_and_a_window_past_the_end_is_refused() {
    let m = 3;
    let values = series(300, 9);
    let det = fitted_for(&values, 1);
    let input = MtsInput::new(&values, m);
    let (codes, dim) = det.encode(&input, &[0, 5, 290]).unwrap();
    assert_eq!(
        (codes.len(), dim),
        (3 * det.config.latent, det.config.latent)
    );
    // The same window, the same code.
    let (again, _) = det.encode(&input, &[5]).unwrap();
    for (a, b) in codes[dim..2 * dim].iter().zip(&again) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let err = det.encode(&input, &[291]).unwrap_err().to_string();
    assert!(
        err.contains("starting at step 291 ends after the series"),
        "{err}"
    );
    let short = MtsInput::new(&values[..5 * m], m);
    assert!(det.encode(&short, &[0]).is_err());
}
