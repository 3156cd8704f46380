//! `vigil system generate`: a generated microservice system (call graph, fault-free training
//! series, test series with faults at one component at a time) for TopoMAD and localisation.

use crate::output::Ui;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use vigil_core::microservices::{generate_system, SystemConfig};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Write a generated system: train.csv, test.csv (with labels), edges.csv and faults.csv.
    Generate(SystemGenerateArgs),
}

#[derive(Debug, Args)]
pub struct SystemGenerateArgs {
    /// Folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Components, the gateway included.
    #[arg(long, default_value_t = 8)]
    pub components: usize,
    /// Training steps (fault-free).
    #[arg(long, default_value_t = 3000)]
    pub train_len: usize,
    /// Test steps.
    #[arg(long, default_value_t = 3000)]
    pub test_len: usize,
    /// Faults injected into the test series.
    #[arg(long, default_value_t = 12)]
    pub faults: usize,
    /// Relative noise on every metric (0: noise-free).
    #[arg(long, default_value_t = 0.03)]
    pub noise: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(command: SystemCommand, ui: &Ui) -> anyhow::Result<()> {
    match command {
        SystemCommand::Generate(args) => generate(args, ui),
    }
}

fn generate(args: SystemGenerateArgs, ui: &Ui) -> anyhow::Result<()> {
    if !(args.noise.is_finite() && args.noise >= 0.0) {
        anyhow::bail!(
            "--noise must be a finite number at least 0, got {}",
            args.noise
        );
    }
    let config = SystemConfig {
        components: args.components,
        train_len: args.train_len,
        test_len: args.test_len,
        faults: args.faults,
        noise: args.noise,
        seed: args.seed,
        ..SystemConfig::default()
    };
    let system = generate_system(&config)?;
    system.write(&args.out)?;
    ui.note(format!(
        "{} components, {} calls, {} faults written to {} (train with `vigil train --detector \
         topomad --topology {}`)",
        system.components.len(),
        system.edges.len(),
        system.faults.len(),
        args.out.display(),
        args.out.join("edges.csv").display()
    ));
    if ui.json {
        crate::say!(
            "{}",
            serde_json::json!({"components": system.components, "edges": system.edges.len(), "faults": system.faults, "out": args.out})
        )?;
    }
    Ok(())
}
