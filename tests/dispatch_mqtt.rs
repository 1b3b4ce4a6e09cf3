//! Crew dispatch end to end through a real mosquitto: crews report `available`, a simulated
//! water-main burst is published, citybrain dispatches the nearest water crew AND the nearest
//! traffic crew on `city/crews/{id}/dispatch`; a decline goes to the next-nearest crew at once,
//! a crew that never answers is escalated at the answer timeout, operators see both
//! escalations on the API (and through a signed webhook), and the burst's many snapshots never
//! produce a second dispatch. Needs `mosquitto` (apt-get install -y mosquitto); fails without it.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citybrain::api::{Auth, Role};
use citybrain::app::{Live, LiveOptions};
use citybrain::dataflow::DataflowConfig;
use citybrain::incident::dispatch::{DispatchConfig, DispatchMessage, TokioClock};
use citybrain::ingest::mqtt::{install_crypto_provider, MqttConfig};
use citybrain::ingest::publish::Publisher;
use citybrain::model::{Crew, Location};
use citybrain::sim::{InjectedKind, NoiseOptions, SimOptions};
use citybrain::sink::dispatch::DispatchSetup;
use citybrain::sink::webhook::{sign, WebhookConfig};
use citybrain::sink::DeadLetterLog;
use common::*;
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// Seconds a crew has to answer in this test.
const ANSWER_TIMEOUT_SECS: u64 = 5;
const HOOK_SECRET: &str = "test-secret-0123456789";

/// Subscribes to every crew's dispatch topic; returns the messages as they arrive.
async fn watch_dispatches(port: u16) -> mpsc::UnboundedReceiver<DispatchMessage> {
    let mut opts = MqttOptions::new(
        format!("crew-tablets-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    opts.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    client
        .subscribe("city/crews/+/dispatch", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready) = mpsc::channel(1);
    tokio::spawn(async move {
        let _client = client; // the event loop stops when its client is dropped
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let msg: DispatchMessage =
                        serde_json::from_slice(&p.payload).expect("dispatch JSON");
                    assert_eq!(p.topic, format!("city/crews/{}/dispatch", msg.crew_id));
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready.recv())
        .await
        .expect("subscribed within 10 s");
    rx
}

/// An axum receiver that checks every webhook signature and keeps the bodies.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let signature = headers
                    .get("x-citybrain-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if signature != sign(HOOK_SECRET, &body) {
                    return StatusCode::UNAUTHORIZED;
                }
                seen.lock()
                    .push(serde_json::from_slice(&body).expect("JSON body"));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn crews(dir: &std::path::Path) -> Vec<Crew> {
    let mut reader = csv::Reader::from_path(dir.join("crews.csv")).expect("crews.csv");
    reader
        .records()
        .map(|r| {
            let r = r.expect("crew row");
            Crew {
                crew_id: r[0].to_string(),
                department: r[1].to_string(),
                home: Location {
                    lat: r[2].parse().expect("lat"),
                    lon: r[3].parse().expect("lon"),
                },
                skills: r[4].split(';').map(str::to_string).collect(),
            }
        })
        .collect()
}

/// Crew ids of `department`, nearest to `at` first.
fn by_distance(crews: &[Crew], department: &str, at: &Location) -> Vec<String> {
    let mut c: Vec<&Crew> = crews
        .iter()
        .filter(|c| c.department == department)
        .collect();
    c.sort_by(|a, b| a.home.distance_m(at).total_cmp(&b.home.distance_m(at)));
    c.into_iter().map(|c| c.crew_id.clone()).collect()
}

async fn next_dispatch(
    rx: &mut mpsc::UnboundedReceiver<DispatchMessage>,
    what: &str,
) -> DispatchMessage {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no dispatch within 15 s: {what}"))
        .expect("watcher running")
}

async fn post(url: String, token: &str, body: &str) -> (u16, String) {
    let (token, body) = (token.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut resp = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .expect("http request");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    })
    .await
    .expect("http thread")
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_dispatches_water_and_traffic_crews_and_escalates_declines_and_silence() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SimOptions::default_with_seed(21, minutes_ago(70), 60 * 60);
    opts.incidents = vec![InjectedKind::WaterMainBurst];
    opts.noise = NoiseOptions::none();
    simulate(dir.path(), &opts);
    let crews = crews(dir.path());
    let broker = mosquitto();
    install_crypto_provider();

    // The pipeline, with a short answer timeout, an operator token, one token per crew and a
    // webhook to a local receiver.
    let mut mqtt = MqttConfig::for_broker("127.0.0.1", broker.port);
    mqtt.client_id = format!("citybrain-dispatch-test-{}", std::process::id());
    let (admin, admin_entry) = Auth::generate("ops-1", Role::Admin);
    let mut entries = vec![admin_entry];
    let mut crew_tokens = HashMap::new();
    for c in &crews {
        let (token, entry) = Auth::generate(&c.crew_id, Role::Crew);
        crew_tokens.insert(c.crew_id.clone(), token);
        entries.push(entry);
    }
    let (hook_url, hook_bodies) = webhook_receiver().await;
    let mut hook = WebhookConfig::new("test-hook", &hook_url, HOOK_SECRET);
    hook.retry_min_ms = 20;
    let setup = DispatchSetup {
        config: DispatchConfig {
            answer_timeout_secs: ANSWER_TIMEOUT_SECS,
            ..DispatchConfig::default()
        },
        webhooks: vec![hook],
        clock: TokioClock::new(),
    };
    let live = Live::start_dispatching(
        LiveOptions {
            mqtt: mqtt.clone(),
            listener: std::net::TcpListener::bind("127.0.0.1:0").expect("bind api"),
            auth: Auth::from_entries(entries),
            dataflow: DataflowConfig::default(),
            defs: defs(dir.path()),
            dead_letters: Arc::new(DeadLetterLog::in_memory()),
            tile_url: None,
            influx: None,
        },
        None,
        setup,
    )
    .expect("live pipeline starts");
    let rig = LiveRig {
        live,
        token: admin.clone(),
        mqtt: mqtt.clone(),
    };
    let mut dispatches = watch_dispatches(broker.port).await;
    let publisher = Publisher::connect(&mqtt, "devices")
        .await
        .expect("publisher");
    rig.wait_subscribed(&publisher).await;

    // Every crew reports available at home, then the city publishes until the dispatches come.
    for c in &crews {
        let status = serde_json::json!({"crew_id": c.crew_id, "ts": now_rfc3339(),
            "lat": c.home.lat, "lon": c.home.lon, "state": "available"});
        let topic = format!("city/crews/{}/status", c.crew_id);
        publisher
            .publish(&topic, status.to_string().into_bytes(), 1, false)
            .await
            .expect("status");
    }
    let messages = read_recording(&dir.path().join("recording.ndjson"));
    let mut first = Vec::new();
    for chunk in messages.chunks(200) {
        publish_in_order(&publisher, chunk).await;
        while let Ok(m) = dispatches.try_recv() {
            first.push(m);
        }
        if first.len() >= 2 {
            break;
        }
    }
    while first.len() < 2 {
        first.push(next_dispatch(&mut dispatches, "first crews").await);
    }
    let dispatched_at = Instant::now();
    first.sort_by(|a, b| a.department.cmp(&b.department));
    let (traffic, water) = (first[0].clone(), first[1].clone());
    assert_eq!(
        (traffic.department.as_str(), water.department.as_str()),
        ("traffic", "water")
    );
    assert_eq!(
        traffic.incident_id, water.incident_id,
        "one incident, two departments"
    );
    assert_eq!(water.kind, "water_main_burst");
    let incident_id = water.incident_id.clone();
    let incident = api_incidents(&rig, "?kind=water_main_burst").await;
    assert_eq!(incident.len(), 1, "{incident:#?}");
    assert_eq!(incident[0].id, incident_id);
    // Where the dispatcher saw the incident (its location may move a little as evidence grows).
    let at = water.location;
    assert_eq!(traffic.location, at);
    assert!(
        water.evidence.devices.iter().any(|d| d.starts_with("PG-")),
        "{:?}",
        water.evidence
    );
    assert!(
        water
            .evidence
            .summary
            .starts_with("Water main burst (critical)"),
        "{}",
        water.evidence.summary
    );
    let water_order = by_distance(&crews, "water", &at);
    let traffic_order = by_distance(&crews, "traffic", &at);
    assert_eq!(water.crew_id, water_order[0], "nearest water crew");
    assert_eq!(traffic.crew_id, traffic_order[0], "nearest traffic crew");

    // The water crew declines over MQTT: the next-nearest water crew is sent at once.
    let ack =
        serde_json::json!({"incident_id": incident_id, "ts": now_rfc3339(), "action": "decline"});
    let topic = format!("city/crews/{}/ack", water.crew_id);
    publisher
        .publish(&topic, ack.to_string().into_bytes(), 1, false)
        .await
        .expect("decline");
    let second_water = next_dispatch(&mut dispatches, "after the decline").await;
    assert_eq!(
        (
            second_water.department.as_str(),
            second_water.crew_id.as_str()
        ),
        ("water", water_order[1].as_str())
    );
    assert!(
        dispatched_at.elapsed() < Duration::from_secs(ANSWER_TIMEOUT_SECS),
        "the decline, not the timeout, moved it"
    );

    // That crew accepts through the API with its own token; another crew's token may not.
    let ack_url = rig.url(&format!(
        "/api/v1/dispatches/{}/ack",
        second_water.dispatch_id
    ));
    let stranger = &crew_tokens[&traffic_order[2]];
    let (status, body) = post(ack_url.clone(), stranger, r#"{"action":"accept"}"#).await;
    assert_eq!(status, 403, "{body}");
    let own = &crew_tokens[&second_water.crew_id];
    let (status, body) = post(ack_url, own, r#"{"action":"accept"}"#).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = get(
        rig.url(&format!("/api/v1/incidents/{incident_id}")),
        Some(admin.clone()),
    )
    .await;
    let now: serde_json::Value = serde_json::from_str(&body).expect("incident JSON");
    assert_eq!(now["status"], "dispatched", "{body}");

    // The traffic crew never answers: at the timeout the next-nearest traffic crew is sent.
    let second_traffic = next_dispatch(&mut dispatches, "after the answer timeout").await;
    assert_eq!(
        (
            second_traffic.department.as_str(),
            second_traffic.crew_id.as_str()
        ),
        ("traffic", traffic_order[1].as_str())
    );
    assert!(dispatched_at.elapsed() >= Duration::from_secs(ANSWER_TIMEOUT_SECS - 1));
    let ack =
        serde_json::json!({"incident_id": incident_id, "ts": now_rfc3339(), "action": "accept"});
    let topic = format!("city/crews/{}/ack", second_traffic.crew_id);
    publisher
        .publish(&topic, ack.to_string().into_bytes(), 1, false)
        .await
        .expect("accept");

    // Operators see both escalations.
    let (status, body) = get(rig.url("/api/v1/escalations"), Some(admin.clone())).await;
    assert_eq!(status, 200, "{body}");
    let escalations: Vec<serde_json::Value> = serde_json::from_str(&body).expect("JSON");
    let summary: Vec<(String, String, String)> = escalations
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("reason"), s("from_crew"), s("to_crew"))
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "declined".into(),
                water.crew_id.clone(),
                second_water.crew_id.clone()
            ),
            (
                "no_answer".into(),
                traffic.crew_id.clone(),
                second_traffic.crew_id.clone()
            ),
        ]
    );

    // Nothing else is ever sent: every snapshot of the growing burst was the same case.
    tokio::time::sleep(Duration::from_secs(ANSWER_TIMEOUT_SECS + 1)).await;
    assert!(dispatches.try_recv().is_err(), "an extra dispatch was sent");
    let (_, body) = get(
        rig.url(&format!("/api/v1/incidents/{incident_id}/dispatches")),
        Some(admin.clone()),
    )
    .await;
    let both: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let statuses: BTreeMap<String, String> = both["dispatches"]
        .as_array()
        .expect("dispatches")
        .iter()
        .map(|d| {
            (
                d["crew_id"].as_str().unwrap_or_default().to_string(),
                d["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expect: BTreeMap<String, String> = [
        (water.crew_id.clone(), "declined"),
        (second_water.crew_id.clone(), "accepted"),
        (traffic.crew_id.clone(), "timed_out"),
        (second_traffic.crew_id.clone(), "accepted"),
    ]
    .into_iter()
    .map(|(c, s)| (c, s.to_string()))
    .collect();
    assert_eq!(statuses, expect);
    let (_, body) = get(
        rig.url(&format!("/api/v1/dispatches?crew_id={}", water.crew_id)),
        Some(crew_tokens[&second_water.crew_id].clone()),
    )
    .await;
    assert_eq!(body, "[]", "a crew sees only its own dispatches");

    // The webhook got the escalations, signed, in order.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bodies = hook_bodies.lock().clone();
        let escalated: Vec<&serde_json::Value> = bodies
            .iter()
            .filter(|b| b["event"] == "dispatch.escalated")
            .collect();
        if escalated.len() == 2 {
            let seqs: Vec<u64> = bodies.iter().filter_map(|b| b["seq"].as_u64()).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
            assert!(bodies.iter().any(|b| b["event"] == "incident.changed"));
            assert_eq!(escalated[0]["data"]["reason"], "declined");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhook escalations: {bodies:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.live.stop().await.expect("stops");
    eprintln!(
        "dispatch over mqtt: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
