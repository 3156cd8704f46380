//! Clustering (OmniTransfer §III-B): the pivot segment, every segment aligned to it, then
//! hierarchical agglomerative clustering with average linkage on Euclidean distances (kodama),
//! cut into a number of clusters or at a distance. Each cluster keeps its centroid (the mean of
//! its aligned segments) and the segments nearest it (the paper trains base models on five).

use crate::align::{roll, Aligner, Reference};
use crate::segments::Segment;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Where the dendrogram is cut.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cut {
    /// Into this many clusters.
    Clusters(usize),
    /// Between merges at an average distance above this (per value of a segment, see
    /// [`distance`]).
    Distance(f64),
}

/// Why segments cannot be clustered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClusterError {
    #[error("there are no segments to cluster: every entity is shorter than one segment")]
    Empty,
    #[error("segment {index} has {got} (steps x metrics) but the first has {want}; every entity must have the same metrics")]
    Shape {
        index: usize,
        got: String,
        want: String,
    },
    #[error("cannot cut {segments} segments into {clusters} clusters; ask for 1 to {segments}")]
    Clusters { segments: usize, clusters: usize },
}

/// The result of I-HAC.
#[derive(Debug, Clone)]
pub struct Clustering {
    /// Index of the pivot segment (least total distance to all others).
    pub pivot: usize,
    /// The pivot itself, which new data is aligned to before matching.
    pub pivot_segment: Segment,
    /// Roll that aligned each segment to the pivot ([`crate::align::roll`]).
    pub shifts: Vec<usize>,
    /// Cluster of each segment, numbered by first appearance.
    pub labels: Vec<usize>,
    /// Each cluster's centroid, metric-major like a segment's values.
    pub centroids: Vec<Vec<f32>>,
    /// Each cluster's segments nearest its centroid, nearest first.
    pub nearest: Vec<Vec<usize>>,
    /// Each segment's [`distance`] to its cluster's centroid.
    pub distances: Vec<f64>,
}

/// Euclidean distance between two segments' values, divided by the square root of their
/// length, so that thresholds do not depend on the segment's size (for standardised segments:
/// 0 identical, about 1.4 unrelated, 2 opposite).
pub fn distance(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (*x - *y) as f64;
            d * d
        })
        .sum();
    (sum / a.len().max(1) as f64).sqrt()
}

/// Clusters `segments` (all the same shape), keeping `nearest` segments per cluster.
pub fn cluster(segments: &[Segment], cut: Cut, nearest: usize) -> Result<Clustering, ClusterError> {
    cluster_with(segments, cut, nearest, true)
}

/// [`cluster`], with phase alignment to the pivot optional (`align: false` is the paper's
/// ablation C2: every shift 0).
pub fn cluster_with(
    segments: &[Segment],
    cut: Cut,
    nearest: usize,
    align: bool,
) -> Result<Clustering, ClusterError> {
    let first = segments.first().ok_or(ClusterError::Empty)?;
    for (index, s) in segments.iter().enumerate() {
        if (s.len, s.metrics) != (first.len, first.metrics) {
            return Err(ClusterError::Shape {
                index,
                got: format!("{} x {}", s.len, s.metrics),
                want: format!("{} x {}", first.len, first.metrics),
            });
        }
    }
    let n = segments.len();
    if let Cut::Clusters(k) = cut {
        if k == 0 || k > n {
            return Err(ClusterError::Clusters {
                segments: n,
                clusters: k,
            });
        }
    }
    // The pivot: least total distance to the others, before alignment.
    let totals: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            segments
                .iter()
                .map(|s| distance(&segments[i].values, &s.values))
                .sum()
        })
        .collect();
    let pivot = (0..n).fold(0, |best, i| if totals[i] < totals[best] { i } else { best });
    let aligner = Aligner::new(first.len);
    let reference = aligner.reference(&segments[pivot]);
    let (shifts, aligned): (Vec<usize>, Vec<Segment>) = segments
        .par_iter()
        .map(|s| {
            let shift = if align {
                aligner.best_shift(&reference, s).0
            } else {
                0
            };
            (shift, roll(s, shift))
        })
        .unzip();
    let labels = hac(&aligned, cut);
    let k = labels.iter().max().map_or(0, |&l| l + 1);
    let dim = first.values.len();
    let mut centroids = vec![vec![0.0f32; dim]; k];
    let mut sizes = vec![0usize; k];
    for (s, &l) in aligned.iter().zip(&labels) {
        sizes[l] += 1;
        centroids[l]
            .iter_mut()
            .zip(&s.values)
            .for_each(|(c, v)| *c += v);
    }
    for (c, &size) in centroids.iter_mut().zip(&sizes) {
        c.iter_mut().for_each(|v| *v /= size as f32);
    }
    let distances: Vec<f64> = aligned
        .par_iter()
        .zip(&labels)
        .map(|(s, &l)| distance(&s.values, &centroids[l]))
        .collect();
    let nearest = (0..k)
        .map(|l| {
            let mut members: Vec<(f64, usize)> = (0..n)
                .filter(|&i| labels[i] == l)
                .map(|i| (distances[i], i))
                .collect();
            members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            members.into_iter().take(nearest).map(|(_, i)| i).collect()
        })
        .collect();
    Ok(Clustering {
        pivot,
        pivot_segment: segments[pivot].clone(),
        shifts,
        labels,
        centroids,
        nearest,
        distances,
    })
}

/// Average-linkage HAC of `segments`, cut by `cut`; labels numbered by first appearance.
fn hac(segments: &[Segment], cut: Cut) -> Vec<usize> {
    let n = segments.len();
    if n == 1 {
        return vec![0];
    }
    // The condensed upper triangle, row by row, as kodama takes it.
    let mut condensed: Vec<f64> = (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            (i + 1..n).map(move |j| distance(&segments[i].values, &segments[j].values))
        })
        .collect();
    // Merges come in order of rising distance: the cut keeps a prefix of them.
    vigil_models::hac::average_linkage_labels(&mut condensed, n, |s, dissimilarity| match cut {
        Cut::Clusters(k) => s < n - k,
        Cut::Distance(limit) => dissimilarity <= limit,
    })
}

impl Clustering {
    /// The cluster nearest a new segment: aligned to the pivot, then the centroid at the least
    /// [`distance`]. Returns the cluster, the distance and the roll used.
    pub fn assign(&self, segment: &Segment) -> (usize, f64, usize) {
        let aligner = Aligner::new(self.pivot_segment.len);
        let reference: Reference = aligner.reference(&self.pivot_segment);
        let (shift, _) = aligner.best_shift(&reference, segment);
        let aligned = roll(segment, shift);
        let (cluster, d) = self
            .centroids
            .iter()
            .enumerate()
            .map(|(l, c)| (l, distance(&aligned.values, c)))
            .fold(
                (0, f64::INFINITY),
                |best, (l, d)| if d < best.1 { (l, d) } else { best },
            );
        (cluster, d, shift)
    }

    /// One cluster per entity (`entities` of them): the cluster most of its segments are in
    /// (the lowest-numbered on a tie); `None` for an entity without segments.
    pub fn entity_clusters(&self, segments: &[Segment], entities: usize) -> Vec<Option<usize>> {
        let k = self.centroids.len();
        let mut votes = vec![vec![0usize; k]; entities];
        for (s, &l) in segments.iter().zip(&self.labels) {
            votes[s.entity][l] += 1;
        }
        votes
            .iter()
            .map(|v| {
                let most = *v.iter().max()?;
                (most > 0).then(|| v.iter().position(|&c| c == most).expect("a maximum exists"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(entity: usize, values: Vec<f32>, len: usize) -> Segment {
        Segment {
            entity,
            start: 0,
            len,
            metrics: values.len() / len,
            values,
        }
    }

    #[test]
    fn shifted_copies_of_two_shapes_make_two_clusters() {
        let len = 40;
        let shape = |kind: usize, delay: usize| {
            let mut v: Vec<f32> = (0..len)
                .map(|t| {
                    let x = ((t + len - delay) % len) as f32 / len as f32 * std::f32::consts::TAU;
                    if kind == 0 {
                        x.sin()
                    } else {
                        (2.0 * x).sin() + 0.5 * x.cos()
                    }
                })
                .collect();
            crate::segments::standardise(&mut v, len);
            v
        };
        let segments: Vec<Segment> = (0..10)
            .map(|e| segment(e, shape(e % 2, (e * 7) % len), len))
            .collect();
        let c = cluster(&segments, Cut::Clusters(2), 3).unwrap();
        let truth: Vec<usize> = (0..10).map(|e| e % 2).collect();
        assert_eq!(
            crate::rand_index::adjusted_rand_index(&c.labels, &truth),
            1.0
        );
        assert_eq!(
            c.nearest.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3]
        );
        // Without alignment the shifted copies no longer look alike (the ablation C2).
        let unaligned = cluster_with(&segments, Cut::Clusters(2), 3, false).unwrap();
        assert!(unaligned.shifts.iter().all(|&s| s == 0));
        assert!(crate::rand_index::adjusted_rand_index(&unaligned.labels, &truth) < 1.0);
        // Cut by distance: the copies are identical once aligned, the shapes far apart.
        let by_distance = cluster(&segments, Cut::Distance(0.1), 3).unwrap();
        assert_eq!(by_distance.labels, c.labels);
        // A new shifted copy of shape 1 is matched to shape 1's cluster, at distance ~0.
        let (cluster_of_new, d, _) = c.assign(&segment(99, shape(1, 13), len));
        assert_eq!(cluster_of_new, c.labels[1]);
        assert!(d < 1e-4, "{d}");
        assert_eq!(
            c.entity_clusters(&segments, 11),
            (0..11)
                .map(|e| (e < 10).then(|| c.labels[e]))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let s = segment(0, vec![0.0; 10], 10);
        assert_eq!(
            cluster(&[], Cut::Clusters(1), 5).unwrap_err(),
            ClusterError::Empty
        );
        assert!(matches!(
            cluster(std::slice::from_ref(&s), Cut::Clusters(2), 5),
            Err(ClusterError::Clusters { .. })
        ));
        let other = segment(1, vec![0.0; 12], 12);
        assert!(matches!(
            cluster(&[s, other], Cut::Clusters(1), 5),
            Err(ClusterError::Shape { index: 1, .. })
        ));
    }
}
