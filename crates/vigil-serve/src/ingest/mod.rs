//! What arrives, in any ingest format, turned into points of entities' metrics: which series
//! belong to which entity and metric (the label rules), and which values are refused.

pub mod csv_upload;
pub mod import;
pub mod pull;
pub mod remote_write;

use crate::config::LabelRules;
use crate::error::ServeError;
use crate::shard::ShardConfig;
use std::collections::{BTreeMap, HashMap};

/// One series as sent: its labels and its (milliseconds, value) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub points: Vec<(i64, f64)>,
}

/// The latest time a sample may have, in milliseconds since the epoch: 2^53 (about the year
/// 287,000), so that differences and successors of times never overflow.
pub const MAX_TS: i64 = 1 << 53;

/// The NaN Prometheus sends when a series has gone (`value.StaleNaN`): a gap, not a value.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One value of one of the model's metrics of one entity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Index into [`Batch::entities`].
    pub entity: usize,
    /// Index into the model's metric names.
    pub metric: usize,
    pub ts: i64,
    pub value: f64,
}

/// A request's points, grouped by entity.
#[derive(Debug, Default)]
pub struct Batch {
    /// Entities in the order first seen, each with the labels its output series keep (the
    /// input's labels less the metric's name and the labels that name a metric).
    pub entities: Vec<(String, Vec<(String, String)>)>,
    pub points: Vec<Point>,
    /// Samples of series that name no entity or none of the model's metrics, or staleness markers.
    pub ignored: u64,
}

/// The metric a series is, by the rules: its `__name__`, followed by the rule's metric labels
/// the series has, as `name{label="value",...}` (in the rule's order), or `None` without a name.
pub fn metric_key(labels: &[(String, String)], rules: &LabelRules) -> Option<String> {
    let get = |name: &str| {
        labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let name = get("__name__")?;
    let extra: Vec<String> = rules
        .metric_labels
        .iter()
        .filter_map(|l| get(l).map(|v| format!("{l}=\"{v}\"")))
        .collect();
    Some(if extra.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", extra.join(","))
    })
}

/// Sorts `series` into entities and the model's metrics. Refused as a whole (400), naming the
/// series and time: a NaN that is not a staleness marker, an infinite value, or two different
/// values of one series at one time.
pub fn to_batch(
    series: Vec<Series>,
    rules: &LabelRules,
    metrics: &[String],
    shard: Option<&ShardConfig>,
) -> Result<Batch, ServeError> {
    let metric_index: HashMap<&str, usize> = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut batch = Batch::default();
    let mut entity_index: HashMap<String, usize> = HashMap::new();
    let mut seen: HashMap<(usize, usize, i64), f64> = HashMap::new();
    for s in series {
        check_labels(&s.labels)?;
        let entity = s.labels.iter().find(|(n, _)| *n == rules.entity);
        let metric =
            metric_key(&s.labels, rules).and_then(|k| metric_index.get(k.as_str()).copied());
        let (Some((_, entity)), Some(metric)) = (entity, metric) else {
            batch.ignored += s.points.len() as u64;
            continue;
        };
        if !crate::shard::owns(shard, entity) {
            // Another instance's entity.
            batch.ignored += s.points.len() as u64;
            continue;
        }
        if entity.is_empty() || entity.len() > 256 {
            return Err(ServeError::BadRequest(format!(
                "entity label `{}` must be 1 to 256 bytes, not {}",
                rules.entity,
                entity.len()
            )));
        }
        let e = match entity_index.get(entity) {
            Some(&e) => e,
            None => {
                // `for`, `tenant` and `metric` are vigil's own output labels.
                let kept = s
                    .labels
                    .iter()
                    .filter(|(n, _)| {
                        !matches!(n.as_str(), "__name__" | "for" | "tenant" | "metric")
                            && !rules.metric_labels.contains(n)
                    })
                    .cloned()
                    .collect();
                batch.entities.push((entity.clone(), kept));
                entity_index.insert(entity.clone(), batch.entities.len() - 1);
                batch.entities.len() - 1
            }
        };
        for (ts, value) in s.points {
            if value.to_bits() == STALE_NAN_BITS {
                batch.ignored += 1;
                continue;
            }
            if !(0..=MAX_TS).contains(&ts) {
                return Err(ServeError::BadRequest(format!(
                    "{} of entity `{entity}` has the time {ts}, outside 0..={MAX_TS}; send \
                     milliseconds since the epoch",
                    metrics[metric]
                )));
            }
            if !value.is_finite() {
                return Err(ServeError::BadRequest(format!(
                    "{} of entity `{entity}` is {value} at {ts} ms; send finite values (leave a \
                     missing sample out: the model's missing-data policy fills it)",
                    metrics[metric]
                )));
            }
            match seen.insert((e, metric, ts), value) {
                Some(earlier) if earlier != value => {
                    return Err(ServeError::BadRequest(format!(
                    "{} of entity `{entity}` has two values at {ts} ms ({earlier} and {value}); \
                         send one value per series and time",
                    metrics[metric]
                )))
                }
                Some(_) => continue,
                None => batch.points.push(Point {
                    entity: e,
                    metric,
                    ts,
                    value,
                }),
            }
        }
    }
    Ok(batch)
}

/// Refuses a label name that is not one (`[a-zA-Z_][a-zA-Z0-9_]*`, as Prometheus has them)
/// and a name or value holding a NUL (which PostgreSQL cannot keep as text).
fn check_labels(labels: &[(String, String)]) -> Result<(), ServeError> {
    for (name, value) in labels {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ServeError::BadRequest(format!(
                "`{}` is not a label name: use letters, digits and `_`, not starting with a digit",
                name.escape_debug()
            )));
        }
        if value.contains('\0') || value.len() > 4096 {
            return Err(ServeError::BadRequest(format!(
                "label `{name}` has a value with a NUL character or over 4096 bytes"
            )));
        }
    }
    Ok(())
}

/// The batch's points per entity, by time: `entity -> ts -> [(metric, value)]`.
pub fn by_entity_and_time(batch: &Batch) -> BTreeMap<usize, BTreeMap<i64, Vec<(usize, f64)>>> {
    let mut grouped: BTreeMap<usize, BTreeMap<i64, Vec<(usize, f64)>>> = BTreeMap::new();
    for p in &batch.points {
        grouped
            .entry(p.entity)
            .or_default()
            .entry(p.ts)
            .or_default()
            .push((p.metric, p.value));
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn series_become_entities_and_metrics_by_the_label_rules() {
        let rules = LabelRules {
            entity: "instance".into(),
            metric_labels: vec!["mode".into()],
        };
        let metrics = vec!["cpu{mode=\"idle\"}".to_string(), "mem".to_string()];
        let batch = to_batch(
            vec![
                series(
                    &[
                        ("__name__", "cpu"),
                        ("mode", "idle"),
                        ("instance", "a"),
                        ("job", "n"),
                    ],
                    &[(1, 0.5)],
                ),
                series(&[("__name__", "mem"), ("instance", "a")], &[(1, 2.0)]),
                series(&[("__name__", "up"), ("instance", "a")], &[(1, 1.0)]),
                series(&[("__name__", "mem")], &[(1, 1.0)]),
                series(
                    &[("__name__", "mem"), ("instance", "b")],
                    &[(1, f64::from_bits(STALE_NAN_BITS))],
                ),
            ],
            &rules,
            &metrics,
            None,
        )
        .unwrap();
        assert_eq!(batch.ignored, 3);
        assert_eq!(batch.entities[0].0, "a");
        // The output keeps the input's labels but the name and the metric's own labels.
        assert_eq!(
            batch.entities[0].1,
            vec![
                ("instance".to_string(), "a".to_string()),
                ("job".into(), "n".into())
            ]
        );
        assert_eq!(batch.points.len(), 2);
        assert_eq!((batch.points[1].metric, batch.points[1].value), (1, 2.0));
    }

    #[test]
    fn times_out_of_range_bad_label_names_and_nul_characters_are_refused() {
        let rules = LabelRules::default();
        let metrics = vec!["cpu".to_string()];
        let a = [("__name__", "cpu"), ("instance", "a")];
        for ts in [-1, MAX_TS + 1, i64::MAX, i64::MIN] {
            let err = to_batch(vec![series(&a, &[(ts, 1.0)])], &rules, &metrics, None).unwrap_err();
            assert!(err.to_string().contains("outside"), "{err}");
        }
        assert!(to_batch(vec![series(&a, &[(MAX_TS, 1.0)])], &rules, &metrics, None).is_ok());
        for labels in [
            [("__name__", "cpu"), ("in-stance", "a")],
            [("__name__", "cpu"), ("instance", "a\0b")],
            [("__name__", "cpu"), ("9x", "a")],
        ] {
            assert!(
                matches!(
                    to_batch(vec![series(&labels, &[(1, 1.0)])], &rules, &metrics, None),
                    Err(ServeError::BadRequest(_))
                ),
                "{labels:?}"
            );
        }
    }

    #[test]
    fn non_finite_values_and_conflicting_duplicates_refuse_the_whole_request() {
        let rules = LabelRules::default();
        let metrics = vec!["cpu".to_string()];
        let a = [("__name__", "cpu"), ("instance", "a")];
        for bad in [f64::NAN, f64::INFINITY] {
            let err = to_batch(
                vec![series(&a, &[(1, 1.0), (2, bad)])],
                &rules,
                &metrics,
                None,
            )
            .unwrap_err();
            assert!(err.to_string().contains("at 2 ms"), "{err}");
        }
        let twice = vec![series(&a, &[(1, 1.0)]), series(&a, &[(1, 2.0)])];
        assert!(to_batch(twice, &rules, &metrics, None)
            .unwrap_err()
            .to_string()
            .contains("two values"));
        // The same value twice is one point (a sender's retry).
        let same = vec![series(&a, &[(1, 1.0)]), series(&a, &[(1, 1.0)])];
        assert_eq!(
            to_batch(same, &rules, &metrics, None).unwrap().points.len(),
            1
        );
    }
}
