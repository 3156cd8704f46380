use super::cell::GraphLstm;
use super::*;
use burn::tensor::Distribution;
use vigil_core::microservices::{generate_system, SystemConfig};

/// A chain a -> b -> c with one metric each.
fn chain() -> Topology {
    Topology {
        components: vec!["a".into(), "b".into(), "c".into()],
        metrics: vec!["x".into(), "y".into()],
        columns: (0..6).collect(),
        edges: vec![(0, 1), (1, 2)],
    }
}

/// The loss of a weighted sum of every hidden state of a two-layer GraphLSTM stack.
fn stack_loss(
    layers: &[GraphLstm],
    adjacency: &Tensor<2>,
    x: Tensor<4>,
    weights: &Tensor<4>,
) -> Tensor<1> {
    let (h, _) = layers[0].sequence(adjacency, x);
    let (h, _) = layers[1].sequence(adjacency, h);
    (h * weights.clone()).sum()
}

#[test]
fn graph_cell_gradients_match_finite_differences() {
    let device = nn::device().autodiff();
    let topology = chain();
    let adjacency = super::adjacency(&topology, GraphKind::Undirected, &device);
    let (batch, steps, n, input, hidden) = (2, 4, 3, 2, 3);
    let normal = Distribution::Normal(0.0, 0.5);
    let w_x = Tensor::<2>::random([input, 4 * hidden], normal, &device);
    let w_h = Tensor::<2>::random([hidden, 4 * hidden], normal, &device);
    let bias = Tensor::<1>::random([4 * hidden], normal, &device);
    let top = GraphLstm::new(hidden, hidden, &device);
    let x = Tensor::<4>::random([batch, steps, n, input], normal, &device);
    let weights = Tensor::<4>::random([batch, steps, n, hidden], normal, &device);
    let loss_of = |w_x: Tensor<2>, w_h: Tensor<2>, bias: Tensor<1>, x: Tensor<4>| {
        let first = GraphLstm::from_weights(w_x, w_h, bias);
        nn::scalar(stack_loss(&[first, top.clone()], &adjacency, x, &weights).detach())
    };
    // Analytic gradients of the first layer's weights and of the input.
    let first = GraphLstm::from_weights(w_x.clone(), w_h.clone(), bias.clone());
    let x_tracked = x.clone().require_grad();
    let grads = stack_loss(
        &[first.clone(), top.clone()],
        &adjacency,
        x_tracked.clone(),
        &weights,
    )
    .backward();
    let (p_x, p_h, p_b) = first.params();
    let analytic = [
        nn::to_vec(p_x.grad(&grads).unwrap()),
        nn::to_vec(p_h.grad(&grads).unwrap()),
        nn::to_vec(p_b.grad(&grads).unwrap()),
        nn::to_vec(x_tracked.grad(&grads).unwrap()),
    ];
    let eps = 1e-2f32;
    let values = [
        nn::to_vec(w_x.clone()),
        nn::to_vec(w_h.clone()),
        nn::to_vec(bias.clone()),
        nn::to_vec(x.clone()),
    ];
    for (which, (analytic, base)) in analytic.iter().zip(&values).enumerate() {
        // Every fourth entry keeps the test quick while touching every gate's block.
        for k in (0..base.len()).step_by(3) {
            let nudged = |delta: f32| {
                let mut v = base.clone();
                v[k] += delta;
                let data = |dims: Vec<usize>| TensorData::new(v.clone(), dims);
                match which {
                    0 => loss_of(
                        Tensor::from_data(data(vec![input, 4 * hidden]), &device),
                        w_h.clone(),
                        bias.clone(),
                        x.clone(),
                    ),
                    1 => loss_of(
                        w_x.clone(),
                        Tensor::from_data(data(vec![hidden, 4 * hidden]), &device),
                        bias.clone(),
                        x.clone(),
                    ),
                    2 => loss_of(
                        w_x.clone(),
                        w_h.clone(),
                        Tensor::from_data(data(vec![4 * hidden]), &device),
                        x.clone(),
                    ),
                    _ => loss_of(
                        w_x.clone(),
                        w_h.clone(),
                        bias.clone(),
                        Tensor::from_data(data(vec![batch, steps, n, input]), &device),
                    ),
                }
            };
            let numeric = ((nudged(eps) - nudged(-eps)) / (2.0 * eps as f64)) as f32;
            let got = analytic[k];
            assert!(
                (got - numeric).abs() <= 2e-2 * (1.0 + numeric.abs()),
                "parameter {which} entry {k}: analytic {got}, finite difference {numeric}"
            );
        }
    }
}

#[test]
fn recurrent_messages_cross_edges_and_not_without_them() {
    // A change at component c reaches a (two hops away) after two steps over the graph, and
    // never without it.
    let device = nn::device();
    let topology = chain();
    let layer = GraphLstm::new(2, 4, &device);
    let reach = |kind| {
        let adjacency = super::adjacency(&topology, kind, &device);
        let base = Tensor::<4>::zeros([1, 3, 3, 2], &device);
        let mut bumped = nn::to_vec(base.clone());
        bumped[2 * 2] = 1.0; // step 0, component c, metric x
        let bumped = Tensor::from_data(TensorData::new(bumped, [1, 3, 3, 2]), &device);
        let (h0, _) = layer.sequence(&adjacency, base);
        let (h1, _) = layer.sequence(&adjacency, bumped);
        let diff = nn::to_vec((h1 - h0).abs());
        // Component a at the last step: [0, 2, 0, ..].
        diff[(2 * 3) * 4..(2 * 3) * 4 + 4].iter().sum::<f32>()
    };
    assert!(reach(GraphKind::Undirected) > 1e-6);
    assert_eq!(reach(GraphKind::None), 0.0);
}

fn quick(graph: GraphKind) -> TopomadConfig {
    TopomadConfig {
        window: 10,
        hidden: 8,
        latent: 4,
        epochs: 4,
        batch_size: 32,
        learning_rate: 3e-3,
        graph,
        ..TopomadConfig::default()
    }
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

/// Min-max scaled with the training series' ranges, as the pipeline's default normaliser does.
fn scaled(train: &[f64], test: &[f64], m: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut lo, mut hi) = (vec![f64::INFINITY; m], vec![f64::NEG_INFINITY; m]);
    for row in train.chunks_exact(m) {
        for j in 0..m {
            lo[j] = lo[j].min(row[j]);
            hi[j] = hi[j].max(row[j]);
        }
    }
    let scale = |values: &[f64]| -> Vec<f64> {
        values
            .iter()
            .enumerate()
            .map(|(k, &v)| (v - lo[k % m]) / (hi[k % m] - lo[k % m]).max(1e-9))
            .collect()
    };
    (to_f32(&scale(train)), to_f32(&scale(test)))
}

#[test]
fn a_fault_at_a_leaf_is_localised_on_a_noise_free_system() {
    let cfg = SystemConfig {
        components: 5,
        train_len: 600,
        test_len: 400,
        period: 100,
        faults: 0,
        noise: 0.0,
        seed: 2,
        ..SystemConfig::default()
    };
    let mut system = generate_system(&cfg).unwrap();
    let topology = system.topology();
    let leaf = (0..cfg.components)
        .rev()
        .find(|&i| system.edges.iter().all(|e| e.0 != i))
        .unwrap();
    // Slow queries at the leaf for steps 200..=229: its latency triples, its callers see part
    // of it a step later.
    let m = system.test.n_metrics();
    let latency = leaf * 5 + 2;
    for t in 200..230 {
        system.test.values[t * m + latency] *= 3.0;
    }
    let (train, test) = scaled(&system.train.values, &system.test.values, m);
    let mut detector = Topomad::new(quick(GraphKind::Undirected)).unwrap();
    let fit_input = MtsInput {
        topology: Some(&topology),
        ..MtsInput::new(&train, m)
    };
    detector.fit(&fit_input, &FitOptions::default()).unwrap();
    let scores = detector.score(&MtsInput::new(&test, m)).unwrap();
    let component = topology.component_of_column();
    let mut per_component = vec![0.0f64; cfg.components];
    for t in 200..230 {
        for (j, &v) in scores.per_metric[t * m..(t + 1) * m].iter().enumerate() {
            per_component[component[j]] += v as f64;
        }
    }
    let top = (0..cfg.components)
        .max_by(|&a, &b| per_component[a].total_cmp(&per_component[b]))
        .unwrap();
    assert_eq!(top, leaf, "per-component scores {per_component:?}");
    let fault: f64 = scores.total[200..230].iter().sum::<f64>() / 30.0;
    let before: f64 = scores.total[150..180].iter().sum::<f64>() / 30.0;
    assert!(fault > 5.0 * before, "fault {fault} vs normal {before}");
}

#[test]
fn topology_is_required_kept_and_checked() {
    let m = 6;
    let values: Vec<f32> = (0..60 * m).map(|i| ((i as f32) * 0.37).sin()).collect();
    let mut detector = Topomad::new(TopomadConfig {
        epochs: 1,
        ..quick(GraphKind::Undirected)
    })
    .unwrap();
    let plain = MtsInput::new(&values, m);
    let err = detector
        .fit(&plain, &FitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--topology"), "{err}");
    let topology = chain();
    detector
        .fit(
            &MtsInput {
                topology: Some(&topology),
                ..plain
            },
            &FitOptions::default(),
        )
        .unwrap();
    // The topology is in the config (the manifest), and the model scores without being told.
    let config: TopomadConfig = serde_json::from_value(detector.config_json()).unwrap();
    assert_eq!(config.topology.as_ref(), Some(&topology));
    let scores = detector.score(&plain).unwrap();
    assert_eq!(scores.total.len(), 60);
    // A stream scores its newest step as the batch does.
    let newest = detector
        .score_newest(&MtsInput::new(&values[50 * m..60 * m], m))
        .unwrap();
    assert!((newest.total[0] - scores.total[59]).abs() < 1e-4 * (1.0 + scores.total[59]));
    let mut other = chain();
    other.edges = vec![(0, 2)];
    let err = detector
        .score(&MtsInput {
            topology: Some(&other),
            ..plain
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("only the model's: [a->b, b->c]"), "{err}");
}
