//! `citybrain` command line: argument parsing only; everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use citybrain::app;

/// citybrain: real-time city devices → correlated incidents for the command centre.
#[derive(Debug, Parser)]
#[command(name = "citybrain", version, about, long_about = None)]
struct Cli {
    /// Log more (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Embedded broker + simulated city + the whole pipeline + the API; no external service.
    Demo(app::DemoArgs),
    /// Live, against an external MQTT broker, as configured in FILE.
    Run {
        /// App config (YAML): mqtt, api, paths, dataflow. See docs/configuration.md.
        #[arg(long)]
        config: PathBuf,
    },
    /// The same dataflow over a recording, as fast as it can; writes the final incidents as
    /// NDJSON in the API's shape.
    Replay(app::ReplayArgs),
    /// Records broker traffic in the contract's recording format (NDJSON).
    Record(app::RecordArgs),
    /// Validates config, device profiles, pipelines and registers; non-zero exit on any error.
    Check(app::CheckArgs),
    /// Writes a simulated city (devices.csv, crews.csv, recording.ndjson, truth.json) or
    /// publishes it live to a broker.
    Simulate(app::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = citybrain::telemetry::init_tracing(cli.verbose) {
        eprintln!("warning: logging not set up: {e}");
    }
    let result = match cli.command {
        Command::Demo(args) => app::demo(args),
        Command::Run { config } => app::run(&config),
        Command::Replay(args) => app::replay(args),
        Command::Record(args) => app::record(args),
        Command::Check(args) => app::check(args),
        Command::Simulate(args) => app::simulate(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
