//! Live operation: `citybrain run` (external broker) and `citybrain demo` (embedded broker and a
//! simulated city). Both are the same [`Live`] pipeline: MQTT source → decode thread → engine,
//! plus the API server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};
use tokio::sync::{mpsc, watch};

use super::{config_failure, load_definitions, Engine, FinishedEngine};
use crate::api::{self, ApiState, Auth, Role, TokenEntry};
use crate::config::app::AppConfig;
use crate::config::registers::Registry;
use crate::dataflow::{DataflowConfig, Definitions};
use crate::incident::{DeviceTable, IncidentStore};
use crate::ingest::broker::start_embedded_broker;
use crate::ingest::mqtt::{install_crypto_provider, run_source, MqttConfig, SourceStats};
use crate::ingest::publish::Publisher;
use crate::ingest::recording::RawMessage;
use crate::model::EventTime;
use crate::sim::{SimOptions, Simulation};
use crate::sink::DeadLetterLog;
use crate::telemetry::Metrics;

/// Messages buffered between the MQTT source and decoding. QoS 1 messages are acknowledged to
/// the broker once they are in this queue.
const SOURCE_QUEUE: usize = 1024;

/// What a live pipeline needs.
pub struct LiveOptions {
    /// Broker to subscribe to.
    pub mqtt: MqttConfig,
    /// Where the API listens (already bound, so tests can use port 0).
    pub listener: std::net::TcpListener,
    /// API tokens.
    pub auth: Auth,
    /// Event-time settings.
    pub dataflow: DataflowConfig,
    /// Profiles, pipelines and registers.
    pub defs: Definitions,
    /// Dead-letter record.
    pub dead_letters: Arc<DeadLetterLog>,
}

/// A running live pipeline.
pub struct Live {
    /// Incidents.
    pub store: Arc<IncidentStore>,
    /// Device status.
    pub devices: Arc<DeviceTable>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// MQTT source counters.
    pub source_stats: Arc<SourceStats>,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    source: tokio::task::JoinHandle<()>,
    api: tokio::task::JoinHandle<()>,
    decoder: JoinHandle<anyhow::Result<FinishedEngine>>,
}

impl Live {
    /// Starts source, decoder, dataflow and API. Must be called inside a tokio runtime.
    pub fn start(opts: LiveOptions) -> anyhow::Result<Live> {
        let metrics = Arc::new(Metrics::new());
        let engine = Engine::start(opts.dataflow, opts.defs, metrics.clone(), opts.dead_letters)?;
        let (store, devices) = (engine.store.clone(), engine.devices.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (tx, mut rx) = mpsc::channel::<RawMessage>(SOURCE_QUEUE);
        let source_stats = Arc::new(SourceStats::default());
        let source = {
            let (stats, shutdown_rx, metrics) =
                (source_stats.clone(), shutdown_rx.clone(), metrics.clone());
            let mqtt = opts.mqtt;
            tokio::spawn(async move {
                let poll_stats = stats.clone();
                let poller = tokio::spawn(async move {
                    loop {
                        metrics.mqtt_connected.set(
                            if poll_stats.connected.load(Ordering::Relaxed) {
                                1.0
                            } else {
                                0.0
                            },
                        );
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                });
                if let Err(e) = run_source(mqtt, tx, stats, shutdown_rx).await {
                    tracing::error!(error = %e, "mqtt source stopped");
                }
                poller.abort();
            })
        };
        let decoder = std::thread::Builder::new()
            .name("decode".into())
            .spawn(move || {
                while let Some(msg) = rx.blocking_recv() {
                    engine.submit(&msg);
                }
                engine.finish()
            })
            .context("starting the decode thread")?;
        opts.listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(opts.listener)?;
        let api_addr = listener.local_addr()?;
        let state = ApiState {
            store: store.clone(),
            devices: devices.clone(),
            metrics: metrics.clone(),
            auth: Arc::new(opts.auth),
        };
        let api = {
            let mut rx = shutdown_rx.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|v| *v).await;
                };
                if let Err(e) = api::serve(listener, state, stop).await {
                    tracing::error!(error = %e, "api server stopped");
                }
            })
        };
        Ok(Live {
            store,
            devices,
            metrics,
            source_stats,
            api_addr,
            shutdown,
            source,
            api,
            decoder,
        })
    }

    /// Stops the source, judges everything received, stops the API; returns the final state.
    pub async fn stop(self) -> anyhow::Result<FinishedEngine> {
        let _ = self.shutdown.send(true);
        let _ = self.source.await;
        let decoder = self.decoder;
        let finished = tokio::task::spawn_blocking(move || decoder.join())
            .await
            .map_err(|e| anyhow!("decode thread: {e}"))?
            .map_err(|_| anyhow!("decode thread panicked"))??;
        let _ = self.api.await;
        Ok(finished)
    }
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")
}

/// `citybrain run --config FILE`.
pub fn run(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    install_crypto_provider();
    let cfg = AppConfig::load(config).map_err(|e| config_failure(&e))?;
    let defs = load_definitions(
        &cfg.paths.pipelines,
        &cfg.paths.device_profiles,
        &cfg.paths.devices,
        &cfg.paths.crews,
    )
    .map_err(|e| config_failure(&e))?;
    let auth = match &cfg.api.tokens_file {
        Some(path) => load_tokens(path)?,
        None => {
            let (token, entry) = Auth::generate("operator", Role::Admin);
            eprintln!("no api.tokens_file configured; one-off admin token for this run: {token}");
            Auth::from_entries(vec![entry])
        }
    };
    let dead_letters = Arc::new(match &cfg.paths.dead_letters {
        Some(p) => {
            DeadLetterLog::with_file(p).with_context(|| format!("opening {}", p.display()))?
        }
        None => DeadLetterLog::in_memory(),
    });
    let listener = std::net::TcpListener::bind(cfg.api.listen)
        .with_context(|| format!("binding {}", cfg.api.listen))?;
    runtime()?.block_on(async move {
        let live = Live::start(LiveOptions {
            mqtt: cfg.mqtt,
            listener,
            auth,
            dataflow: cfg.dataflow,
            defs,
            dead_letters,
        })?;
        eprintln!(
            "citybrain running; API on http://{}/ (Ctrl-C to stop)",
            live.api_addr
        );
        ctrl_c().await;
        live.stop().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Reads a tokens file: a YAML list of `{name, role, sha256}`.
pub fn load_tokens(path: &std::path::Path) -> anyhow::Result<Auth> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let entries: Vec<TokenEntry> = crate::config::load_yaml_str(path, &text)?;
    Ok(Auth::from_entries(entries))
}

/// Arguments of `citybrain demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// API and page address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Embedded MQTT broker address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt_listen: SocketAddr,
    /// Simulation seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Minutes of simulated history published at start, so detectors have a baseline and the
    /// first incidents are already on screen.
    #[arg(long, default_value_t = 35)]
    pub backfill_mins: u64,
    /// Pipeline directory.
    #[arg(long, default_value = "pipelines")]
    pub pipelines: PathBuf,
    /// Device-profile directory.
    #[arg(long, default_value = "device-profiles")]
    pub profiles: PathBuf,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub for_secs: Option<u64>,
}

/// `citybrain demo`.
pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    install_crypto_provider();
    let now = EventTime(chrono::Utc::now().timestamp_millis());
    let start = EventTime(now.0 - (args.backfill_mins as i64) * 60_000);
    let sim = Simulation::new(SimOptions::endless(args.seed, start));
    let city = sim.city().clone();
    let registry = Registry::from_parts(city.devices.clone(), city.crews.clone());
    let profiles = crate::config::profile::ProfileSet::load_dir(&args.profiles)
        .map_err(|e| config_failure(&e))?;
    let pipelines =
        crate::config::pipeline::PipelineSet::load_dir(&args.pipelines, Some(&profiles))
            .map_err(|e| config_failure(&e))?;
    let defs = Definitions {
        pipelines: Arc::new(pipelines),
        profiles: Arc::new(profiles),
        registry: Arc::new(registry),
    };
    let broker =
        start_embedded_broker(args.mqtt_listen).context("starting the embedded MQTT broker")?;
    broker
        .wait_ready()
        .context("waiting for the embedded broker")?;
    let mqtt = MqttConfig::for_broker(broker.addr.ip().to_string(), broker.addr.port());
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    let (token, entry) = Auth::generate("demo", Role::Admin);
    let auth = Auth::from_entries(vec![entry]);
    let dataflow = DataflowConfig {
        allowed_lateness_secs: 180.0,
        ..DataflowConfig::default()
    };
    runtime()?.block_on(async move {
        let live = Live::start(LiveOptions {
            mqtt: mqtt.clone(),
            listener,
            auth,
            dataflow,
            defs,
            dead_letters: Arc::new(DeadLetterLog::in_memory()),
        })?;
        println!("citybrain demo running");
        println!("  command centre: http://{}/", live.api_addr);
        println!(
            "  API:            http://{}/api/v1/incidents",
            live.api_addr
        );
        println!("  access token:   {token}");
        println!("  MQTT broker:    {}", broker.addr);
        println!(
            "  example:        curl -H 'Authorization: Bearer {token}' http://{}/api/v1/incidents",
            live.api_addr
        );
        let publisher = Publisher::connect(&mqtt, "simulator")
            .await
            .context("connecting the simulator")?;
        let sim_task = tokio::spawn(drive_simulation(sim, publisher));
        match args.for_secs {
            Some(s) => {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(s)) => {},
                    _ = ctrl_c() => {},
                }
            }
            None => ctrl_c().await,
        }
        sim_task.abort();
        let done = live.stop().await?;
        eprintln!("demo stopped: {} incidents", done.store.len());
        Ok(ExitCode::SUCCESS)
    })
}

/// Publishes the simulated city in real time (history first, as fast as possible).
async fn drive_simulation(mut sim: Simulation, publisher: Publisher) {
    loop {
        let now = EventTime(chrono::Utc::now().timestamp_millis());
        for m in sim.next_until(now) {
            let qos = crate::ingest::publish::contract_qos(&m.topic);
            if let Err(e) = publisher.publish(&m.topic, m.payload, qos, false).await {
                tracing::warn!(error = %e, "simulator publish failed");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
