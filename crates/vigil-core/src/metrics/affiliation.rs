//! Affiliation precision and recall (Huet, Navarro and Rossi, KDD 2022).
//!
//! A labelled point `i` is the interval `[i, i+1)`; consecutive ones form an event. Each true
//! event `J` owns an affiliation zone `E` bounded by the midpoints to its neighbouring events
//! (clipped to the series `[0, n)`). Inside a zone:
//! - the precision of a predicted point `x` is the probability that a point drawn uniformly in `E`
//!   lies at least as far from `J` as `x` does; precision averages it over the predicted points
//!   in the zone, then over the zones that hold predictions;
//! - the recall of a true point `y` is the probability that a point drawn uniformly in `E` lies at
//!   least as far from `y` as the nearest prediction does; recall averages it over `J`, then over
//!   all zones.
//!
//! Written from the paper's definitions with closed-form integrals (no maintained crate exists);
//! checked against the authors' reference code (as vendored by PyPI `tsb-ad` 1.5) in
//! `tests/goldens.rs`.

use super::adjust::segments;

/// An interval `[start, end)` on the time axis.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: f64,
    end: f64,
}

impl Span {
    fn len(&self) -> f64 {
        self.end - self.start
    }

    fn clip(&self, to: Span) -> Option<Span> {
        let (start, end) = (self.start.max(to.start), self.end.min(to.end));
        (end > start).then_some(Span { start, end })
    }
}

/// Affiliation precision and recall of binary predictions against labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affiliation {
    /// Mean precision over the zones holding a prediction; `None` when nothing is predicted.
    pub precision: Option<f64>,
    /// Mean recall over all zones.
    pub recall: f64,
}

impl Affiliation {
    /// Harmonic mean of precision and recall; 0 when nothing is predicted.
    pub fn f1(&self) -> f64 {
        match self.precision {
            Some(p) if p + self.recall > 0.0 => 2.0 * p * self.recall / (p + self.recall),
            _ => 0.0,
        }
    }
}

fn events(flags: &[u8]) -> Vec<Span> {
    segments(flags)
        .into_iter()
        .map(|r| Span {
            start: r.start as f64,
            end: r.end as f64,
        })
        .collect()
}

/// Zones bounded by midpoints between consecutive spans, the outer ones clipped to `range`.
fn zones(spans: &[Span], range: Span) -> Vec<Span> {
    (0..spans.len())
        .map(|k| Span {
            start: if k == 0 {
                range.start
            } else {
                (spans[k - 1].end + spans[k].start) / 2.0
            },
            end: if k + 1 == spans.len() {
                range.end
            } else {
                (spans[k].end + spans[k + 1].start) / 2.0
            },
        })
        .collect()
}

/// ∫ max(0, s·x − c) dx over [u, v], for a slope s > 0.
fn ramp_up(u: f64, v: f64, s: f64, c: f64) -> f64 {
    let p = |x: f64| (s * x - c).max(0.0).powi(2) / (2.0 * s);
    p(v) - p(u)
}

/// ∫ max(0, c − s·x) dx over [u, v], for a slope s > 0.
fn ramp_down(u: f64, v: f64, s: f64, c: f64) -> f64 {
    let p = |x: f64| (c - s * x).max(0.0).powi(2) / (2.0 * s);
    p(u) - p(v)
}

/// ∫ over `i` of P(d(X, J) ≥ d(x, J)) dx with X uniform in zone `e`.
///
/// Left of J (x < j.start, distance j.start − x) the survival is
/// [(x − e.start) + max(0, x − (j.start + j.end − e.end))] / |E|; right of J symmetrically;
/// inside J it is 1.
fn precision_integral(i: Span, j: Span, e: Span) -> f64 {
    let width = e.len();
    let mut total = 0.0;
    if let Some(left) = i.clip(Span {
        start: f64::NEG_INFINITY,
        end: j.start,
    }) {
        let (u, v) = (left.start, left.end);
        let linear = ((v - e.start).powi(2) - (u - e.start).powi(2)) / 2.0;
        total += (linear + ramp_up(u, v, 1.0, j.start + j.end - e.end)) / width;
    }
    if let Some(inside) = i.clip(j) {
        total += inside.len();
    }
    if let Some(right) = i.clip(Span {
        start: j.end,
        end: f64::INFINITY,
    }) {
        let (u, v) = (right.start, right.end);
        let linear = ((e.end - u).powi(2) - (e.end - v).powi(2)) / 2.0;
        total += (linear + ramp_down(u, v, 1.0, j.start + j.end - e.start)) / width;
    }
    total
}

/// ∫ over `part` (a piece of the true event) of P(|X − y| ≥ d(y, i)) dy, X uniform in zone `e`,
/// where `i` is the prediction nearest to that piece.
///
/// Left of I (y < i.start) the survival is [max(0, 2y − e.start − i.start) + (e.end − i.start)] / |E|;
/// right of I it is [(i.end − e.start) + max(0, e.end + i.end − 2y)] / |E|; inside I it is 1.
fn recall_integral(part: Span, i: Span, e: Span) -> f64 {
    let width = e.len();
    let mut total = 0.0;
    if let Some(left) = part.clip(Span {
        start: f64::NEG_INFINITY,
        end: i.start,
    }) {
        let (u, v) = (left.start, left.end);
        total += (ramp_up(u, v, 2.0, e.start + i.start) + (e.end - i.start) * (v - u)) / width;
    }
    if let Some(inside) = part.clip(i) {
        total += inside.len();
    }
    if let Some(right) = part.clip(Span {
        start: i.end,
        end: f64::INFINITY,
    }) {
        let (u, v) = (right.start, right.end);
        total += ((i.end - e.start) * (v - u) + ramp_down(u, v, 2.0, e.end + i.end)) / width;
    }
    total
}

/// Affiliation precision and recall; `None` when there is no labelled event.
pub fn affiliation(pred: &[u8], labels: &[u8]) -> Option<Affiliation> {
    assert_eq!(
        pred.len(),
        labels.len(),
        "predictions and labels differ in length"
    );
    let truth = events(labels);
    if truth.is_empty() {
        return None;
    }
    let predicted = events(pred);
    let range = Span {
        start: 0.0,
        end: labels.len() as f64,
    };
    let (mut precision_sum, mut zones_with_predictions, mut recall_sum) = (0.0, 0usize, 0.0);
    for (j, e) in truth.iter().zip(zones(&truth, range)) {
        let inside: Vec<Span> = predicted.iter().filter_map(|p| p.clip(e)).collect();
        if inside.is_empty() {
            continue; // precision undefined in this zone, recall 0
        }
        let predicted_len: f64 = inside.iter().map(Span::len).sum();
        let p: f64 = inside.iter().map(|&i| precision_integral(i, *j, e)).sum();
        precision_sum += p / predicted_len;
        zones_with_predictions += 1;
        // Split J among the predictions by their own midpoints (nearest prediction wins).
        let r: f64 = inside
            .iter()
            .zip(zones(&inside, e))
            .filter_map(|(&i, own)| j.clip(own).map(|part| recall_integral(part, i, e)))
            .sum();
        recall_sum += r / j.len();
    }
    Some(Affiliation {
        precision: (zones_with_predictions > 0)
            .then(|| precision_sum / zones_with_predictions as f64),
        recall: recall_sum / truth.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_prediction_scores_one() {
        let labels = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0];
        let a = affiliation(&labels, &labels).unwrap();
        assert!((a.precision.unwrap() - 1.0).abs() < 1e-12);
        assert!((a.recall - 1.0).abs() < 1e-12);
    }

    #[test]
    fn no_prediction_has_no_precision_and_zero_recall() {
        let a = affiliation(&[0; 6], &[0, 1, 1, 0, 0, 0]).unwrap();
        assert_eq!(a.precision, None);
        assert_eq!(a.recall, 0.0);
        assert_eq!(a.f1(), 0.0);
    }

    #[test]
    fn a_prediction_next_to_the_event_beats_one_far_away() {
        let labels = [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut near = [0u8; 20];
        near[7] = 1;
        let mut far = [0u8; 20];
        far[17] = 1;
        let (near, far) = (
            affiliation(&near, &labels).unwrap(),
            affiliation(&far, &labels).unwrap(),
        );
        assert!(near.precision.unwrap() > far.precision.unwrap());
        assert!(near.recall > far.recall);
    }

    #[test]
    fn closed_forms_match_numerical_integration() {
        let (j, e) = (
            Span {
                start: 4.0,
                end: 6.0,
            },
            Span {
                start: 1.0,
                end: 12.0,
            },
        );
        let i = Span {
            start: 2.0,
            end: 11.0,
        };
        let steps = 200_000;
        let h = i.len() / steps as f64;
        let survival_p = |x: f64| {
            let d = if x < j.start {
                j.start - x
            } else if x > j.end {
                x - j.end
            } else {
                0.0
            };
            if d == 0.0 {
                1.0
            } else {
                ((j.start - d - e.start).max(0.0) + (e.end - j.end - d).max(0.0)) / e.len()
            }
        };
        let numeric: f64 = (0..steps)
            .map(|k| survival_p(i.start + (k as f64 + 0.5) * h) * h)
            .sum();
        // The survival jumps at J's edges (1 inside, |E \ J| / |E| just outside), which the midpoint
        // rule resolves only to about h.
        assert!((numeric - precision_integral(i, j, e)).abs() < 1e-4);

        let pred = Span {
            start: 7.0,
            end: 8.0,
        };
        let part = Span {
            start: 4.0,
            end: 6.0,
        };
        let h = part.len() / steps as f64;
        let survival_r = |y: f64| {
            let d = if y < pred.start {
                pred.start - y
            } else if y > pred.end {
                y - pred.end
            } else {
                0.0
            };
            if d == 0.0 {
                1.0
            } else {
                ((y - d - e.start).max(0.0) + (e.end - y - d).max(0.0)) / e.len()
            }
        };
        let numeric: f64 = (0..steps)
            .map(|k| survival_r(part.start + (k as f64 + 0.5) * h) * h)
            .sum();
        assert!((numeric - recall_integral(part, pred, e)).abs() < 1e-4);
    }
}
