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
use crate::api::{self, ApiState, Auth, Role};
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
use crate::sink::dispatch::{DispatchHandle, DispatchOptions, DispatchSetup};
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
    /// `api.tile_url`: map tiles under the command-centre page's map (none: drawn offline).
    pub tile_url: Option<String>,
    /// `influx:` block: also write readings, anomalies and incidents to InfluxDB (off: None).
    pub influx: Option<crate::sink::influx::InfluxConfig>,
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
    /// Hot reload of the running definitions.
    pub reloader: super::Reloader,
    /// Where the API finds the definitions source once `watch_definitions` has set it up.
    definitions: crate::api::pipelines::DefinitionsSlot,
    /// Crew dispatch, escalations and silences.
    pub dispatch: DispatchHandle,
    dispatch_tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    source: tokio::task::JoinHandle<()>,
    api: tokio::task::JoinHandle<()>,
    decoder: JoinHandle<anyhow::Result<FinishedEngine>>,
}

impl Live {
    /// Starts source, decoder, dataflow and API. Must be called inside a tokio runtime.
    pub fn start(opts: LiveOptions) -> anyhow::Result<Live> {
        Self::start_durable(opts, None)
    }

    /// Like [`Live::start`]; with `state_dir`, incidents, their history and dispatch records
    /// live in the durable store there: loaded back on start (the correlator resumes the open
    /// ones), every change committed before it is acknowledged.
    pub fn start_durable(
        opts: LiveOptions,
        state_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Live> {
        Self::start_dispatching(opts, state_dir, DispatchSetup::default())
    }

    /// Like [`Live::start_durable`], with crew dispatch policies, webhooks and the dispatch
    /// clock (tests inject a short answer timeout and paused time).
    pub fn start_dispatching(
        mut opts: LiveOptions,
        state_dir: Option<&std::path::Path>,
        dispatch: DispatchSetup,
    ) -> anyhow::Result<Live> {
        let metrics = Arc::new(Metrics::new());
        let store = match state_dir {
            Some(dir) => {
                let store = IncidentStore::open(dir, Some(metrics.clone()))
                    .with_context(|| format!("opening the state dir {}", dir.display()))?;
                opts.defs.open_incidents = store.open_snapshots();
                Arc::new(store)
            }
            None => Arc::new(IncidentStore::new(Some(metrics.clone()))),
        };
        let crew_register: Vec<crate::model::Crew> =
            opts.defs.registry.crews.values().cloned().collect();
        let dispatch_opts = DispatchOptions {
            config: dispatch.config,
            crews: crew_register.clone(),
            devices: (opts.defs.registry.devices.values())
                .map(|d| (d.device_id.clone(), d.location))
                .collect(),
            store: store.clone(),
            log: store.clone(),
            clock: dispatch.clock,
            metrics: Some(metrics.clone()),
        };
        let dispatch_mqtt = opts.mqtt.clone();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let influx = match opts.influx {
            Some(cfg) => {
                let departments = crate::sink::influx::departments(&opts.defs.registry);
                let (sink, writer) = crate::sink::influx::InfluxSink::start(
                    cfg,
                    departments,
                    metrics.clone(),
                    shutdown_rx.clone(),
                )
                .context("starting the InfluxDB sink")?;
                Some((sink, writer))
            }
            None => None,
        };
        let engine = Engine::start_with_store(
            opts.dataflow,
            opts.defs,
            metrics.clone(),
            opts.dead_letters,
            None,
            influx.as_ref().map(|(sink, _)| sink.clone()),
            store,
        )?;
        let (store, devices) = (engine.store.clone(), engine.devices.clone());
        let reloader = engine.reloader();
        let engine_crews = engine.crews.clone();
        let (dispatcher, mut dispatch_tasks) = crate::sink::dispatch::start_live(
            dispatch_opts,
            dispatch_mqtt,
            dispatch.webhooks,
            shutdown_rx.clone(),
        )?;
        // The InfluxDB writer flushes (or spools) on shutdown: stop() awaits it after the
        // decoder has handed over everything.
        if let Some((_, writer)) = influx {
            dispatch_tasks.push(writer);
        }
        let _ = engine.crews.inbox.set(dispatcher.inbox());
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
                        let (reconnects, shed) = (&poll_stats.reconnects, &poll_stats.shed_qos0);
                        metrics
                            .mqtt_reconnects_total
                            .advance_to(reconnects.load(Ordering::Relaxed));
                        metrics
                            .mqtt_shed_qos0_total
                            .advance_to(shed.load(Ordering::Relaxed));
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
        let definitions: crate::api::pipelines::DefinitionsSlot = Default::default();
        let state = ApiState {
            store: store.clone(),
            devices: devices.clone(),
            metrics: metrics.clone(),
            auth: Arc::new(opts.auth),
            crews: Some(api::CrewBoard::new(crew_register, {
                let feed = engine_crews;
                move || feed.status.lock().clone()
            })),
            tile_url: opts.tile_url,
            dispatch: Some(dispatcher.clone()),
            definitions: definitions.clone(),
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
            reloader,
            definitions,
            dispatch: dispatcher,
            dispatch_tasks,
            shutdown,
            source,
            api,
            decoder,
        })
    }

    /// Watches `pipelines` and `profiles` for changes (polling once a second) and hot-reloads
    /// them; invalid files are reported and the running definitions stay. Returns the source,
    /// whose `status()` and `reload_now()` the API and tests use.
    pub fn watch_definitions(
        &self,
        pipelines: PathBuf,
        profiles: PathBuf,
        registry: Arc<Registry>,
    ) -> super::DefinitionsSource {
        let source =
            super::DefinitionsSource::new(pipelines, profiles, registry, self.reloader.clone());
        source.spawn_watch(std::time::Duration::from_secs(1), self.shutdown.subscribe());
        let _ = self.definitions.set(Arc::new(source.clone()));
        source
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
        for task in self.dispatch_tasks {
            let _ = task.await;
        }
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
    let registry = defs.registry.clone();
    let state_dir = cfg.state.dir.clone();
    if state_dir.is_none() {
        eprintln!("no state.dir configured: incidents are kept in memory only, lost on restart");
    }
    runtime()?.block_on(async move {
        let dispatch = DispatchSetup {
            config: cfg.dispatch,
            webhooks: cfg.webhooks,
            ..DispatchSetup::default()
        };
        let live = Live::start_dispatching(
            LiveOptions {
                mqtt: cfg.mqtt,
                listener,
                auth,
                dataflow: cfg.dataflow,
                defs,
                dead_letters,
                tile_url: cfg.api.tile_url,
                influx: cfg.influx,
            },
            state_dir.as_deref(),
            dispatch,
        )?;
        let _definitions = live.watch_definitions(
            cfg.paths.pipelines.clone(),
            cfg.paths.device_profiles.clone(),
            registry,
        );
        eprintln!(
            "citybrain running; API on http://{}/ (Ctrl-C to stop); pipelines and device \
             profiles are reloaded when their files change",
            live.api_addr
        );
        ctrl_c().await;
        live.stop().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Reads a tokens file (a YAML list of `{name, role, sha256}`); the server follows later
/// changes to it (`citybrain token create/revoke`).
pub fn load_tokens(path: &std::path::Path) -> anyhow::Result<Auth> {
    Ok(Auth::from_file(path)?)
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
    /// Directory of the durable incident store. Default: a fresh temporary directory for this
    /// run, removed when the demo stops normally; name one to keep incidents across runs.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
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
        open_incidents: Vec::new(),
    };
    let demo_registry = defs.registry.clone();
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
    let (state_dir, temporary_state) = match &args.state_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let millis = chrono::Utc::now().timestamp_millis();
            let name = format!("citybrain-demo-{}-{millis}", std::process::id());
            (std::env::temp_dir().join(name), true)
        }
    };
    runtime()?.block_on(async move {
        let live = Live::start_durable(
            LiveOptions {
                mqtt: mqtt.clone(),
                listener,
                auth,
                dataflow,
                defs,
                dead_letters: Arc::new(DeadLetterLog::in_memory()),
                tile_url: None,
                influx: None,
            },
            Some(&state_dir),
        )?;
        let _definitions =
            live.watch_definitions(args.pipelines.clone(), args.profiles.clone(), demo_registry);
        println!("citybrain demo running");
        println!("  state dir:      {}", state_dir.display());
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
        // The simulated crews' tablets report in, so incidents get dispatched (nobody answers:
        // the demo shows the escalations too).
        for c in &city.crews {
            let status = serde_json::json!({"crew_id": c.crew_id, "ts": now,
                "lat": c.home.lat, "lon": c.home.lon, "state": "available"});
            let topic = format!("city/crews/{}/status", c.crew_id);
            let _ = publisher
                .publish(&topic, status.to_string().into_bytes(), 1, false)
                .await;
        }
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
        drop(done);
        if temporary_state {
            // Best effort: the OS cleans temporary directories anyway.
            let _ = std::fs::remove_dir_all(&state_dir);
        }
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
