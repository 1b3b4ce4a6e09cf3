//! Shared helpers for the integration tests: repo paths, a simulated city on disk, a live
//! pipeline against a real mosquitto, and HTTP calls with a bearer token.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset; `pub` is for the test crates

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citybrain::api::{Auth, Role};
use citybrain::app::{load_definitions, Live, LiveOptions};
use citybrain::dataflow::{DataflowConfig, Definitions};
use citybrain::ingest::mqtt::{install_crypto_provider, MqttConfig};
use citybrain::ingest::publish::Publisher;
use citybrain::ingest::recording::RawMessage;
use citybrain::ingest::testkit::Mosquitto;
use citybrain::model::{EventTime, Incident};
use citybrain::sim::{write_city, SimOptions};
use citybrain::sink::DeadLetterLog;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a simulated city into `dir` and returns its options.
pub fn simulate(dir: &Path, opts: &SimOptions) {
    write_city(dir, opts).expect("simulated city written");
}

/// Shipped pipelines and profiles with the registers in `dir`.
pub fn defs(dir: &Path) -> Definitions {
    load_definitions(
        &repo().join("pipelines"),
        &repo().join("device-profiles"),
        &dir.join("devices.csv"),
        &dir.join("crews.csv"),
    )
    .expect("definitions load")
}

/// Reads a recording into memory.
pub fn read_recording(path: &Path) -> Vec<RawMessage> {
    citybrain::ingest::recording::open_recording(path)
        .expect("recording opens")
        .map(|m| m.expect("recording line parses"))
        .collect()
}

/// "Now minus `mins` minutes", so a live publication never carries future timestamps.
pub fn minutes_ago(mins: i64) -> EventTime {
    EventTime(chrono::Utc::now().timestamp_millis() - mins * 60_000)
}

/// A real mosquitto; fails (never skips) with the install command when it is missing.
pub fn mosquitto() -> Mosquitto {
    match Mosquitto::start() {
        Ok(m) => m,
        Err(e) => panic!("a real MQTT broker is needed: {e} (apt-get install -y mosquitto)"),
    }
}

/// A live pipeline subscribed to `broker`, with one admin token.
pub struct LiveRig {
    pub live: Live,
    pub token: String,
    pub mqtt: MqttConfig,
}

pub fn start_live(broker: &Mosquitto, defs: Definitions) -> LiveRig {
    install_crypto_provider();
    let mut mqtt = MqttConfig::for_broker("127.0.0.1", broker.port);
    mqtt.client_id = format!("citybrain-test-{}", std::process::id());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind api");
    let (token, entry) = Auth::generate("tester", Role::Admin);
    let live = Live::start(LiveOptions {
        mqtt: mqtt.clone(),
        listener,
        auth: Auth::from_entries(vec![entry]),
        dataflow: DataflowConfig::default(),
        defs,
        dead_letters: Arc::new(DeadLetterLog::in_memory()),
        tile_url: None,
        influx: None,
    })
    .expect("live pipeline starts");
    LiveRig { live, token, mqtt }
}

impl LiveRig {
    /// Waits until the source is subscribed: publishes probes until one is received.
    pub async fn wait_subscribed(&self, publisher: &Publisher) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.live.source_stats.messages.load(Ordering::Relaxed) == 0 {
            assert!(
                Instant::now() < deadline,
                "the live source never received the probe"
            );
            publisher
                .publish("city/probe/ready", b"{}".to_vec(), 1, false)
                .await
                .expect("probe");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the engine has taken in (decoded and handed to the dataflow) `n` messages.
    pub async fn wait_received(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let got = sum_metric(&self.live.metrics.encode(), "citybrain_messages_total{") as u64;
            if got >= n {
                return;
            }
            assert!(Instant::now() < deadline, "received {got} of {n} messages");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.live.api_addr, path)
    }
}

/// Publishes messages in order, all at QoS 1 (so the broker keeps their order exactly: a mix
/// of QoS 0 and 1 may be reordered by a broker's in-flight window).
pub async fn publish_in_order(publisher: &Publisher, messages: &[RawMessage]) {
    for m in messages {
        publisher
            .publish(&m.topic, m.payload.clone(), 1, false)
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("all publishes acknowledged");
}

/// GET with a bearer token on a blocking thread; returns (status, body).
pub async fn get(url: String, token: Option<String>) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut req = agent.get(&url);
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.call().expect("http request");
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        (status, body)
    })
    .await
    .expect("http thread")
}

/// Incidents from the API.
pub async fn api_incidents(rig: &LiveRig, query: &str) -> Vec<Incident> {
    let (status, body) = get(
        rig.url(&format!("/api/v1/incidents{query}")),
        Some(rig.token.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("incident list JSON")
}

/// The value of an unlabelled or labelled sample in Prometheus text, 0 when absent.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// Sum of every sample of a labelled metric (`name{`).
pub fn sum_metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The comparable part of an incident (the store's wall-clock fields are left out).
pub fn essence(incidents: &[Incident]) -> Vec<String> {
    let mut out: Vec<String> = incidents
        .iter()
        .filter(|i| i.merged_into.is_none())
        .map(|i| {
            serde_json::json!({
                "id": i.id, "kind": i.kind, "severity": i.severity, "location": i.location,
                "departments": i.departments, "opened_at": i.opened_at,
                "detected_at": i.detected_at, "evidence": i.evidence,
            })
            .to_string()
        })
        .collect();
    out.sort();
    out
}
