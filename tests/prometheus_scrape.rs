//! A real Prometheus server scrapes citybrain's `GET /metrics`.
//!
//! A simulated city goes through the real engine with live-like arrivals (each message stamped
//! with the wall clock as it is submitted, as the MQTT source does), so the latency histograms
//! get real observations; the API serves the resulting metrics; `prometheus` (Debian's package)
//! scrapes it every second. Then: the target is up, the counters Prometheus stored equal the
//! engine's, the latency histograms arrived with observations, and every expression of the
//! platform-health dashboard is valid PromQL for this server.
//!
//! Fails (never skips) when `prometheus` is missing: `apt-get install -y prometheus`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citybrain::api::{ApiState, Auth};
use citybrain::app::{load_definitions, Engine};
use citybrain::dataflow::DataflowConfig;
use citybrain::incident::DeviceTable;
use citybrain::ingest::recording::open_recording;
use citybrain::model::EventTime;
use citybrain::sim::{write_city, SimOptions};
use citybrain::sink::DeadLetterLog;
use citybrain::telemetry::{wall_now, Metrics};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Kills the Prometheus server when the test ends, however it ends.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `prometheus` scraping `target` (host:port) every second, with its data in `dir`.
    fn start(dir: &Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: citybrain\n    metrics_path: /metrics\n    static_configs:\n      \
                 - targets: [\"{target}\"]\n"
            ),
        )
        .expect("prometheus.yml written");
        let port = free_port();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn();
        match child {
            Ok(child) => Prometheus { child, port, log },
            Err(e) => panic!("prometheus not runnable ({e}): apt-get install -y prometheus"),
        }
    }

    /// Runs an instant query; returns the JSON answer (status checked by the caller).
    fn query(&self, promql: &str) -> Value {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        match agent.get(&url).query("query", promql).call() {
            Ok(mut resp) => {
                let body = resp.body_mut().read_to_string().unwrap_or_default();
                serde_json::from_str(&body).unwrap_or(Value::Null)
            }
            Err(_) => Value::Null, // not listening yet
        }
    }

    /// The value of a query that returns one sample, if it does.
    fn scalar(&self, promql: &str) -> Option<f64> {
        let answer = self.query(promql);
        let sample = answer["data"]["result"].as_array()?.first()?.clone();
        sample["value"][1].as_str()?.parse().ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs two hours of a simulated city through the engine as if it arrived live; returns the
/// finished engine's state and the number of messages.
fn live_like_engine(dir: &Path) -> (citybrain::app::FinishedEngine, u64) {
    let start = EventTime(wall_now().0 - 2 * 3600 * 1000);
    write_city(dir, &SimOptions::default_with_seed(7, start, 2 * 3600)).expect("city written");
    let defs = load_definitions(
        &repo().join("pipelines"),
        &repo().join("device-profiles"),
        &dir.join("devices.csv"),
        &dir.join("crews.csv"),
    )
    .expect("definitions load");
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::start(
        DataflowConfig::default(),
        defs,
        metrics,
        Arc::new(DeadLetterLog::in_memory()),
    )
    .expect("engine starts");
    let mut n = 0;
    for msg in open_recording(&dir.join("recording.ndjson")).expect("recording opens") {
        let mut msg = msg.expect("recording line parses");
        // What the MQTT source does: arrival is the wall clock when the message is taken in.
        msg.arrival = wall_now();
        engine.submit(&msg);
        n += 1;
    }
    (engine.finish().expect("engine finishes"), n)
}

#[test]
fn prometheus_scrapes_the_metrics_endpoint() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (done, messages) = live_like_engine(dir.path());
    let m = &done.metrics;
    let anomaly_obs = m.dataflow_latency_seconds.count(["anomaly"]);
    let incident_obs = m.dataflow_latency_seconds.count(["incident"]);
    assert!(anomaly_obs > 0, "no arrival → anomaly observation");
    assert!(incident_obs > 0, "no arrival → incident observation");
    assert!(incident_obs <= anomaly_obs, "at most one per anomaly");
    eprintln!(
        "engine: {messages} messages, {anomaly_obs} anomaly and {incident_obs} incident \
         latencies in {:?}",
        t0.elapsed()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind api");
    let api_addr = listener.local_addr().expect("api addr");
    let state = ApiState {
        store: done.store.clone(),
        devices: Arc::new(DeviceTable::new(Vec::new())),
        metrics: done.metrics.clone(),
        auth: Arc::new(Auth::from_entries(Vec::new())),
        crews: None,
        tile_url: None,
        dispatch: None,
        definitions: Default::default(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(citybrain::api::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));

    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).expect("prometheus dir");
    let prom = Prometheus::start(&prom_dir, &api_addr.to_string());
    let deadline = Instant::now() + Duration::from_secs(60);
    while prom.scalar(r#"up{job="citybrain"}"#) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "prometheus never saw citybrain up; its log:\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("target up after {:?}", t0.elapsed());

    let stored = prom.scalar("sum(citybrain_messages_total)");
    assert_eq!(
        stored,
        Some(messages as f64),
        "messages counted by Prometheus"
    );
    let incident_count =
        prom.scalar(r#"citybrain_dataflow_latency_seconds_count{stage="incident"}"#);
    assert_eq!(incident_count, Some(incident_obs as f64));
    let buckets = prom.query(r#"citybrain_dataflow_latency_seconds_bucket{stage="anomaly"}"#);
    let n_buckets = buckets["data"]["result"].as_array().map_or(0, Vec::len);
    assert!(n_buckets > 10, "histogram buckets scraped: {buckets}");
    assert!(
        prom.scalar(r#"citybrain_ack_latency_seconds_count{by="operator"}"#) == Some(0.0),
        "response histograms are exported before their first observation"
    );

    // Every expression the platform dashboard runs is valid PromQL for a real server.
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("dashboards/platform-health.json"))
            .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut checked = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = t["expr"].as_str() else {
                continue;
            };
            // Grafana's variables, as Grafana would substitute them.
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s");
            let answer = prom.query(&expr);
            assert_eq!(
                answer["status"], "success",
                "panel {:?}: {expr}\n{answer}",
                panel["title"]
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "checked {checked} dashboard expressions");

    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    eprintln!("done in {:?}", t0.elapsed());
}
