//! `vigil fleet`: OmniTransfer over a fleet of entities (issue 4), one file per subcommand:
//! `generate` (an archetype fleet with its truth), `cluster` (I-HAC into a fleet directory),
//! `train-base` (one base model per cluster), `transfer` (adapt entities from their short-term
//! data) and `detect` (score every adapted entity); `workers` runs the worker processes that
//! `train-base` and `transfer` spread over the cores.

mod cluster;
mod detect;
mod generate;
mod train_base;
mod transfer;
mod workers;

use crate::output::Ui;
use clap::Subcommand;

pub use cluster::ClusterArgs;
pub use detect::FleetDetectArgs;
pub use generate::GenerateArgs;
pub use train_base::TrainBaseArgs;
pub use transfer::TransferArgs;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Write a generated fleet: N entities from K archetypes (train/, test/ and truth.json).
    Generate(GenerateArgs),
    /// Cluster a folder of entities by shape (I-HAC) into a fleet directory.
    Cluster(ClusterArgs),
    /// Train one base model per cluster on its segments nearest the centroid.
    TrainBase(TrainBaseArgs),
    /// Adapt each entity's model from its short-term data by full or partial transfer.
    Transfer(TransferArgs),
    /// Score every adapted entity's series with its model; evaluate when labelled.
    Detect(FleetDetectArgs),
}

pub fn run(command: FleetCommand, ui: &Ui) -> anyhow::Result<()> {
    match command {
        FleetCommand::Generate(args) => generate::generate(args, ui),
        FleetCommand::Cluster(args) => cluster::cluster(args, ui),
        FleetCommand::TrainBase(args) => train_base::train_base(args, ui),
        FleetCommand::Transfer(args) => transfer::transfer(args, ui),
        FleetCommand::Detect(args) => detect::detect(args, ui),
    }
}
