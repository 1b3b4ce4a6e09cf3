//! `citybrain replay`: the live dataflow over a recording, as fast as it can go.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::{config_failure, load_definitions, Engine};
use crate::backtest::{self, MatchOptions, TruthFile};
use crate::dataflow::{DataflowConfig, Definitions};
use crate::ingest::recording::open_recording;
use crate::model::{DeadLetter, EventTime, Incident, IncidentStatus};
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
    /// Ground truth (`truth.json` from `citybrain simulate`): print incident-level metrics per
    /// kind (found, missed, extra, duplicates, flaps, detection delay, precision, recall, F1).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Run `--baseline` and `--pipelines` over the recording in one pass and print what the
    /// `--pipelines` set would have fired or missed compared with the baseline.
    #[arg(long)]
    pub compare: bool,
    /// The current pipeline set a `--compare` run is measured against.
    #[arg(long, default_value = "pipelines")]
    pub baseline: PathBuf,
    /// Write the metrics and comparison as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Time slack (s) when matching incidents to the truth or between the two sets.
    #[arg(long, default_value_t = 600.0)]
    pub tolerance_secs: f64,
}

/// What a replay found.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Final incidents, sorted by opened_at then id (merged ones left out).
    pub incidents: Vec<Incident>,
    /// Reopen count per incident id.
    pub flaps: std::collections::BTreeMap<String, u32>,
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
    let mut all = replay_many(recording, vec![(defs, dead_letters, anomalies)], cfg)?;
    all.pop()
        .ok_or_else(|| anyhow::anyhow!("no replay outcome"))
}

/// One engine's inputs for [`replay_many`]: definitions, dead-letter record, anomaly log.
pub type ReplaySet = (
    Definitions,
    Arc<DeadLetterLog>,
    Option<Box<dyn Write + Send>>,
);

/// One pass over `recording` feeding one engine per definition set (for `--compare`).
pub fn replay_many(
    recording: &std::path::Path,
    sets: Vec<ReplaySet>,
    cfg: DataflowConfig,
) -> anyhow::Result<Vec<ReplayOutcome>> {
    let mut engines = Vec::new();
    for (defs, dead, anomalies) in sets {
        let metrics = Arc::new(Metrics::new());
        engines.push(Engine::start_with(
            cfg.clone(),
            defs,
            metrics,
            dead,
            anomalies,
        )?);
    }
    let reader = open_recording(recording)
        .with_context(|| format!("opening recording {}", recording.display()))?;
    let (mut messages, mut readings) = (0u64, 0u64);
    for item in reader {
        match item {
            Ok(msg) => {
                messages += 1;
                let mut n = 0;
                for engine in &engines {
                    n = engine.submit(&msg) as u64;
                }
                readings += n;
            }
            Err(e) => {
                // A damaged line in a recording is a dead letter too; the rest goes on.
                for engine in &engines {
                    engine.dead_letters.record(DeadLetter {
                        arrival: EventTime(0),
                        topic: String::new(),
                        reason: "bad_recording_line".into(),
                        detail: e.to_string(),
                        payload: String::new(),
                    });
                    engine
                        .metrics
                        .dead_letters_total
                        .inc(["bad_recording_line"]);
                }
            }
        }
    }
    let mut outcomes = Vec::new();
    for engine in engines {
        let done = engine.finish()?;
        // A merged incident lives on inside the one that absorbed it.
        let incidents: Vec<Incident> = done
            .store
            .all()
            .into_iter()
            .filter(|i| i.merged_into.is_none())
            .collect();
        let flaps = incidents
            .iter()
            .map(|i| {
                let history = done.store.history(&i.id).unwrap_or_default();
                let reopens = history
                    .iter()
                    .filter(|t| t.from == IncidentStatus::Resolved && t.to == IncidentStatus::Open)
                    .count();
                (i.id.clone(), reopens as u32)
            })
            .collect();
        outcomes.push(ReplayOutcome {
            incidents,
            flaps,
            messages,
            readings,
            dead_letters: done.dead_letters.counts(),
            duplicates: done.metrics.duplicates_total.get(),
            metrics: done.metrics,
        });
    }
    Ok(outcomes)
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
    let anomalies: Option<Box<dyn Write + Send>> = match &args.anomalies {
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
        None => None,
    };
    let mut sets = vec![(defs, Arc::new(dead), anomalies)];
    if args.compare {
        let baseline = load_definitions(&args.baseline, &args.profiles, &args.devices, &args.crews)
            .map_err(|e| config_failure(&e))?;
        sets.insert(0, (baseline, Arc::new(DeadLetterLog::in_memory()), None));
    }
    let started = std::time::Instant::now();
    let mut outcomes = replay_many(&args.recording, sets, cfg)?;
    let elapsed = started.elapsed().as_secs_f64();
    let outcome = outcomes
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no replay outcome"))?;
    let baseline = outcomes.pop();
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
    let mut report = serde_json::json!({
        "messages": outcome.messages,
        "readings": outcome.readings,
        "duplicates": outcome.duplicates,
        "dead_letters": outcome.dead_letters,
        "incidents": by_kind,
    });
    let opts = MatchOptions {
        tolerance_secs: args.tolerance_secs,
        ..MatchOptions::default()
    };
    if let Some(path) = &args.truth {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let truth: TruthFile =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let eval = backtest::evaluate(&truth.incidents, &outcome.incidents, &outcome.flaps, &opts);
        eprint!("\n{}", eval.to_text(&truth.incidents));
        report["backtest"] = serde_json::to_value(&eval)?;
    }
    if let Some(base) = baseline {
        let cmp = backtest::compare(&base.incidents, &outcome.incidents, args.tolerance_secs);
        eprint!(
            "\ncompared with {}: {}",
            args.baseline.display(),
            cmp.to_text()
        );
        report["comparison"] = serde_json::to_value(&cmp)?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
