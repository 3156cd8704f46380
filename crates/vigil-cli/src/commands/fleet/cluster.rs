//! `vigil fleet cluster`: I-HAC over a folder of entities into a fleet directory.

use crate::output::Ui;
use anyhow::Context;
use clap::Args;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use vigil_core::read::entities::{entity_files, read_entity};
use vigil_core::Series;
use vigil_fleet::baseline::BaselineConfig;
use vigil_fleet::cluster::Cut;
use vigil_fleet::fleet::{
    cluster_fleet, ClusterConfig, DEFAULT_MAX_DISTANCE, DEFAULT_NEAREST, DEFAULT_SEGMENT_LENGTH,
};
use vigil_fleet::rand_index::adjusted_rand_index;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Folder of entities: one series file each, or a train/ folder of them (SMD's layout).
    #[arg(long)]
    pub entities: PathBuf,
    /// Fleet directory to write clusters.json into.
    #[arg(long)]
    pub fleet: PathBuf,
    /// Steps per segment: the span of data a new entity will bring (e.g. one day).
    #[arg(long, default_value_t = DEFAULT_SEGMENT_LENGTH)]
    pub segment_length: usize,
    /// Segments per entity, newest first (default: all whole segments).
    #[arg(long)]
    pub segments_per_entity: Option<usize>,
    /// Cut into this many clusters (instead of by distance).
    #[arg(long, conflicts_with = "max_distance")]
    pub clusters: Option<usize>,
    /// Cut between merges whose average distance is above this (standardised units: 0
    /// identical, about 1 unrelated shapes; docs/fleet.md).
    #[arg(long, default_value_t = DEFAULT_MAX_DISTANCE)]
    pub max_distance: f64,
    /// Segments kept per cluster for its base model (the paper: 5).
    #[arg(long, default_value_t = DEFAULT_NEAREST)]
    pub nearest: usize,
    /// Skip phase alignment (the paper's ablation C2).
    #[arg(long)]
    pub no_align: bool,
}

pub(super) fn cluster(args: ClusterArgs, ui: &Ui) -> anyhow::Result<()> {
    let config = ClusterConfig {
        segment_length: args.segment_length,
        segments_per_entity: args.segments_per_entity,
        cut: match args.clusters {
            Some(k) => Cut::Clusters(k),
            None => Cut::Distance(args.max_distance),
        },
        nearest: args.nearest,
        baseline: BaselineConfig::default(),
        align: !args.no_align,
    };
    config.validate()?;
    let files = entity_files(&args.entities)?;
    let first = read_entity(&files[0].1, None)?;
    let rest: Vec<Series> = files[1..]
        .par_iter()
        .map(|(_, path)| read_entity(path, Some(&first)))
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    let mut series = vec![first];
    series.extend(rest);
    for (name, s) in names.iter().zip(&series) {
        if s.values.iter().any(|v| !v.is_finite()) {
            anyhow::bail!("entity {name} has missing or non-finite values; clean it first (vigil train --missing interpolate shows where)");
        }
    }
    let started = std::time::Instant::now();
    let clusters = cluster_fleet(&names, &series, &config)?;
    let seconds = started.elapsed().as_secs_f64();
    clusters.save(&args.fleet)?;
    let found: Vec<usize> = clusters.entities.iter().map(|e| e.cluster).collect();
    let ari =
        truth_archetypes(&args.entities, &names)?.map(|truth| adjusted_rand_index(&found, &truth));
    let sizes: Vec<usize> = clusters.clusters.iter().map(|c| c.entities.len()).collect();
    let segments: Vec<usize> = clusters.clusters.iter().map(|c| c.segments).collect();
    if ui.json {
        crate::say!(
            "{}",
            serde_json::json!({"entities": names.len(), "clusters": sizes.len(), "sizes": sizes, "segments": segments, "seconds": seconds, "adjusted_rand_index": ari, "fleet": args.fleet})
        )?;
    } else {
        crate::say!(
            "{} entities ({} segments) in {} clusters in {seconds:.1}s; written to {}",
            names.len(),
            segments.iter().sum::<usize>(),
            sizes.len(),
            args.fleet.join(vigil_fleet::fleet::CLUSTERS_FILE).display()
        )?;
        crate::say!("entities per cluster: {sizes:?}")?;
        crate::say!("segments per cluster: {segments:?}")?;
        if let Some(ari) = ari {
            crate::say!("adjusted Rand index against truth.json: {ari:.4}")?;
        }
    }
    Ok(())
}

/// The archetype of each entity from `dir/truth.json` (written by `vigil fleet generate`),
/// when there is one.
fn truth_archetypes(dir: &Path, names: &[String]) -> anyhow::Result<Option<Vec<usize>>> {
    let path = dir.join("truth.json");
    if !path.exists() {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct Truth {
        entities: Vec<String>,
        archetype: Vec<usize>,
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let truth: Truth = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a fleet truth file", path.display()))?;
    let by_name: std::collections::HashMap<&str, usize> = truth
        .entities
        .iter()
        .map(String::as_str)
        .zip(truth.archetype.iter().copied())
        .collect();
    Ok(names
        .iter()
        .map(|n| by_name.get(n.as_str()).copied())
        .collect::<Option<Vec<_>>>())
}
