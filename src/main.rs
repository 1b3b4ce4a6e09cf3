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
    /// Manages API tokens: `token create --name N --role R` (prints it once), `revoke`, `list`.
    Token(app::TokenArgs),
    /// Scores NAB-format CSVs (DIR/<category>/<file>.csv: timestamp,value) with the detector
    /// ensemble, one independent stream per file, into RESULTS/<category>/<file>.csv
    /// (timestamp,value,anomaly_score). See BENCHMARKS.md, section NAB.
    Nab {
        /// NAB data root: DIR/<category>/<file>.csv.
        #[arg(long)]
        data: PathBuf,
        /// Results root, written as RESULTS/<category>/<file>.csv.
        #[arg(long)]
        out: PathBuf,
        /// Ensemble configuration (YAML); default: the built-in nab/ensemble.yaml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
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
        Command::Token(args) => app::token(args),
        Command::Nab { data, out, config } => citybrain::nab::run(&data, &out, config.as_deref())
            .map(|summary| {
                println!("{summary}");
                ExitCode::SUCCESS
            })
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
