//! `citybrain replay`: the live dataflow over a recording, as fast as it can go.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::{config_failure, load_definitions, Engine};
use crate::dataflow::{DataflowConfig, Definitions};
use crate::ingest::recording::open_recording;
use crate::model::{DeadLetter, EventTime, Incident};
use crate::sink::DeadLetterLog;
use crate::telemetry::Metrics;

/// Arguments of `citybrain replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Recording in the contract's NDJSON format.
    pub recording: PathBuf,
    /// Device register.
    #[arg(long)]
    pub devices: PathBuf,
    /// Crew register.
    #[arg(long)]
    pub crews: PathBuf,
    /// Write the final incidents here as NDJSON (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pipeline directory.
    #[arg(long, default_value = "pipelines")]
    pub pipelines: PathBuf,
    /// Device-profile directory.
    #[arg(long, default_value = "device-profiles")]
    pub profiles: PathBuf,
    /// Timely worker threads (the incidents do not depend on it).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Override the allowed lateness (seconds).
    #[arg(long)]
    pub allowed_lateness_secs: Option<f64>,
    /// Append dead letters to this NDJSON file.
    #[arg(long)]
    pub dead_letters: Option<PathBuf>,
    /// Write every anomaly the detectors raised or cleared to this NDJSON file.
    #[arg(long)]
    pub anomalies: Option<PathBuf>,
}

/// What a replay found.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Final incidents, sorted by opened_at then id.
    pub incidents: Vec<Incident>,
    /// Messages read.
    pub messages: u64,
    /// Readings decoded.
    pub readings: u64,
    /// Dead letters by reason.
    pub dead_letters: std::collections::BTreeMap<String, u64>,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// The engine's metrics.
    pub metrics: Arc<Metrics>,
}

/// Replays `recording` through a fresh engine and returns the outcome.
pub fn replay_recording(
    recording: &std::path::Path,
    defs: Definitions,
    cfg: DataflowConfig,
    dead_letters: Arc<DeadLetterLog>,
    anomalies: Option<Box<dyn Write + Send>>,
) -> anyhow::Result<ReplayOutcome> {
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::start_with(cfg, defs, metrics.clone(), dead_letters.clone(), anomalies)?;
    let reader = open_recording(recording)
        .with_context(|| format!("opening recording {}", recording.display()))?;
    let (mut messages, mut readings) = (0u64, 0u64);
    for item in reader {
        match item {
            Ok(msg) => {
                messages += 1;
                readings += engine.submit(&msg) as u64;
            }
            Err(e) => {
                // A damaged line in a recording is a dead letter too; the rest goes on.
                dead_letters.record(DeadLetter {
                    arrival: EventTime(0),
                    topic: String::new(),
                    reason: "bad_recording_line".into(),
                    detail: e.to_string(),
                    payload: String::new(),
                });
                metrics.dead_letters_total.inc(["bad_recording_line"]);
            }
        }
    }
    let done = engine.finish()?;
    Ok(ReplayOutcome {
        // A merged incident lives on inside the one that absorbed it.
        incidents: done
            .store
            .all()
            .into_iter()
            .filter(|i| i.merged_into.is_none())
            .collect(),
        messages,
        readings,
        dead_letters: done.dead_letters.counts(),
        duplicates: done.metrics.duplicates_total.get(),
        metrics: done.metrics,
    })
}

/// `citybrain replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let defs = load_definitions(&args.pipelines, &args.profiles, &args.devices, &args.crews)
        .map_err(|e| config_failure(&e))?;
    let mut cfg = DataflowConfig {
        workers: args.workers,
        ..DataflowConfig::default()
    };
    if let Some(l) = args.allowed_lateness_secs {
        cfg.allowed_lateness_secs = l;
    }
    let dead = match &args.dead_letters {
        Some(p) => {
            DeadLetterLog::with_file(p).with_context(|| format!("opening {}", p.display()))?
        }
        None => DeadLetterLog::in_memory(),
    };
    let started = std::time::Instant::now();
    let anomalies: Option<Box<dyn Write + Send>> = match &args.anomalies {
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
        None => None,
    };
    let outcome = replay_recording(&args.recording, defs, cfg, Arc::new(dead), anomalies)?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut text = String::new();
    for inc in &outcome.incidents {
        text.push_str(&serde_json::to_string(inc)?);
        text.push('\n');
    }
    match &args.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    for inc in &outcome.incidents {
        *by_kind.entry(inc.kind.as_str()).or_default() += 1;
    }
    eprintln!(
        "replayed {} messages ({} readings) in {:.2} s ({:.0} readings/s); duplicates dropped: {}",
        outcome.messages,
        outcome.readings,
        elapsed,
        outcome.readings as f64 / elapsed.max(1e-9),
        outcome.duplicates
    );
    eprintln!("dead letters by reason: {:?}", outcome.dead_letters);
    eprintln!("incidents: {} {:?}", outcome.incidents.len(), by_kind);
    Ok(ExitCode::SUCCESS)
}
