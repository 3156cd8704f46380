//! Isolation Forest (Liu, Ting & Zhou, ICDM 2008): anomalies are few and different, so random
//! axis-parallel splits isolate them in fewer steps. Each tree is grown on a random subsample
//! of the training windows with a random feature and a random split value per node, down to a
//! depth limit of ⌈log₂ ψ⌉; a window's score is 2^(−E[h(x)] / c(ψ)), where h is its path
//! length (plus c(size) at an unsplit leaf) and c(n) the average path length of an unsuccessful
//! search in a binary search tree of n points. Defaults are the paper's: 100 trees, ψ = 256.
//!
//! Per-metric contributions (the paper has none): the score is shared among the metrics in
//! proportion to the isolating power of the splits that test them on the window's paths — a
//! split weighs the share of its node's training points that it sends to the other side, so a
//! split that cuts a point off from almost everything counts fully and one that halves the node
//! counts half (in the spirit of DIFFI, Carletti et al. 2020, for one point). Contributions sum
//! to the score.
//!
//! Written here rather than taken from a crate: the crates we found either score only (no
//! path/feature access for contributions), store trees in formats we cannot check into a model
//! directory, or are unmaintained; the algorithm is ~150 lines.

use crate::config::{detector_config, DetectorConfig};
use crate::detector::{Detector, FitOptions, FitSummary, MtsInput, Scores};
use crate::error::{ModelError, Result};
use crate::nn::infer::par_rows;
use crate::weights::{get_json, put_json, WeightFiles};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use vigil_core::window::{check_window, windows_ending_at};

/// Isolation Forest configuration (defaults: the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IforestConfig {
    /// Window length (1 = each time step on its own, as the MTS papers use it as a baseline).
    pub window: usize,
    /// Number of trees.
    pub trees: usize,
    /// Subsample size ψ per tree (fewer if the training series has fewer windows).
    pub subsample: usize,
}

impl Default for IforestConfig {
    fn default() -> Self {
        IforestConfig {
            window: 1,
            trees: 100,
            subsample: 256,
        }
    }
}

detector_config! {
    IforestConfig = "iforest";
    counts: window, trees;
    |c, checks| {
        checks.at_least("subsample", c.subsample, 2);
    }
}

/// One node of a tree: a split (`feature`, `threshold`, children) or a leaf; each holds the
/// number of training points that reached it. Stored flat, children after their parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Node {
    Split {
        size: u32,
        feature: u32,
        threshold: f32,
        left: u32,
        right: u32,
    },
    Leaf {
        size: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Forest {
    /// Features per window (`window x metrics`).
    features: usize,
    /// The subsample size used, for c(ψ).
    subsample: usize,
    trees: Vec<Vec<Node>>,
}

/// c(n): the average path length of an unsuccessful search in a binary search tree of n points
/// (the paper's normaliser; 0 for n ≤ 1 and 1 for n = 2, as scikit-learn).
fn average_path_length(n: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// Windows read in place from the series: window `r` holds `values[r * stride..][..features]`
/// (its rows are consecutive, so no copy of every window is needed).
#[derive(Clone, Copy)]
struct WindowView<'a> {
    values: &'a [f32],
    stride: usize,
    features: usize,
}

impl WindowView<'_> {
    fn value(&self, window: usize, feature: usize) -> f32 {
        self.values[window * self.stride + feature]
    }
}

/// Grows one isolation tree over the windows `rows` of `data`.
fn grow(data: WindowView, rows: &mut [usize], depth_limit: usize, rng: &mut impl Rng) -> Vec<Node> {
    let mut nodes = Vec::new();
    grow_node(data, rows, 0, depth_limit, rng, &mut nodes);
    nodes
}

fn grow_node(
    data: WindowView,
    rows: &mut [usize],
    depth: usize,
    depth_limit: usize,
    rng: &mut impl Rng,
    nodes: &mut Vec<Node>,
) -> u32 {
    let id = nodes.len() as u32;
    let leaf = Node::Leaf {
        size: rows.len() as u32,
    };
    nodes.push(leaf.clone());
    if depth >= depth_limit || rows.len() <= 1 {
        return id;
    }
    // Only features that vary among these rows can split them.
    let range = |f: usize| {
        rows.iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
                let v = data.value(r, f);
                (lo.min(v), hi.max(v))
            })
    };
    let varying: Vec<(usize, f32, f32)> = (0..data.features)
        .map(|f| (f, range(f)))
        .filter(|(_, (lo, hi))| hi > lo)
        .map(|(f, (lo, hi))| (f, lo, hi))
        .collect();
    if varying.is_empty() {
        return id;
    }
    let (feature, lo, hi) = varying[rng.gen_range(0..varying.len())];
    // A value strictly inside (lo, hi], so that both sides get at least one row.
    let mut threshold = lo + rng.gen::<f32>() * (hi - lo);
    if threshold <= lo {
        threshold = hi;
    }
    let mut split = 0;
    for i in 0..rows.len() {
        if data.value(rows[i], feature) < threshold {
            rows.swap(i, split);
            split += 1;
        }
    }
    let (left_rows, right_rows) = rows.split_at_mut(split);
    let left = grow_node(data, left_rows, depth + 1, depth_limit, rng, nodes);
    let right = grow_node(data, right_rows, depth + 1, depth_limit, rng, nodes);
    nodes[id as usize] = Node::Split {
        size: rows.len() as u32,
        feature: feature as u32,
        threshold,
        left,
        right,
    };
    id
}

impl Forest {
    /// The score of one window and each feature's share of it (added into `shares`).
    fn score(&self, x: &[f32], shares: &mut [f64]) -> f64 {
        shares.fill(0.0);
        let mut total_path = 0.0;
        for tree in &self.trees {
            let (mut node, mut depth) = (0usize, 0usize);
            loop {
                match &tree[node] {
                    Node::Split {
                        size,
                        feature,
                        threshold,
                        left,
                        right,
                    } => {
                        depth += 1;
                        node = if x[*feature as usize] < *threshold {
                            *left as usize
                        } else {
                            *right as usize
                        };
                        let child_size = match &tree[node] {
                            Node::Split { size, .. } | Node::Leaf { size } => *size,
                        };
                        shares[*feature as usize] += 1.0 - child_size as f64 / *size as f64;
                    }
                    Node::Leaf { size } => {
                        total_path += depth as f64 + average_path_length(*size as usize);
                        break;
                    }
                }
            }
        }
        let mean_path = total_path / self.trees.len() as f64;
        2f64.powf(-mean_path / average_path_length(self.subsample).max(1.0))
    }
}

/// The Isolation Forest detector.
#[derive(Debug, Clone)]
pub struct Iforest {
    config: IforestConfig,
    forest: Option<Forest>,
}

const WEIGHTS: &str = "iforest.json";

impl Iforest {
    /// Builds an unfitted Isolation Forest.
    pub fn new(config: IforestConfig) -> Result<Iforest> {
        config.validate()?;
        Ok(Iforest {
            config,
            forest: None,
        })
    }

    fn fitted(&self) -> Result<&Forest> {
        crate::error::fitted(&self.forest, self.kind())
    }
}

impl Detector for Iforest {
    crate::config::config_methods!(window);

    fn fit(&mut self, input: &MtsInput, options: &FitOptions) -> Result<FitSummary> {
        let (m, w) = (input.n_metrics, self.config.window);
        check_window(w, input.len(), "training series")?;
        let d = w * m;
        let n = input.n_full_windows(w);
        let data = WindowView {
            values: input.values,
            stride: m,
            features: d,
        };
        let subsample = self.config.subsample.min(n);
        let depth_limit = (subsample as f64).log2().ceil() as usize;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed);
        let trees = (0..self.config.trees)
            .map(|_| {
                let mut rows = sample(&mut rng, n, subsample).into_vec();
                grow(data, &mut rows, depth_limit, &mut rng)
            })
            .collect();
        self.forest = Some(Forest {
            features: d,
            subsample,
            trees,
        });
        Ok(FitSummary {
            epochs: 1,
            final_loss: None,
            windows: n,
        })
    }

    fn score(&self, input: &MtsInput) -> Result<Scores> {
        let forest = self.fitted()?;
        let (m, w) = (input.n_metrics, self.config.window);
        let d = w * m;
        if forest.features != d {
            return Err(ModelError::Shape(format!(
                "the Isolation Forest was fitted on {} features per window, the data gives {d}",
                forest.features
            )));
        }
        let contributions = par_rows(input.len(), m, 256, |rows, out| {
            let mut x = Vec::new();
            windows_ending_at(input.values, m, w, rows.clone(), &mut x);
            let mut shares = vec![0.0; d];
            for (r, window) in x.chunks_exact(d).enumerate() {
                let score = forest.score(window, &mut shares);
                // Feature shares to metrics: feature f of a window is metric f mod m.
                let mut per_metric = vec![0.0f64; m];
                for (f, s) in shares.iter().enumerate() {
                    per_metric[f % m] += s;
                }
                let sum: f64 = per_metric.iter().sum();
                for (c, p) in per_metric.iter().enumerate() {
                    let share = if sum > 0.0 { p / sum } else { 1.0 / m as f64 };
                    out[r * m + c] = (score * share) as f32;
                }
            }
        });
        Ok(Scores::from_contributions(contributions, m))
    }

    fn save_weights(&self) -> Result<WeightFiles> {
        let mut files = WeightFiles::new();
        put_json(&mut files, WEIGHTS, self.fitted()?)?;
        Ok(files)
    }

    fn load_weights(&mut self, files: &WeightFiles, n_metrics: usize) -> Result<()> {
        let forest: Forest = get_json(files, WEIGHTS)?;
        let valid_nodes = forest.trees.iter().all(|tree| {
            tree.iter().all(|node| match node {
                Node::Split {
                    size,
                    feature,
                    left,
                    right,
                    ..
                } => {
                    *size > 0
                        && (*feature as usize) < forest.features
                        && (*left as usize) < tree.len()
                        && (*right as usize) < tree.len()
                }
                Node::Leaf { .. } => true,
            })
        });
        if forest.features != self.config.window * n_metrics
            || forest.trees.is_empty()
            || !valid_nodes
        {
            return Err(ModelError::Weights(format!(
                "{WEIGHTS} does not hold a forest for {n_metrics} metrics; retrain the model"
            )));
        }
        self.forest = Some(forest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_path_length_matches_scikit_learn() {
        // sklearn.ensemble._iforest._average_path_length, scikit-learn 1.9.1.
        for (n, want) in [
            (1, 0.0),
            (2, 1.0),
            (3, 1.207392357589623),
            (256, 10.244770920119917),
            (1000, 12.969940887100174),
        ] {
            assert!((average_path_length(n) - want).abs() < 1e-9, "c({n})");
        }
    }

    #[test]
    fn an_outlier_scores_high_and_its_metric_takes_the_blame() {
        // Two metrics spread evenly over small ranges and one point far out on metric 1 only,
        // all in the training sample as in the paper's unsupervised setting (a point beyond the
        // training range would share the path of the most extreme training points).
        let mut values: Vec<f32> = (0..1000u64)
            .flat_map(|i| {
                [
                    ((i * 7919) % 1000) as f32 / 1000.0 * 0.1,
                    ((i * 104_729) % 997) as f32 / 997.0 * 0.06,
                ]
            })
            .collect();
        values.extend([0.05, 0.9]);
        let input = MtsInput::new(&values, 2);
        let mut det = Iforest::new(IforestConfig::default()).unwrap();
        det.fit(&input, &FitOptions::default()).unwrap();
        let scores = det.score(&input).unwrap();
        let last = scores.total.len() - 1;
        let inlier_mean = scores.total[..last].iter().sum::<f64>() / last as f64;
        // scikit-learn 1.9.1's IsolationForest on the same data, random_state 0..9: outlier
        // 0.629-0.662, mean inlier 0.503-0.510 (-score_samples).
        let outlier = scores.total[last];
        assert!((0.61..0.68).contains(&outlier), "outlier scored {outlier}");
        let inliers = 0.495..0.515;
        assert!(
            inliers.contains(&inlier_mean),
            "inliers scored {inlier_mean}"
        );
        let (a, b) = (scores.per_metric[2 * last], scores.per_metric[2 * last + 1]);
        assert!(b > 1.5 * a, "metric 1 should dominate: {a} vs {b}");
        assert!(((a + b) as f64 - scores.total[last]).abs() < 1e-6);
    }

    #[test]
    fn a_window_of_constant_rows_is_a_leaf() {
        let values = vec![0.5f32; 40];
        let mut det = Iforest::new(IforestConfig::default()).unwrap();
        det.fit(&MtsInput::new(&values, 2), &FitOptions::default())
            .unwrap();
        let scores = det.score(&MtsInput::new(&values, 2)).unwrap();
        assert!(scores.total.iter().all(|s| s.is_finite()));
    }
}
