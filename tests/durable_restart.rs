//! Crash safety of the incident store, end to end: the real binary (`citybrain run --config`)
//! against a real mosquitto with a state directory. A simulated water-main burst opens an
//! incident, an operator acknowledges it through the API (200), the process is killed with
//! SIGKILL and started again on the same state directory: the incident is still there,
//! acknowledged, with its audit trail, and the burst's later evidence joins it (the correlator
//! resumed it) instead of opening a duplicate.
//!
//! Needs `mosquitto` (apt-get install -y mosquitto); fails without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use citybrain::ingest::mqtt::MqttConfig;
use citybrain::ingest::publish::Publisher;
use citybrain::ingest::recording::RawMessage;
use citybrain::ingest::testkit::free_port;
use citybrain::model::EventTime;
use citybrain::sim::{InjectedKind, NoiseOptions, SimOptions, Truth};
use common::*;
use serde_json::Value;

const OPERATOR_TOKEN: &str = "durable-restart-operator-token";

/// The binary running `run --config`; SIGKILLed on drop if still running.
struct Citybrain {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Citybrain {
    fn start(dir: &Path, broker_port: u16, run: u32) -> Citybrain {
        let api_port = free_port().expect("free port");
        let repo = repo();
        let config = dir.join(format!("citybrain-{run}.yaml"));
        let text = format!(
            "mqtt: {{host: 127.0.0.1, port: {broker_port}, client_id: durable-restart-{pid}, qos: 1}}\n\
             api: {{listen: \"127.0.0.1:{api_port}\", tokens_file: tokens.yaml}}\n\
             paths: {{pipelines: {p}, device_profiles: {d}, devices: devices.csv, crews: crews.csv}}\n\
             state: {{dir: state}}\n",
            pid = std::process::id(),
            p = repo.join("pipelines").display(),
            d = repo.join("device-profiles").display(),
        );
        std::fs::write(&config, text).expect("config written");
        let log = dir.join(format!("citybrain-{run}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_citybrain"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("citybrain starts");
        let me = Citybrain {
            child,
            base: format!("http://127.0.0.1:{api_port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(&me.base, "GET", "/healthz", None).0 != 200 {
            assert!(
                Instant::now() < deadline,
                "API never came up:\n{}",
                me.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = http(&self.base, "GET", path, Some(OPERATOR_TOKEN));
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// `kill -9`: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Citybrain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(base: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let url = format!("{base}{path}");
    let result = if method == "POST" {
        let mut req = agent.post(&url).header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        req.send(r#"{"reason":"crew informed"}"#)
    } else {
        let mut req = agent.get(&url);
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        req.call()
    };
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            (status, resp.body_mut().read_to_string().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

fn bursts(app: &Citybrain) -> Vec<Value> {
    let (status, v) = app.get("/api/v1/incidents?kind=water_main_burst");
    assert_eq!(status, 200, "{v}\n{}", app.log_text());
    v.as_array().cloned().unwrap_or_default()
}

async fn publish(port: u16, messages: &[RawMessage]) {
    let mqtt = MqttConfig::for_broker("127.0.0.1", port);
    let publisher = Publisher::connect(&mqtt, "devices")
        .await
        .expect("publisher");
    publish_in_order(&publisher, messages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_incident_survives_kill_9_and_new_evidence_joins_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SimOptions::default_with_seed(21, minutes_ago(70), 60 * 60);
    opts.incidents = vec![InjectedKind::WaterMainBurst];
    opts.noise = NoiseOptions::none();
    simulate(dir.path(), &opts);
    let entry = format!(
        "- {{name: ops-1, role: operator, sha256: {}}}\n",
        citybrain::api::Auth::hash(OPERATOR_TOKEN)
    );
    std::fs::write(dir.path().join("tokens.yaml"), entry).expect("tokens file");
    let truth: Truth = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("truth.json")).expect("truth.json"),
    )
    .expect("truth parses");
    let burst = truth
        .incidents
        .iter()
        .find(|i| i.kind == "water_main_burst")
        .expect("a burst is injected");
    let messages = read_recording(&dir.path().join("recording.ndjson"));
    let broker = mosquitto();

    // Run 1: everything up to the burst, then minute by minute until it is an incident.
    let app = Citybrain::start(dir.path(), broker.port, 1);
    let position_after = |t: EventTime| {
        messages
            .iter()
            .position(|m| m.arrival > t)
            .unwrap_or(messages.len())
    };
    let mut sent = 0;
    let mut until = burst.start;
    let first = 'found: loop {
        let upto = position_after(until);
        publish(broker.port, &messages[sent..upto]).await;
        sent = upto;
        // Give the pipeline a moment to judge what it received.
        for _ in 0..20 {
            if let Some(b) = bursts(&app).first() {
                break 'found b.clone();
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        assert!(
            until.0 < burst.start.0 + 20 * 60_000,
            "no burst incident 20 min into the burst:\n{}",
            app.log_text()
        );
        until = EventTime(until.0 + 60_000);
    };
    let id = first["id"].as_str().expect("id").to_string();

    // The operator acknowledges it: 200 means it is on disk.
    let (status, body) = http(
        &app.base,
        "POST",
        &format!("/api/v1/incidents/{id}/ack"),
        Some(OPERATOR_TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    let (_, before) = app.get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(before["status"], "acknowledged");
    let evidence_before = before["evidence"].as_array().map_or(0, Vec::len);
    assert!(
        dir.path().join("state/citybrain.redb").is_file(),
        "state.dir is relative to the config file"
    );
    app.kill();

    // Run 2, same state dir.
    let app = Citybrain::start(dir.path(), broker.port, 2);
    let (status, after) = app.get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(
        status,
        200,
        "the incident survived: {after}\n{}",
        app.log_text()
    );
    assert_eq!(after["status"], "acknowledged");
    let history = after["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["action"], "ack");
    assert_eq!(history[0]["actor"], "ops-1");
    assert_eq!(history[0]["reason"], "crew informed");
    assert_eq!(
        history,
        before["history"].as_array().cloned().unwrap_or_default(),
        "audit trail intact"
    );
    let (status, trail) = app.get(&format!("/api/v1/incidents/{id}/history"));
    assert_eq!((status, trail.as_array().map(Vec::len)), (200, Some(1)));

    // The rest of the burst (the camera keeps seeing water on the road for ~20 min), but not
    // so far that the incident's quiet time would resolve it.
    let until = EventTime(burst.start.0 + 22 * 60_000);
    let end = position_after(until);
    assert!(end > sent, "evidence left to publish after the restart");
    publish(broker.port, &messages[sent..end]).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let grown = loop {
        let now = bursts(&app);
        assert_eq!(now.len(), 1, "no duplicate burst: {now:#?}");
        assert_eq!(now[0]["id"], id.as_str(), "the same incident");
        let n = now[0]["evidence"].as_array().map_or(0, Vec::len);
        if n > evidence_before {
            break now[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "new evidence never joined the incident ({n} pieces):\n{}",
            app.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(grown["status"], "acknowledged", "the lifecycle is kept");
    let (_, all) = app.get("/api/v1/incidents");
    let kinds: Vec<&str> = all
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["water_main_burst"], "nothing else was opened");
}
