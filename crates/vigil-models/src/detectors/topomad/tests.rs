use super::cell::{Graph, GraphLstm};
use super::*;
use burn::tensor::Distribution;
use vigil_core::microservices::{
    generate_system, generate_system_with_faults, Fault, FaultKind, SystemConfig,
};

/// A chain a -> b -> c with two metrics each.
fn chain() -> Topology {
    Topology {
        components: vec!["a".into(), "b".into(), "c".into()],
        metrics: vec!["x".into(), "y".into()],
        columns: (0..6).collect(),
        edges: vec![(0, 1), (1, 2)],
    }
}

/// The loss of a weighted sum of every hidden state of a two-layer GraphLSTM stack.
fn stack_loss(layers: &[GraphLstm], graph: &Graph, x: Tensor<4>, weights: &Tensor<4>) -> Tensor<1> {
    let (h, _) = layers[0].sequence(graph, x);
    let (h, _) = layers[1].sequence(graph, h);
    (h * weights.clone()).sum()
}

/// The first layer's parameters and the input as plain values, in a fixed order: w_x, w_h,
/// bias, then (GAT) the attention's source and target, then x.
struct Values {
    parts: Vec<(Vec<f32>, Vec<usize>)>,
}

impl Values {
    fn data(&self) -> Vec<TensorData> {
        self.parts
            .iter()
            .map(|(v, dims)| TensorData::new(v.clone(), dims.clone()))
            .collect()
    }
}

/// The stack's loss at `values` (see [`Values`]), `top` the fixed second layer.
fn loss_at(
    values: &Values,
    attention: bool,
    top: &GraphLstm,
    graph: &Graph,
    weights: &Tensor<4>,
    device: &Device,
) -> (Tensor<1>, GraphLstm, Tensor<4>) {
    let mut data = values.data().into_iter();
    let mut next2 = || Tensor::<2>::from_data(data.next().unwrap(), device);
    let (w_x, w_h) = (next2(), next2());
    let mut rest: Vec<TensorData> = data.collect();
    let x = Tensor::<4>::from_data(rest.pop().unwrap(), device).require_grad();
    let mut vectors = rest.into_iter().map(|d| Tensor::<1>::from_data(d, device));
    let mut first = GraphLstm::from_weights(w_x, w_h, vectors.next().unwrap());
    if attention {
        first = first.with_attention(vectors.next().unwrap(), vectors.next().unwrap());
    }
    let loss = stack_loss(&[first.clone(), top.clone()], graph, x.clone(), weights);
    (loss, first, x)
}

fn check_gradients(attention: bool) {
    let device = nn::device().autodiff();
    let topology = chain();
    let kind = GraphKind::Undirected;
    let graph = graph_of(&topology, kind, &device);
    let (batch, steps, n, input, hidden) = (2, 4, 3, 2, 3);
    let gates = 4 * hidden;
    let draw = |dims: Vec<usize>| {
        let count: usize = dims.iter().product();
        let t = Tensor::<1>::random([count], Distribution::Normal(0.0, 0.5), &device);
        (nn::to_vec(t), dims)
    };
    let mut parts = vec![
        draw(vec![input, gates]),
        draw(vec![hidden, gates]),
        draw(vec![gates]),
    ];
    if attention {
        parts.extend([draw(vec![gates]), draw(vec![gates])]);
    }
    parts.push(draw(vec![batch, steps, n, input]));
    let values = Values { parts };
    let top = GraphLstm::new(hidden, hidden, attention, &device);
    let weights = Tensor::<4>::random(
        [batch, steps, n, hidden],
        Distribution::Normal(0.0, 0.5),
        &device,
    );
    // Analytic gradients of the first layer's parameters and of the input.
    let (loss, first, x) = loss_at(&values, attention, &top, &graph, &weights, &device);
    let grads = loss.backward();
    let (w_x, w_h) = first.matrices();
    let mut analytic = vec![
        nn::to_vec(w_x.grad(&grads).unwrap()),
        nn::to_vec(w_h.grad(&grads).unwrap()),
    ];
    analytic.extend(
        first
            .params()
            .iter()
            .map(|p| nn::to_vec(p.grad(&grads).unwrap())),
    );
    analytic.push(nn::to_vec(x.grad(&grads).unwrap()));
    let eps = 1e-2f32;
    for (which, analytic) in analytic.iter().enumerate() {
        // Every third entry keeps the test quick while touching every gate's block.
        for k in (0..analytic.len()).step_by(3) {
            let nudged = |delta: f32| {
                let mut v = Values {
                    parts: values.parts.clone(),
                };
                v.parts[which].0[k] += delta;
                nn::scalar(
                    loss_at(&v, attention, &top, &graph, &weights, &device)
                        .0
                        .detach(),
                )
            };
            let numeric = ((nudged(eps) - nudged(-eps)) / (2.0 * eps as f64)) as f32;
            let got = analytic[k];
            assert!(
                (got - numeric).abs() <= 2e-2 * (1.0 + numeric.abs()),
                "attention {attention}, parameter {which} entry {k}: analytic {got}, finite \
                 difference {numeric}"
            );
        }
    }
}

#[test]
fn graph_cell_gradients_match_finite_differences() {
    check_gradients(false);
}

#[test]
fn attention_cell_gradients_match_finite_differences() {
    check_gradients(true);
}

#[test]
fn recurrent_messages_cross_edges_and_not_without_them() {
    // A change at component c reaches a (two hops away) after two steps over the graph, and
    // never without it.
    let device = nn::device();
    let topology = chain();
    let layer = GraphLstm::new(2, 4, false, &device);
    let reach = |kind| {
        let graph = graph_of(&topology, kind, &device);
        let base = Tensor::<4>::zeros([1, 3, 3, 2], &device);
        let mut bumped = nn::to_vec(base.clone());
        bumped[2 * 2] = 1.0; // step 0, component c, metric x
        let bumped = Tensor::from_data(TensorData::new(bumped, [1, 3, 3, 2]), &device);
        let (h0, _) = layer.sequence(&graph, base);
        let (h1, _) = layer.sequence(&graph, bumped);
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
    let plain = generate_system(&cfg).unwrap();
    let leaf = (0..cfg.components)
        .rev()
        .find(|&i| plain.edges.iter().all(|e| e.0 != i))
        .unwrap();
    // A CPU hog at the leaf for steps 200..=229, injected by the generator: the leaf's CPU
    // rises and its service slows, and its callers inherit the latency a step per hop later.
    // (Slow queries would pass the callers' timeouts, and their failed requests then outweigh
    // the leaf in a ranking by error: that harder case is what bench/topomad.sh measures.)
    let fault = Fault {
        start: 200,
        end: 229,
        component: leaf,
        kind: FaultKind::CpuHog,
    };
    let system = generate_system_with_faults(&cfg, vec![fault]).unwrap();
    assert_eq!(system.edges, plain.edges);
    let topology = system.topology();
    let m = system.test.n_metrics();
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

#[test]
fn the_attention_cell_trains_saves_and_streams() {
    let m = 6;
    let values: Vec<f32> = (0..80 * m).map(|i| ((i as f32) * 0.29).sin()).collect();
    let topology = chain();
    let config = TopomadConfig {
        cell: CellKind::Gat,
        epochs: 2,
        ..quick(GraphKind::Directed)
    };
    let mut detector = Topomad::new(config.clone()).unwrap();
    let input = MtsInput {
        topology: Some(&topology),
        ..MtsInput::new(&values, m)
    };
    detector.fit(&input, &FitOptions::default()).unwrap();
    let plain = MtsInput::new(&values, m);
    let scores = detector.score(&plain).unwrap();
    assert!(scores.total.iter().all(|s| s.is_finite()));
    let newest = detector
        .score_newest(&MtsInput::new(&values[70 * m..80 * m], m))
        .unwrap();
    assert!((newest.total[0] - scores.total[79]).abs() < 1e-4 * (1.0 + scores.total[79]));
    // Saved and loaded into a detector built from the stored config, it scores the same.
    let files = detector.save_weights().unwrap();
    let stored: TopomadConfig = serde_json::from_value(detector.config_json()).unwrap();
    let mut loaded = Topomad::new(stored).unwrap();
    loaded.load_weights(&files, m).unwrap();
    assert_eq!(loaded.score(&plain).unwrap().total, scores.total);
}
