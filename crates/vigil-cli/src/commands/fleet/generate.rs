//! `vigil fleet generate`: a fleet of entities from archetypes, with its truth.

use crate::output::{write_atomic, Ui};
use clap::Args;
use rayon::prelude::*;
use std::path::PathBuf;
use vigil_core::archetypes::{generate_archetype_fleet, ArchetypeFleetConfig};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder to write (train/ and test/ with one CSV per entity, truth.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of entities.
    #[arg(long, default_value_t = 1000)]
    pub entities: usize,
    /// Number of archetypes (shapes) they are drawn from.
    #[arg(long, default_value_t = 10)]
    pub archetypes: usize,
    /// Metrics per entity.
    #[arg(long, default_value_t = 8)]
    pub metrics: usize,
    /// Steps per day.
    #[arg(long, default_value_t = 288)]
    pub period: usize,
    /// Noise standard deviation relative to a metric's daily amplitude.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

pub(super) fn generate(args: GenerateArgs, ui: &Ui) -> anyhow::Result<()> {
    let config = ArchetypeFleetConfig {
        entities: args.entities,
        archetypes: args.archetypes,
        metrics: args.metrics,
        period: args.period,
        noise: args.noise,
        seed: args.seed,
        ..ArchetypeFleetConfig::default()
    };
    config.validate()?;
    let fleet = generate_archetype_fleet(&config);
    fleet
        .dataset
        .entities
        .par_iter()
        .try_for_each(|e| -> anyhow::Result<()> {
            let file = format!("{}.csv", e.name);
            vigil_core::write::write_series_csv(&e.train, &args.out.join("train").join(&file))?;
            vigil_core::write::write_series_csv(&e.test, &args.out.join("test").join(&file))?;
            Ok(())
        })?;
    let truth = serde_json::json!({
        "config": config,
        "entities": fleet.dataset.entities.iter().map(|e| &e.name).collect::<Vec<_>>(),
        "archetype": fleet.archetype,
        "shift": fleet.shift,
    });
    write_atomic(
        &args.out.join("truth.json"),
        serde_json::to_string_pretty(&truth)?.as_bytes(),
    )?;
    ui.note(format!(
        "{} entities from {} archetypes written to {}",
        args.entities,
        args.archetypes,
        args.out.display()
    ));
    if ui.json {
        crate::say!(
            "{}",
            serde_json::json!({"entities": args.entities, "out": args.out})
        )?;
    }
    Ok(())
}
