//! MTAD-FL's Table 2 (Hao et al.) in one process, run by `bench/mtad-fl.sh`: every node trains
//! and scores on its own labelled data, and only named tensors pass between nodes — through
//! `vigil_models::federated`, the functions Flower's server app calls.
//!
//! Settings (`--setting`):
//! - `skab`: three nodes, SKAB's valve1, valve2 and other groups (each group's experiments
//!   end to end). The paper's single-task SKAB figures are valve1's.
//! - `smd`: four nodes, the test sets of SMD's machine-1-1 … machine-1-4 (the paper's "first four
//!   subsets"; their labels are in the test sets).
//!
//! Each node's steps split 70/30 into training and test (§4.3), chronologically by default or,
//! with `--split shuffled`, at random (the paper does not say; its models classify single
//! steps, so both are possible — a random split lets a test step's neighbours train). Each node
//! scales its metrics to [0, 1] on its training part.
//!
//! Methods (`--methods`):
//! - `local`, `transfer`: single-task, each node alone.
//! - `mtad-fl-euclidean`, `mtad-fl-cosine`, `mtad-fl-combined`: per round, every node trains
//!   its Local model (warm from the last round), sends its hidden layers; LGF-PKT ranks peers
//!   by that distance; each node loads its nearest peer's hidden layers into its Transfer model
//!   (warm from the last round) and trains it; the Transfer model detects.
//! - `fedavg`: per round, every node trains its Local model from the global one; the server
//!   averages every tensor weighted by training steps; the global model detects.
//! - `fedtl`: `fedavg`, then each node fine-tunes the global model on its own data (the
//!   pre-trained model of FedTL-AD) and detects with that.
//!
//! Every federated method starts all nodes from one network (drawn from a seed they share, as a
//! server broadcasts its first model); each node's batches follow a seed of its own.
//!
//! A step is alarmed when the classifier's probability of an anomaly passes 0.5 (its argmax,
//! as the paper's classifiers decide). Prints one JSON line per (method, node, round) with
//! precision, recall, F1 and MCC point-wise, the affiliation F1 and VUS-PR, the seconds the
//! node's training took and the bytes of tensors it sent and received.
//!
//! ```text
//! mtad_fl_bench --data ../shared/data --setting skab --methods local,transfer,mtad-fl-combined \
//!     [--split chronological|shuffled] [--rounds 4] [--epochs 80] [--seed 1] [--filters 128,256,128]
//! ```

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vigil_core::metrics::affiliation::affiliation;
use vigil_core::metrics::point::Confusion;
use vigil_core::metrics::vus::vus;
use vigil_core::normalise::{NormKind, Normaliser};
use vigil_core::read::benchmarks::{load_smd, natural_name_key};
use vigil_core::read::csv::{read_csv_with, CsvLayout};
use vigil_core::Series;
use vigil_models::federated::{federated_average, rank_peers, DistanceKind};
use vigil_models::weights::NamedTensors;
use vigil_models::{registry, Detector, FitOptions, MtsInput};

#[path = "support/flags.rs"]
mod flags;

struct Args {
    data: PathBuf,
    setting: String,
    methods: Vec<String>,
    shuffled: bool,
    rounds: usize,
    epochs: usize,
    seed: u64,
    filters: Vec<usize>,
}

fn parse_args() -> anyhow::Result<Args> {
    let given = flags::parse(&[
        "data", "setting", "methods", "split", "rounds", "epochs", "seed", "filters",
    ])?;
    let number = |key: &str, default: usize| -> anyhow::Result<usize> {
        given.get(key).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("--{key} takes a whole number, got `{v}`"))
        })
    };
    let shuffled = match given.get("split").map_or("chronological", String::as_str) {
        "chronological" => false,
        "shuffled" => true,
        other => bail!("--split is chronological or shuffled, got `{other}`"),
    };
    let filters = flags::list(&given, "filters", "128,256,128")
        .iter()
        .map(|v| {
            v.parse()
                .with_context(|| format!("--filters takes whole numbers, got `{v}`"))
        })
        .collect::<anyhow::Result<Vec<usize>>>()?;
    if filters.len() != 3 {
        bail!("--filters takes three counts (conv1,conv2,conv3), got {filters:?}");
    }
    Ok(Args {
        data: PathBuf::from(given.get("data").map_or("../shared/data", String::as_str)),
        setting: given
            .get("setting")
            .cloned()
            .unwrap_or_else(|| "skab".into()),
        methods: flags::list(
            &given,
            "methods",
            "local,transfer,mtad-fl-combined,fedavg,fedtl",
        ),
        shuffled,
        rounds: number("rounds", 4)?,
        epochs: number("epochs", 80)?,
        seed: number("seed", 1)? as u64,
        filters,
    })
}

/// One node's data, scaled on its training part.
struct Node {
    name: String,
    metrics: usize,
    train: Vec<f32>,
    train_labels: Vec<u8>,
    test: Vec<f32>,
    test_labels: Vec<u8>,
}

/// Every labelled step of `series`, split 70/30 (chronologically or at random), scaled to [0, 1]
/// on the training part.
fn node(name: &str, series: Series, shuffled: bool, seed: u64) -> anyhow::Result<Node> {
    let labels = series
        .labels
        .clone()
        .with_context(|| format!("{name} has no labels"))?;
    let n = series.len();
    let mut order: Vec<usize> = (0..n).collect();
    if shuffled {
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    }
    let cut = (n as f64 * 0.7).round() as usize;
    let (train_steps, test_steps) = order.split_at(cut);
    let m = series.n_metrics();
    let pick = |steps: &[usize]| -> anyhow::Result<Series> {
        let mut values = Vec::with_capacity(steps.len() * m);
        for &t in steps {
            values.extend_from_slice(&series.values[t * m..(t + 1) * m]);
        }
        let mut part = Series::new(series.metric_names.clone(), values)?;
        part.labels = Some(steps.iter().map(|&t| labels[t]).collect());
        Ok(part)
    };
    let (train, test) = (pick(train_steps)?, pick(test_steps)?);
    let scale = Normaliser::fit(NormKind::MinMax, &train);
    Ok(Node {
        name: name.into(),
        metrics: m,
        train: scale.apply(&train)?,
        train_labels: train.labels.clone().unwrap_or_default(),
        test: scale.apply(&test)?,
        test_labels: test.labels.clone().unwrap_or_default(),
    })
}

/// SKAB's three groups, each one node: its experiments end to end, in their natural order.
fn skab_nodes(data: &Path, shuffled: bool, seed: u64) -> anyhow::Result<Vec<Node>> {
    let layout = CsvLayout {
        timestamp_columns: vec!["datetime"],
        label_columns: vec!["anomaly"],
        ignored_columns: vec!["changepoint"],
    };
    let mut nodes = Vec::new();
    for group in ["valve1", "valve2", "other"] {
        let dir = data.join("SKAB").join(group);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.sort_by_key(|p| {
            natural_name_key(&p.file_name().unwrap_or_default().to_string_lossy())
        });
        let mut joined: Option<Series> = None;
        for file in files {
            let part = read_csv_with(&file, &layout)?;
            joined = Some(match joined {
                None => part,
                Some(mut all) => {
                    all.values.extend_from_slice(&part.values);
                    let labels = all.labels.get_or_insert_with(Vec::new);
                    labels.extend(part.labels.unwrap_or_default());
                    all.timestamps = None;
                    all
                }
            });
        }
        let series = joined.with_context(|| format!("no experiment in {}", dir.display()))?;
        nodes.push(node(group, series, shuffled, seed)?);
    }
    Ok(nodes)
}

/// SMD's machine-1-1 … machine-1-4, each one node: its labelled test set.
fn smd_nodes(data: &Path, shuffled: bool, seed: u64) -> anyhow::Result<Vec<Node>> {
    let names: Vec<String> = (1..=4).map(|i| format!("machine-1-{i}")).collect();
    let dataset = load_smd(&data.join("SMD"), &names)?;
    dataset
        .entities
        .into_iter()
        .map(|e| node(&e.name, e.test, shuffled, seed))
        .collect()
}

/// What a model is judged by on one node's test part.
fn evaluate(det: &dyn Detector, node: &Node) -> anyhow::Result<serde_json::Value> {
    let scores = det.score(&MtsInput::new(&node.test, node.metrics))?.total;
    let alarms: Vec<u8> = scores.iter().map(|&p| u8::from(p > 0.5)).collect();
    let c = Confusion::count(&alarms, &node.test_labels);
    let affiliation_f1 = affiliation(&alarms, &node.test_labels).map(|a| a.f1());
    let vus_pr = vus(&scores, &node.test_labels, 100, 250).map(|v| v.pr);
    Ok(json!({
        "precision": c.precision(), "recall": c.recall(), "f1": c.f1(), "mcc": c.mcc(),
        "affiliation_f1": affiliation_f1, "vus_pr": vus_pr,
    }))
}

struct Run<'a> {
    args: &'a Args,
    nodes: &'a [Node],
}

impl Run<'_> {
    fn config(&self) -> serde_json::Value {
        let f = &self.args.filters;
        json!({"conv1_filters": f[0], "conv2_filters": f[1], "conv3_filters": f[2],
               "epochs": self.args.epochs})
    }

    fn fresh(&self, kind: &str) -> anyhow::Result<Box<dyn Detector>> {
        Ok(registry::build(kind, Some(&self.config()))?)
    }

    /// A `kind` network for node `i` drawn from one seed shared by every node: federated
    /// training starts all nodes from one broadcast model (averaging, or measuring distances
    /// between, networks drawn independently compares unrelated filters).
    fn broadcast(&self, kind: &str, i: usize) -> anyhow::Result<Box<dyn Detector>> {
        let mut det = self.fresh(kind)?;
        self.fit_with_seed(det.as_mut(), i, false, Some(0), self.args.seed * 1000 + 999)?;
        Ok(det)
    }

    /// Trains `det` on node `i` (warm when asked); returns the seconds it took.
    fn fit(
        &self,
        det: &mut dyn Detector,
        i: usize,
        warm: bool,
        epochs: Option<usize>,
    ) -> anyhow::Result<f64> {
        self.fit_with_seed(det, i, warm, epochs, self.args.seed * 1000 + i as u64)
    }

    /// [`Self::fit`] with the fit's seed (batch order) given.
    fn fit_with_seed(
        &self,
        det: &mut dyn Detector,
        i: usize,
        warm: bool,
        epochs: Option<usize>,
        seed: u64,
    ) -> anyhow::Result<f64> {
        let node = &self.nodes[i];
        let input = MtsInput::new(&node.train, node.metrics).with_labels(&node.train_labels);
        let options = FitOptions {
            seed,
            warm_start: warm,
            epochs,
            ..FitOptions::default()
        };
        let started = Instant::now();
        det.fit(&input, &options)
            .with_context(|| format!("training on {}", node.name))?;
        Ok(started.elapsed().as_secs_f64())
    }

    fn report(
        &self,
        method: &str,
        i: usize,
        round: usize,
        det: &dyn Detector,
        seconds: f64,
        (sent, received): (usize, usize),
    ) -> anyhow::Result<()> {
        let node = &self.nodes[i];
        let mut line = json!({
            "setting": self.args.setting, "split": if self.args.shuffled { "shuffled" } else { "chronological" },
            "method": method, "node": node.name, "round": round, "epochs": self.args.epochs,
            "seed": self.args.seed, "train_steps": node.train_labels.len(),
            "test_steps": node.test_labels.len(), "train_seconds": seconds,
            "bytes_sent": sent, "bytes_received": received,
        });
        let metrics = evaluate(det, node)?;
        line.as_object_mut()
            .unwrap()
            .extend(metrics.as_object().unwrap().clone());
        println!("{line}");
        Ok(())
    }

    fn single(&self, kind: &str) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            let mut det = self.fresh(kind)?;
            let seconds = self.fit(det.as_mut(), i, false, None)?;
            self.report(kind, i, 0, det.as_ref(), seconds, (0, 0))?;
        }
        Ok(())
    }

    /// MTAD-FL: Local models upload hidden layers; each Transfer model takes its nearest peer's.
    fn mtad_fl(&self, method: &str, distance: DistanceKind) -> anyhow::Result<()> {
        let hidden: Vec<String> = vigil_models::detectors::mtad_fl::HIDDEN_LAYERS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let n = self.nodes.len();
        let mut locals: Vec<Box<dyn Detector>> = (0..n)
            .map(|i| self.broadcast("mtad-local", i))
            .collect::<anyhow::Result<_>>()?;
        let mut transfers: Vec<Box<dyn Detector>> = (0..n)
            .map(|i| self.broadcast("mtad-transfer", i))
            .collect::<anyhow::Result<_>>()?;
        for round in 1..=self.args.rounds {
            let mut seconds = vec![0.0; n];
            let mut uploads: Vec<NamedTensors> = Vec::new();
            for i in 0..n {
                seconds[i] += self.fit(locals[i].as_mut(), i, true, None)?;
                uploads.push(locals[i].export_tensors(&hidden)?);
            }
            let rankings = rank_peers(&uploads, &hidden, distance)?;
            for (i, ranking) in rankings.iter().enumerate() {
                let peer = &uploads[ranking.nearest()];
                transfers[i].import_tensors(peer, self.nodes[i].metrics)?;
                seconds[i] += self.fit(transfers[i].as_mut(), i, true, None)?;
                let (sent, received) = (bytes(&uploads[i]), bytes(peer));
                self.report(
                    method,
                    i,
                    round,
                    transfers[i].as_ref(),
                    seconds[i],
                    (sent, received),
                )?;
                eprintln!(
                    "{method} round {round}: {} takes {}'s hidden layers (distance {:.4})",
                    self.nodes[i].name,
                    self.nodes[ranking.nearest()].name,
                    ranking.distances[0]
                );
            }
        }
        Ok(())
    }

    /// FedAvg, and FedTL's local fine-tune of the global model when `fine_tune` is set.
    fn fedavg(&self, method: &str, fine_tune: bool) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let mut global: Option<NamedTensors> = None;
        for round in 1..=self.args.rounds {
            let (mut uploads, mut seconds) = (Vec::new(), Vec::new());
            for i in 0..n {
                let mut det = self.broadcast("mtad-local", i)?;
                if let Some(g) = &global {
                    det.import_tensors(g, self.nodes[i].metrics)?;
                }
                seconds.push(self.fit(det.as_mut(), i, true, None)?);
                uploads.push(det.export_tensors(&[])?);
            }
            let weights: Vec<f64> = self
                .nodes
                .iter()
                .map(|n| n.train_labels.len() as f64)
                .collect();
            let averaged = federated_average(&uploads, &weights)?;
            for i in 0..n {
                let mut det = self.broadcast("mtad-local", i)?;
                det.import_tensors(&averaged, self.nodes[i].metrics)?;
                if fine_tune {
                    let tune_epochs = (self.args.epochs / 4).max(1);
                    seconds[i] += self.fit(det.as_mut(), i, true, Some(tune_epochs))?;
                }
                let (sent, received) = (bytes(&uploads[i]), bytes(&averaged));
                self.report(method, i, round, det.as_ref(), seconds[i], (sent, received))?;
            }
            global = Some(averaged);
        }
        Ok(())
    }
}

/// The bytes of a message's tensor values (f32 each).
fn bytes(tensors: &NamedTensors) -> usize {
    tensors.values().map(|t| t.values.len() * 4).sum()
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let nodes = match args.setting.as_str() {
        "skab" => skab_nodes(&args.data, args.shuffled, args.seed)?,
        "smd" => smd_nodes(&args.data, args.shuffled, args.seed)?,
        other => bail!("--setting is skab or smd, got `{other}`"),
    };
    let run = Run {
        args: &args,
        nodes: &nodes,
    };
    for method in &args.methods {
        match method.as_str() {
            "local" => run.single("mtad-local")?,
            "transfer" => run.single("mtad-transfer")?,
            "mtad-fl-euclidean" => run.mtad_fl(method, DistanceKind::Euclidean)?,
            "mtad-fl-cosine" => run.mtad_fl(method, DistanceKind::Cosine)?,
            "mtad-fl-combined" => run.mtad_fl(method, DistanceKind::Combined)?,
            "fedavg" => run.fedavg(method, false)?,
            "fedtl" => run.fedavg(method, true)?,
            other => bail!("unknown method `{other}`; see the file's header for the list"),
        }
    }
    Ok(())
}
