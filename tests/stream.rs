//! The live stream (`GET /api/v1/stream`) against a real server on 127.0.0.1:0: changes arrive
//! in order with increasing ids, a client that reconnects with `Last-Event-ID` (or `?since=`)
//! gets exactly what it missed, device status changes stream too, and auth is enforced.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citybrain::api::{self, ApiState, Auth, Role, TokenEntry};
use citybrain::incident::{DeviceTable, IncidentStore};
use citybrain::model::{Device, EventTime, IncidentSnapshot, Location};
use citybrain::telemetry::Metrics;
use serde_json::Value;

const TOKEN: &str = "stream-test-viewer";

/// A running API server; stopped (gracefully, with streams open) on drop.
struct Server {
    base: String,
    store: Arc<IncidentStore>,
    devices: Arc<DeviceTable>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

fn start() -> Server {
    start_with_tiles(None)
}

fn start_with_tiles(tile_url: Option<String>) -> Server {
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(IncidentStore::new(Some(metrics.clone())));
    let devices = Arc::new(DeviceTable::new(vec![Device {
        device_id: "PG-1".into(),
        profile: "pressure-logger".into(),
        location: Location {
            lat: 1.3,
            lon: 103.8,
        },
        department: "water".into(),
        district: "central".into(),
    }]));
    let state = ApiState {
        store: store.clone(),
        devices: devices.clone(),
        metrics,
        auth: Arc::new(Auth::from_entries(vec![TokenEntry {
            name: "wall".into(),
            role: Role::Viewer,
            sha256: Auth::hash(TOKEN),
        }])),
        crews: None,
        tile_url,
        dispatch: None,
        definitions: Default::default(),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            api::serve(listener, state, async move {
                let _ = rx.await;
            })
            .await
        })
    });
    let server = Server {
        base,
        store,
        devices,
        stop: Some(tx),
        thread: Some(thread),
    };
    // The hub subscribes when `serve` starts: changes made before that are not streamed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ureq::get(format!("{}/healthz", server.base))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "server never came up");
        std::thread::sleep(Duration::from_millis(10));
    }
    server
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A correlator snapshot, built from JSON so fields added to the model later take their
/// serde defaults.
fn snapshot(id: &str, n_evidence: usize) -> IncidentSnapshot {
    let t0 = 1_790_000_000_000_i64;
    let at = |ms: i64| EventTime(t0 + ms).to_rfc3339();
    let evidence: Vec<Value> = (0..n_evidence as i64)
        .map(|k| {
            serde_json::json!({
                "device_id": "PG-1", "metric": "pressure_kpa", "detector": "step",
                "ts": at(k), "value": 231.0, "signal": "pressure_drop", "score": 0.9,
                "reason": "drop",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "id": id, "kind": "water_main_burst", "severity": "high",
        "location": {"lat": 1.3, "lon": 103.8}, "departments": ["water"],
        "opened_at": at(0), "detected_at": at(0), "updated_at": at(n_evidence as i64),
        "evidence": evidence,
    }))
    .expect("snapshot JSON")
}

/// One SSE event as received.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// An open stream; dropping it closes the connection.
struct Client {
    lines: BufReader<ureq::BodyReader<'static>>,
}

fn connect(base: &str, query: &str, last_event_id: Option<u64>, auth_header: bool) -> Client {
    let (status, client) = try_connect(base, query, last_event_id, auth_header);
    assert_eq!(status, 200, "stream answers 200");
    client.expect("stream body")
}

fn try_connect(
    base: &str,
    query: &str,
    last_event_id: Option<u64>,
    auth_header: bool,
) -> (u16, Option<Client>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent();
    let mut req = agent.get(format!("{base}/api/v1/stream{query}"));
    if auth_header {
        req = req.header("Authorization", format!("Bearer {TOKEN}"));
    }
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let resp = req.call().expect("stream request");
    let status = resp.status().as_u16();
    if status != 200 {
        return (status, None);
    }
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        ctype.starts_with("text/event-stream"),
        "content type {ctype}"
    );
    let reader = resp.into_body().into_reader();
    (
        status,
        Some(Client {
            lines: BufReader::new(reader),
        }),
    )
}

impl Client {
    /// The next event (comments/keep-alives skipped).
    fn next(&mut self) -> Sse {
        let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
        loop {
            let mut line = String::new();
            let n = self.lines.read_line(&mut line).expect("stream read");
            assert!(n > 0, "stream ended early");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Sse { id, event, data };
            }
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse().expect("numeric id"));
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    }

    /// The next event that is not `hello`.
    fn next_change(&mut self) -> Sse {
        loop {
            let e = self.next();
            if e.event != "hello" {
                return e;
            }
        }
    }
}

/// Waits until the hub has numbered `n` changes in total (the feeder runs asynchronously).
fn hello_latest(base: &str) -> u64 {
    let mut c = connect(base, "", None, true);
    let hello = c.next();
    assert_eq!(hello.event, "hello");
    assert!(hello.id.is_none(), "hello does not move Last-Event-ID");
    hello.data["latest"].as_u64().expect("latest")
}

fn wait_latest(base: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hello_latest(base) < n {
        assert!(Instant::now() < deadline, "hub never reached {n} changes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn changes_stream_in_order_and_a_reconnect_gets_exactly_what_it_missed() {
    let server = start();
    let mut client = connect(&server.base, "", None, true);
    let hello = client.next();
    assert_eq!(hello.event, "hello");
    assert_eq!(hello.data["latest"], 0);
    assert!(hello.data["epoch"].is_string());

    for k in 1..=3 {
        server
            .store
            .apply_snapshot(snapshot(&format!("inc-{k}"), 1));
    }
    let got: Vec<Sse> = (0..3).map(|_| client.next_change()).collect();
    let ids: Vec<u64> = got.iter().map(|e| e.id.expect("id")).collect();
    assert_eq!(ids, vec![1, 2, 3], "increasing sequence numbers");
    for (k, e) in got.iter().enumerate() {
        assert_eq!(e.event, "incident");
        assert_eq!(
            e.data["id"],
            format!("inc-{}", k + 1),
            "in publication order"
        );
        assert_eq!(e.data["status"], "open");
    }
    let last_seen = ids[2];
    drop(client);

    // While disconnected: an update, a lifecycle change, a new incident, a device change.
    server.store.apply_snapshot(snapshot("inc-1", 2));
    server
        .store
        .ack("inc-2", "ops", None, EventTime(1_790_000_100_000))
        .expect("ack");
    server.store.apply_snapshot(snapshot("inc-4", 1));
    server.devices.observe_reading(
        "PG-1",
        "pressure-logger",
        EventTime(1_790_000_000_000),
        EventTime(1_790_000_000_500),
    );
    wait_latest(&server.base, 7);

    let mut back = connect(&server.base, "", Some(last_seen), true);
    let missed: Vec<Sse> = (0..4).map(|_| back.next_change()).collect();
    let ids: Vec<u64> = missed.iter().map(|e| e.id.expect("id")).collect();
    assert_eq!(
        ids,
        vec![4, 5, 6, 7],
        "exactly the missed ones, numbered in order"
    );
    // Order is kept within each feed (incidents among themselves); the device feed is a
    // separate channel, so its change may be numbered before or after them.
    let incidents: Vec<&Sse> = missed.iter().filter(|e| e.event == "incident").collect();
    let names: Vec<&str> = incidents
        .iter()
        .filter_map(|e| e.data["id"].as_str())
        .collect();
    assert_eq!(
        names,
        vec!["inc-1", "inc-2", "inc-4"],
        "incident changes in order"
    );
    assert_eq!(
        incidents[0].data["evidence"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(incidents[1].data["status"], "acknowledged");
    let device = missed
        .iter()
        .find(|e| e.event == "device")
        .expect("a device event");
    assert_eq!(device.data["device_id"], "PG-1");
    assert_eq!(device.data["status"], "online", "never-seen -> online");

    // Nothing else is pending: the next event is the next change, not a duplicate. A reading
    // that changes no status is not a change (last-seen moves on every message).
    server.devices.observe_reading(
        "PG-1",
        "pressure-logger",
        EventTime(1_790_000_060_000),
        EventTime(1_790_000_060_500),
    );
    server.store.apply_snapshot(snapshot("inc-5", 1));
    let next = back.next_change();
    assert_eq!(
        (next.id, next.data["id"].clone()),
        (Some(8), "inc-5".into())
    );

    // `?since=` does the same for clients that cannot send headers (with ?access_token=).
    let mut by_query = connect(
        &server.base,
        &format!("?since=6&access_token={TOKEN}"),
        None,
        false,
    );
    let ids: Vec<u64> = (0..2)
        .map(|_| by_query.next_change().id.expect("id"))
        .collect();
    assert_eq!(ids, vec![7, 8]);
}

#[test]
fn a_sequence_number_from_another_server_run_gets_a_resync() {
    let server = start();
    server.store.apply_snapshot(snapshot("inc-1", 1));
    wait_latest(&server.base, 1);
    let mut client = connect(&server.base, "?since=500", None, true);
    let resync = client.next_change();
    assert_eq!(resync.event, "resync");
    assert_eq!(resync.id, Some(1), "moves the client to the newest change");
    assert_eq!(resync.data["latest"], 1);
    // It carries on streaming after the resync.
    server.store.apply_snapshot(snapshot("inc-2", 1));
    let next = client.next_change();
    assert_eq!(
        (next.id, next.data["id"].clone()),
        (Some(2), "inc-2".into())
    );
}

#[test]
fn the_stream_needs_a_token_and_refuses_bad_cursors() {
    let server = start();
    let (status, _) = try_connect(&server.base, "", None, false);
    assert_eq!(status, 401, "no token");
    let (status, _) = try_connect(&server.base, "?access_token=wrong", None, false);
    assert_eq!(status, 401, "unknown token in the query");
    let (status, _) = try_connect(&server.base, "?sinse=3", None, true);
    assert_eq!(status, 400, "unknown parameter");
    let (status, _) = try_connect(&server.base, "?since=-1", None, true);
    assert_eq!(status, 400, "negative since");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let resp = agent
        .get(format!("{}/api/v1/stream", server.base))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Last-Event-ID", "abc")
        .call()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400, "non-numeric Last-Event-ID");
    // Another route does not take the token from the query string.
    let resp = agent
        .get(format!(
            "{}/api/v1/incidents?access_token={TOKEN}",
            server.base
        ))
        .call()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
}

#[test]
fn shutdown_ends_open_streams() {
    let mut server = start();
    let mut client = connect(&server.base, "", None, true);
    assert_eq!(client.next().event, "hello");
    let started = Instant::now();
    if let Some(tx) = server.stop.take() {
        let _ = tx.send(());
    }
    if let Some(t) = server.thread.take() {
        t.join().expect("server thread").expect("server ran");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "graceful shutdown did not wait for the stream"
    );
    let mut rest = String::new();
    let n = client.lines.read_line(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "stream closed by the server: {rest:?}");
}

#[test]
fn the_page_its_assets_and_settings_need_no_token_but_me_does() {
    let tiles = "https://tiles.city.example/{z}/{x}/{y}.png";
    let server = start_with_tiles(Some(tiles.into()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let fetch = |path: &str, token: Option<&str>| {
        let mut req = agent.get(format!("{}{path}", server.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().expect("request");
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let csp = resp.headers().contains_key("content-security-policy");
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        (resp.status().as_u16(), ctype, csp, body)
    };
    let (code, ctype, csp, body) = fetch("/", None);
    assert_eq!(
        (code, ctype.as_str(), csp),
        (200, "text/html; charset=utf-8", true)
    );
    assert!(body.contains("/page/app.js"));
    for (asset, kind) in [("app.js", "text/javascript"), ("style.css", "text/css")] {
        let (code, ctype, _, body) = fetch(&format!("/page/{asset}"), None);
        assert_eq!(code, 200, "{asset}");
        assert!(ctype.starts_with(kind), "{asset}: {ctype}");
        assert!(body.len() > 500, "{asset} has content");
    }
    let (code, _, _, _) = fetch("/page/../../Cargo.toml", None);
    assert_eq!(code, 404, "only embedded assets are served");
    let (code, _, _, body) = fetch("/page/config.json", None);
    assert_eq!(code, 200);
    let cfg: Value = serde_json::from_str(&body).expect("config JSON");
    assert_eq!(cfg["tile_url"], tiles);
    let (code, _, _, _) = fetch("/api/v1/me", None);
    assert_eq!(code, 401);
    let (code, _, _, body) = fetch("/api/v1/me", Some(TOKEN));
    assert_eq!(code, 200);
    let me: Value = serde_json::from_str(&body).expect("me JSON");
    assert_eq!(me["name"], "wall");
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["can_operate"], false);
    let (code, _, _, body) = fetch("/api/v1/crews", Some(TOKEN));
    assert_eq!(
        (code, body.as_str()),
        (200, "[]"),
        "no crew board on this server"
    );

    // Recent readings for the charts: kept in time order, a repeated time replaced, bounded.
    let reading = |ms: i64, value: f64| -> citybrain::model::Reading {
        serde_json::from_value(serde_json::json!({
            "device_id": "PG-1", "profile": "pressure-logger", "metric": "pressure_kpa",
            "ts": EventTime(1_790_000_000_000 + ms).to_rfc3339(), "value": value,
            "arrival": EventTime(1_790_000_000_000 + ms).to_rfc3339(),
        }))
        .expect("reading JSON")
    };
    let n = citybrain::incident::RECENT_READINGS as i64;
    let mut batch: Vec<_> = (0..n + 5).map(|k| reading(k * 1000, k as f64)).collect();
    batch.push(reading(2500, 99.0)); // late
    batch.push(reading(10_000, -1.0)); // same time as an earlier one: replaces it
    server.devices.record_readings(&batch);
    let (code, _, _, body) = fetch("/api/v1/devices/PG-1/readings", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("readings JSON");
    let points = v["metrics"]["pressure_kpa"].as_array().expect("a series");
    assert_eq!(points.len() as i64, n, "bounded to the newest {n}");
    let values: Vec<f64> = points.iter().filter_map(|p| p["value"].as_f64()).collect();
    assert_eq!(
        values.first().copied(),
        Some(5.0),
        "oldest dropped first (the late one too)"
    );
    assert_eq!(values[5], -1.0, "the repeated time replaced the value");
    assert_eq!(values.last().copied(), Some((n + 4) as f64));
    let (code, _, _, _) = fetch("/api/v1/devices/NOPE/readings", Some(TOKEN));
    assert_eq!(code, 404);
    let (code, _, _, _) = fetch("/api/v1/devices/PG-1/readings", None);
    assert_eq!(code, 401);
}
