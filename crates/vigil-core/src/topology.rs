//! A system's topology: its components, the metrics each reports, and the calls between them
//! (TopoMAD's input besides the metrics).
//!
//! Metrics are tied to components by their column names, `component.metric` (split at the
//! first dot: a component name holds no dot, a metric name may). Every component must report
//! the same metrics, so that one time step is a `components x metrics` matrix. The calls come
//! from an edge-list file, one `caller,callee` pair per line (a header `source,target` and
//! lines starting with `#` are skipped). A topology is checked against the data when it is
//! built and travels with the model, so that detection refuses a graph that changed.

use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Components (nodes) of a system, their common metrics and their links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Component names, in the order of their first column in the data.
    pub components: Vec<String>,
    /// The metrics every component reports, in the order of the first component's columns.
    pub metrics: Vec<String>,
    /// The data column of component `n`'s metric `c` at `columns[n * metrics.len() + c]`.
    pub columns: Vec<usize>,
    /// Directed edges `(caller, callee)` between component indices, without repeats or loops.
    pub edges: Vec<(usize, usize)>,
}

/// One line of an edge-list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLine {
    /// The calling component.
    pub source: String,
    /// The called component.
    pub target: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// Reads an edge list: `caller,callee` per line; a `source,target` header, blank lines and
/// `#` comments are skipped.
pub fn read_edges(path: &Path) -> Result<Vec<EdgeLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    let mut edges = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = content.split(',').map(str::trim).collect();
        if edges.is_empty() && cells == ["source", "target"] {
            continue;
        }
        match cells.as_slice() {
            [source, target] if !source.is_empty() && !target.is_empty() => edges.push(EdgeLine {
                source: source.to_string(),
                target: target.to_string(),
                line,
            }),
            _ => {
                return Err(CoreError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column: None,
                    message: format!(
                        "expected `caller,callee` (two component names), found `{content}`"
                    ),
                })
            }
        }
    }
    if edges.is_empty() {
        return Err(CoreError::file(
            path,
            "holds no edge; write one `caller,callee` line per call between components",
        ));
    }
    Ok(edges)
}

impl Topology {
    /// The topology of data whose columns are `metric_names` (`component.metric`) with the
    /// edges read from `edges_file`: every column must name a component and a metric, every
    /// component report the same metrics, and every edge name components that have metrics.
    /// Errors name the data file's header (line 1) for a column, the edge file's line for an
    /// edge.
    pub fn from_columns(
        metric_names: &[String],
        data_file: &Path,
        edges: &[EdgeLine],
        edges_file: &Path,
    ) -> Result<Topology> {
        let header_error = |name: &str, message: String| CoreError::Parse {
            path: data_file.to_path_buf(),
            line: 1,
            column: Some(name.to_string()),
            message,
        };
        let mut components: Vec<String> = Vec::new();
        let mut by_component: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (column, name) in metric_names.iter().enumerate() {
            let Some((component, metric)) = name.split_once('.') else {
                return Err(header_error(
                    name,
                    format!(
                        "column `{name}` does not name a component: a topology needs every \
                         metric column named `component.metric` (e.g. `db.cpu`)"
                    ),
                ));
            };
            if component.is_empty() || metric.is_empty() {
                return Err(header_error(
                    name,
                    format!(
                        "column `{name}` has an empty component or metric name; name it \
                         `component.metric`"
                    ),
                ));
            }
            let metrics = by_component
                .entry(component.to_string())
                .or_insert_with(|| {
                    components.push(component.to_string());
                    BTreeMap::new()
                });
            if metrics.insert(metric.to_string(), column).is_some() {
                return Err(header_error(
                    name,
                    format!("column `{name}` appears twice; give every column a distinct name"),
                ));
            }
        }
        let first = components.first().ok_or_else(|| {
            CoreError::file(data_file, "has no metric column, so it has no component")
        })?;
        // The metric order of the first component's columns.
        let mut metrics: Vec<(usize, String)> = by_component[first]
            .iter()
            .map(|(metric, &column)| (column, metric.clone()))
            .collect();
        metrics.sort();
        let metrics: Vec<String> = metrics.into_iter().map(|(_, m)| m).collect();
        let expected: BTreeSet<&String> = metrics.iter().collect();
        for component in &components {
            let has: BTreeSet<&String> = by_component[component].keys().collect();
            if has != expected {
                let missing: Vec<&str> = expected.difference(&has).map(|s| s.as_str()).collect();
                let extra: Vec<&str> = has.difference(&expected).map(|s| s.as_str()).collect();
                return Err(header_error(
                    component,
                    format!(
                        "component `{component}` reports different metrics from `{first}` \
                         (missing: [{}]; extra: [{}]); every component must report the same \
                         metrics — add the missing columns or drop the extra ones",
                        missing.join(", "),
                        extra.join(", ")
                    ),
                ));
            }
        }
        let columns = components
            .iter()
            .flat_map(|component| metrics.iter().map(|m| by_component[component][m]))
            .collect();
        let index = |name: &str, edge: &EdgeLine| {
            components
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| CoreError::Parse {
                    path: edges_file.to_path_buf(),
                    line: edge.line,
                    column: None,
                    message: format!(
                        "edge names component `{name}`, which has no metric column in the data \
                         (components: {}); fix the name or add its `{name}.<metric>` columns",
                        components.join(", ")
                    ),
                })
        };
        let mut pairs = BTreeSet::new();
        let mut edges_out = Vec::new();
        for edge in edges {
            let pair = (index(&edge.source, edge)?, index(&edge.target, edge)?);
            if pair.0 != pair.1 && pairs.insert(pair) {
                edges_out.push(pair);
            }
        }
        // Sorted, so that the same calls listed in another order are the same topology.
        edges_out.sort_unstable();
        Ok(Topology {
            components,
            metrics,
            columns,
            edges: edges_out,
        })
    }

    /// Checks a topology that did not come from [`Topology::from_columns`] (a config written by
    /// hand, a model file): at least one component and metric, `columns` a permutation of
    /// `0..components x metrics`, every edge between two different known components.
    pub fn check(&self) -> Result<()> {
        let (n, c) = (self.n_components(), self.n_metrics());
        let problem = if n == 0 || c == 0 {
            Some(format!(
                "it has {n} components and {c} metrics; it needs at least one of each"
            ))
        } else if self.columns.len() != n * c {
            Some(format!(
                "`columns` has {} entries for {n} components x {c} metrics",
                self.columns.len()
            ))
        } else {
            let mut seen = vec![false; n * c];
            let repeated = self
                .columns
                .iter()
                .find(|&&k| k >= n * c || std::mem::replace(&mut seen[k], true));
            match (
                repeated,
                self.edges
                    .iter()
                    .find(|&&(a, b)| a >= n || b >= n || a == b),
            ) {
                (Some(k), _) => Some(format!(
                    "`columns` must hold every column 0..{} once; {k} is out of range or repeated",
                    n * c
                )),
                (None, Some((a, b))) => Some(format!(
                    "edge ({a}, {b}) is a loop or names a component beyond the {n} there are"
                )),
                (None, None) => None,
            }
        };
        match problem {
            Some(problem) => Err(CoreError::invalid(format!("invalid topology: {problem}"))),
            None => Ok(()),
        }
    }

    /// Reads the edge list at `edges_file` and builds the topology of the data in `data_file`,
    /// whose columns are `metric_names` ([`Topology::from_columns`]).
    pub fn read(metric_names: &[String], data_file: &Path, edges_file: &Path) -> Result<Topology> {
        let edges = read_edges(edges_file)?;
        Topology::from_columns(metric_names, data_file, &edges, edges_file)
    }

    /// Number of components.
    pub fn n_components(&self) -> usize {
        self.components.len()
    }

    /// Number of metrics per component.
    pub fn n_metrics(&self) -> usize {
        self.metrics.len()
    }

    /// The component of every data column (`columns` inverted).
    pub fn component_of_column(&self) -> Vec<usize> {
        let mut of = vec![0; self.columns.len()];
        for (slot, &column) in self.columns.iter().enumerate() {
            of[column] = slot / self.n_metrics().max(1);
        }
        of
    }

    /// What differs between this topology (a model's) and `other` (the data's), in words, or
    /// `None` when they are the same graph over the same columns.
    pub fn difference(&self, other: &Topology) -> Option<String> {
        if self == other {
            return None;
        }
        let names = |t: &Topology| -> BTreeSet<String> { t.components.iter().cloned().collect() };
        let edge_names = |t: &Topology| -> BTreeSet<String> {
            t.edges
                .iter()
                .map(|&(a, b)| format!("{}->{}", t.components[a], t.components[b]))
                .collect()
        };
        let (mine, theirs) = (names(self), names(other));
        if mine != theirs {
            return Some(format!(
                "components differ (only the model's: [{}]; only the data's: [{}])",
                list(mine.difference(&theirs)),
                list(theirs.difference(&mine))
            ));
        }
        if self.metrics != other.metrics {
            return Some(format!(
                "metrics differ (the model's: [{}]; the data's: [{}])",
                self.metrics.join(", "),
                other.metrics.join(", ")
            ));
        }
        let (mine, theirs) = (edge_names(self), edge_names(other));
        if mine != theirs {
            return Some(format!(
                "edges differ (only the model's: [{}]; only the data's: [{}])",
                list(mine.difference(&theirs)),
                list(theirs.difference(&mine))
            ));
        }
        Some("the columns are in another order than the model was trained on".into())
    }
}

fn list<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn edge(source: &str, target: &str, line: usize) -> EdgeLine {
        EdgeLine {
            source: source.into(),
            target: target.into(),
            line,
        }
    }

    #[test]
    fn columns_in_any_order_map_to_components_and_metrics() {
        let cols = names(&["db.cpu", "web.lat", "db.lat", "web.cpu"]);
        let t = Topology::from_columns(
            &cols,
            Path::new("d"),
            &[edge("web", "db", 1)],
            Path::new("e"),
        )
        .unwrap();
        assert_eq!(t.components, ["db", "web"]);
        assert_eq!(t.metrics, ["cpu", "lat"]);
        assert_eq!(t.columns, [0, 2, 3, 1]);
        assert_eq!(t.edges, [(1, 0)]);
        assert_eq!(t.component_of_column(), [0, 1, 0, 1]);
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let p = Path::new("edges.csv");
        let ok = [edge("web", "db", 3)];
        let err = |cols: &[&str], edges: &[EdgeLine]| {
            Topology::from_columns(&names(cols), Path::new("data.csv"), edges, p)
                .unwrap_err()
                .to_string()
        };
        let unnamed = err(&["cpu"], &ok);
        assert!(unnamed.starts_with("data.csv:1: column cpu: "), "{unnamed}");
        let unknown = err(&["db.cpu", "web.cpu"], &[edge("web", "cache", 7)]);
        assert!(unknown.starts_with("edges.csv:7: "), "{unknown}");
        assert!(unknown.contains("`cache`"), "{unknown}");
        let uneven = err(&["db.cpu", "db.mem", "web.cpu"], &ok);
        assert!(uneven.contains("missing: [mem]"), "{uneven}");
    }

    #[test]
    fn reads_edge_files_with_header_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edges.csv");
        std::fs::write(&path, "source,target\n# calls\nweb, db\n\nweb,cache\n").unwrap();
        let edges = read_edges(&path).unwrap();
        assert_eq!(edges, [edge("web", "db", 3), edge("web", "cache", 5)]);
        std::fs::write(&path, "web,db\nweb\n").unwrap();
        let err = read_edges(&path).unwrap_err().to_string();
        assert!(err.contains(":2: expected `caller,callee`"), "{err}");
    }

    #[test]
    fn edge_order_does_not_matter_and_bad_topologies_are_refused() {
        let cols = names(&["a.x", "b.x", "c.x"]);
        let p = Path::new("e");
        let one = [edge("a", "b", 1), edge("b", "c", 2)];
        let other = [edge("b", "c", 1), edge("a", "b", 2)];
        let t1 = Topology::from_columns(&cols, p, &one, p).unwrap();
        let t2 = Topology::from_columns(&cols, p, &other, p).unwrap();
        assert_eq!(t1.difference(&t2), None);
        assert!(t1.check().is_ok());
        let mut bad = t1.clone();
        bad.edges.push((0, 9));
        assert!(bad.check().unwrap_err().to_string().contains("edge (0, 9)"));
        let mut bad = t1.clone();
        bad.columns = vec![0, 0, 1];
        assert!(bad.check().unwrap_err().to_string().contains("repeated"));
        let mut bad = t1;
        bad.metrics.clear();
        assert!(bad.check().is_err());
    }

    #[test]
    fn a_changed_graph_is_described() {
        let cols = names(&["a.x", "b.x", "c.x"]);
        let p = Path::new("e");
        let t1 = Topology::from_columns(&cols, p, &[edge("a", "b", 1)], p).unwrap();
        let t2 = Topology::from_columns(&cols, p, &[edge("a", "c", 1)], p).unwrap();
        assert_eq!(t1.difference(&t1), None);
        let d = t1.difference(&t2).unwrap();
        assert!(d.contains("only the model's: [a->b]"), "{d}");
    }
}
