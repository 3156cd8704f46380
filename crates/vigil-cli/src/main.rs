//! `vigil`: the command-line face of the vigil libraries. Each subcommand parses its flags,
//! calls one library function and prints; no algorithm lives here.

mod budget;
mod commands;
mod errors;
mod fleet_table;
mod output;
mod plot;
mod progress;
mod relaunch;
mod table;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Anomaly detection for multivariate time series.
#[derive(Parser)]
#[command(name = "vigil", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars or chatter.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Compute device: `cpu` (always available) or a GPU backend this build includes.
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// Cores to use (default: all); `--threads 1` leaves the others to the device's own work.
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a small fleet, train, detect, evaluate and write a report — no data needed.
    Demo(commands::demo::DemoArgs),
    /// Train a detector on a series and write a model directory.
    Train(commands::train::TrainArgs),
    /// Score a series with a trained model and write scores, thresholds and alarms.
    Detect(commands::detect::DetectArgs),
    /// Fine-tune a trained model on new data, learning from its `label` column (feedback).
    Tune(commands::tune::TuneArgs),
    /// Score a labelled series with a trained model and print the evaluation.
    Eval(commands::eval::EvalArgs),
    /// Run detectors over a benchmark data set and write a markdown table.
    // Boxed: its flags make it several times the size of the other commands.
    Bench(Box<commands::bench::BenchArgs>),
    /// Compare threshold rules on scores kept by `vigil bench --keep-scores`.
    Thresholds(commands::thresholds::ThresholdsArgs),
    /// Fleets of entities (OmniTransfer): generate one, cluster it by shape.
    Fleet {
        #[command(subcommand)]
        command: commands::fleet::FleetCommand,
    },
    /// Systems of components with a call graph (TopoMAD): generate one.
    System {
        #[command(subcommand)]
        command: commands::system::SystemCommand,
    },
    /// Draw a series with its scores, threshold, alarms and labels to PNG or SVG.
    Plot(commands::plot::PlotArgs),
    /// Run the online service: ingest metrics, score them as they arrive, serve anomaly_score.
    Serve(commands::serve::ServeArgs),
    /// List the detectors, their config keys and defaults.
    Models,
}

/// Counts live heap bytes, so that a `--memory-budget` worker can stop itself the moment it
/// passes its share (budget/guard.rs).
#[global_allocator]
static ALLOCATOR: budget::guard::CountingAllocator = budget::guard::CountingAllocator;

fn main() -> ExitCode {
    vigil_models::allocator::keep_freed_buffers();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go where clap puts them; a wrong flag with `--json` is also
            // reported as JSON on stdout, like every other error.
            let wants_json = std::env::args().skip(1).any(|a| a == "--json");
            if wants_json && e.use_stderr() {
                // clap's message without its usage and help lines.
                let text = e.to_string();
                let message: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .take_while(|l| {
                        !l.starts_with("Usage:") && !l.starts_with("For more information")
                    })
                    .filter(|l| !l.is_empty())
                    .collect();
                let error = anyhow::anyhow!("{}", message.join(" ").trim_start_matches("error: "));
                let _ = say!("{}", errors::error_json(&error));
            }
            e.exit();
        }
    };
    let ui = output::Ui {
        json: cli.json,
        quiet: cli.quiet,
    };
    let result = cli
        .threads
        .map_or(Ok(()), vigil_models::threads::use_threads)
        .and_then(|()| vigil_models::nn::select_device(&cli.device))
        .map_err(anyhow::Error::from)
        .and_then(|()| match cli.command {
            Command::Demo(args) => commands::demo::run(args, &ui),
            Command::Train(args) => commands::train::run(args, &ui),
            Command::Detect(args) => commands::detect::run(args, &ui),
            Command::Tune(args) => commands::tune::run(args, &ui),
            Command::Eval(args) => commands::eval::run(args, &ui),
            Command::Bench(args) => commands::bench::run(*args, &ui),
            Command::Thresholds(args) => commands::thresholds::run(args, &ui),
            Command::Fleet { command } => commands::fleet::run(command, &ui),
            Command::System { command } => commands::system::run(command, &ui),
            Command::Plot(args) => commands::plot::run(args, &ui),
            Command::Serve(args) => commands::serve::run(args),
            Command::Models => commands::models::run(&ui),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(output::StdoutFailed(io)) = e.downcast_ref() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    // The reader has all it wanted (`vigil models | head -1`): not an error.
                    return ExitCode::SUCCESS;
                }
            }
            if let Some(budget::WorkerFailed(status)) = e.downcast_ref() {
                // The budget worker has already said what went wrong.
                return ExitCode::from(*status);
            }
            // Best-effort: a closed stderr must not turn a clean error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            if ui.json {
                let _ = say!("{}", errors::error_json(&e));
            }
            if e.chain().any(|cause| cause.is::<budget::OverBudget>()) {
                return ExitCode::from(budget::guard::EXIT_OVER_BUDGET as u8);
            }
            // Every other failure here is about the input or the environment: exit 2, as
            // documented.
            ExitCode::from(2)
        }
    }
}
