//! `citybrain record` and `citybrain simulate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio::sync::watch;

use crate::ingest::mqtt::{install_crypto_provider, MqttConfig};
use crate::ingest::publish::{publish_recording, Pace};
use crate::model::EventTime;
use crate::sim::{write_city, SimOptions, Simulation};

/// Arguments of `citybrain record`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// Recording file to write (NDJSON, the contract's recording format).
    #[arg(long)]
    pub out: PathBuf,
    /// App config whose `mqtt:` block names the broker (otherwise --broker).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Broker address when no config is given.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub broker: SocketAddr,
    /// Topic filter to record (repeatable).
    #[arg(long = "topic", default_value = "city/#")]
    pub topics: Vec<String>,
    /// Stop after this many messages.
    #[arg(long)]
    pub max_messages: Option<u64>,
}

/// `citybrain record`.
pub fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    install_crypto_provider();
    let mut mqtt = match &args.config {
        Some(p) => {
            crate::config::app::AppConfig::load(p)
                .map_err(|e| super::config_failure(&e))?
                .mqtt
        }
        None => MqttConfig::for_broker(args.broker.ip().to_string(), args.broker.port()),
    };
    mqtt.client_id = format!("{}-recorder", mqtt.client_id);
    mqtt.subscriptions = args.topics.clone();
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let n = rt.block_on(async {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        crate::ingest::mqtt::record(mqtt, &mut out, rx, args.max_messages).await
    })?;
    eprintln!("recorded {n} messages to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `citybrain simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Directory to write devices.csv, crews.csv, recording.ndjson and truth.json into.
    #[arg(long, required_unless_present = "publish")]
    pub out: Option<PathBuf>,
    /// Publish live to this broker instead (host:port).
    #[arg(long)]
    pub publish: Option<SocketAddr>,
    /// Seed (same seed → byte-identical output).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated minutes.
    #[arg(long, default_value_t = 120)]
    pub duration_mins: u64,
    /// Start of simulated time (RFC 3339). Default: now minus the duration, so a live
    /// publication never carries timestamps from the future.
    #[arg(long)]
    pub start: Option<String>,
    /// With --publish: speed-up factor over real time (default: as fast as possible).
    #[arg(long)]
    pub speedup: Option<f64>,
}

/// `citybrain simulate`.
pub fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let duration_secs = args.duration_mins * 60;
    let start = match &args.start {
        Some(s) => EventTime::parse_rfc3339(s)
            .with_context(|| format!("--start: not an RFC 3339 time: {s}"))?,
        None => EventTime(chrono::Utc::now().timestamp_millis() - duration_secs as i64 * 1000),
    };
    let opts = SimOptions::default_with_seed(args.seed, start, duration_secs);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let summary = write_city(dir, &opts)?;
        eprintln!("{summary:?}");
    }
    if let Some(addr) = args.publish {
        install_crypto_provider();
        let mut sim = Simulation::new(opts);
        let messages = sim.next_until(EventTime(i64::MAX / 4));
        let mqtt = MqttConfig::for_broker(addr.ip().to_string(), addr.port());
        let pace = args.speedup.map_or(Pace::AsFastAsPossible, Pace::Speedup);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let messages = messages
            .into_iter()
            .map(|m| crate::ingest::recording::RawMessage {
                arrival: m.arrival,
                topic: m.topic,
                payload: m.payload,
            });
        let n = rt.block_on(publish_recording(&mqtt, messages, pace))?;
        eprintln!("published {n} messages to {addr}");
    }
    Ok(ExitCode::SUCCESS)
}
