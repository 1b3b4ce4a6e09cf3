//! The command-centre page in a real browser: the live pipeline runs against a real mosquitto,
//! headless Chromium (Debian's `/usr/bin/chromium`, driven over CDP by chromiumoxide) loads the
//! page, signs in, sees an incident published over MQTT appear without a reload, acknowledges
//! it (checked on the API), and a viewer sees no action buttons. Saves a screenshot to
//! `target/test-artifacts/command-centre.png`.
//!
//! Needs mosquitto and chromium (`apt-get install -y mosquitto chromium`); fails without them.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use citybrain::api::{Auth, Role};
use citybrain::app::{Live, LiveOptions};
use citybrain::dataflow::DataflowConfig;
use citybrain::ingest::mqtt::{install_crypto_provider, MqttConfig};
use citybrain::ingest::publish::Publisher;
use citybrain::sim::{InjectedKind, NoiseOptions, SimOptions};
use citybrain::sink::DeadLetterLog;
use common::*;
use futures_util::StreamExt;
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
const OPERATOR: &str = "page-test-operator-token";
const VIEWER: &str = "page-test-viewer-token";

/// A quiet hour of the simulated city with a burst, an accident and a pollution episode.
fn city(dir: &Path) {
    let mut opts = SimOptions::default_with_seed(21, minutes_ago(70), 60 * 60);
    opts.incidents = vec![
        InjectedKind::WaterMainBurst,
        InjectedKind::TrafficAccident,
        InjectedKind::PollutionEpisode,
    ];
    opts.noise = NoiseOptions::none();
    simulate(dir, &opts);
}

/// The live pipeline with an operator and a viewer token.
fn start(broker: &citybrain::ingest::testkit::Mosquitto, dir: &Path) -> (Live, MqttConfig) {
    install_crypto_provider();
    let mut mqtt = MqttConfig::for_broker("127.0.0.1", broker.port);
    mqtt.client_id = format!("citybrain-page-{}", std::process::id());
    let entry = |name: &str, role, token: &str| citybrain::api::TokenEntry {
        name: name.into(),
        role,
        sha256: Auth::hash(token),
    };
    let live = Live::start(LiveOptions {
        mqtt: mqtt.clone(),
        listener: std::net::TcpListener::bind("127.0.0.1:0").expect("bind api"),
        auth: Auth::from_entries(vec![
            entry("ops-desk-1", Role::Operator, OPERATOR),
            entry("wall-screen", Role::Viewer, VIEWER),
        ]),
        dataflow: DataflowConfig::default(),
        defs: defs(dir),
        dead_letters: Arc::new(DeadLetterLog::in_memory()),
        tile_url: None,
        influx: None,
    })
    .expect("live pipeline starts");
    (live, mqtt)
}

/// Headless Chromium from Debian's package; fails (never skips) when it is missing.
async fn chromium(profile: &Path) -> Browser {
    assert!(
        Path::new(CHROMIUM).exists(),
        "chromium is needed at {CHROMIUM}: apt-get install -y chromium"
    );
    let config = BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .no_sandbox()
        .user_data_dir(profile)
        .window_size(1920, 1080)
        .viewport(Viewport {
            width: 1920,
            height: 1080,
            device_scale_factor: Some(1.0),
            ..Viewport::default()
        })
        .args([
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .build()
        .unwrap_or_else(|e| panic!("chromium config: {e}"));
    let (browser, mut handler) = Browser::launch(config)
        .await
        .unwrap_or_else(|e| panic!("chromium did not start ({e}): apt-get install -y chromium"));
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    browser
}

/// Evaluates a JS expression and returns its JSON value.
async fn js(page: &Page, expr: &str) -> Value {
    page.evaluate(expr)
        .await
        .unwrap_or_else(|e| panic!("evaluating {expr}: {e}"))
        .into_value()
        .unwrap_or(Value::Null)
}

/// Polls a JS expression until it is truthy; returns its value.
async fn wait_js(page: &Page, expr: &str, timeout: Duration, what: &str) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = js(page, expr).await;
        let truthy = !matches!(&v, Value::Null | Value::Bool(false)) && v != 0 && v != "";
        if truthy {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the page in a new tab (fresh sessionStorage) and signs in with `token`.
async fn sign_in(browser: &Browser, base: &str, token: &str) -> Page {
    let page = browser.new_page(format!("{base}/")).await.expect("page");
    page.wait_for_navigation().await.expect("page loads");
    wait_js(
        &page,
        "!document.getElementById('login').hidden",
        secs(10),
        "the login form",
    )
    .await;
    page.find_element("#token")
        .await
        .expect("token field")
        .click()
        .await
        .expect("focus")
        .type_str(token)
        .await
        .expect("type token");
    page.find_element("#login-btn")
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");
    wait_js(
        &page,
        "!document.getElementById('main').hidden",
        secs(10),
        "the main screen",
    )
    .await;
    wait_js(
        &page,
        "document.getElementById('conn').classList.contains('conn-live')",
        secs(10),
        "the live stream",
    )
    .await;
    page
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

async fn api_status(base: &str, id: &str) -> String {
    let (code, body) = get(
        format!("{base}/api/v1/incidents/{id}"),
        Some(OPERATOR.into()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("incident JSON");
    v["status"].as_str().unwrap_or_default().to_string()
}

fn artefact() -> PathBuf {
    let dir = repo().join("target").join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir.join("command-centre.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sees_an_mqtt_incident_live_and_acknowledges_it_in_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    city(dir.path());
    let broker = mosquitto();
    let (live, mqtt) = start(&broker, dir.path());
    let base = format!("http://{}", live.api_addr);
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let mut browser = chromium(profile.path()).await;

    // The page itself needs no token; the API does.
    let (code, html) = get(format!("{base}/"), None).await;
    assert_eq!(code, 200);
    assert!(html.contains("/page/app.js"), "the page loads its script");

    let page = sign_in(&browser, &base, OPERATOR).await;
    assert_eq!(
        js(&page, "document.getElementById('who-role').textContent").await,
        "operator"
    );
    let devices = wait_js(
        &page,
        "window.citybrain.state.deviceList.length",
        secs(10),
        "devices",
    )
    .await;
    assert!(
        devices.as_u64().unwrap_or(0) > 10,
        "registered devices on the map: {devices}"
    );
    assert_eq!(
        js(
            &page,
            "document.querySelectorAll('#list [data-incident-id]').length"
        )
        .await,
        0
    );
    // Survives only if the page is never reloaded.
    js(&page, "window.__notReloaded = true").await;

    // Devices and crews publish over MQTT; the incident must show up on its own.
    let publisher = Publisher::connect(&mqtt, "devices")
        .await
        .expect("publisher");
    let probe = LiveRig {
        live,
        token: OPERATOR.into(),
        mqtt: mqtt.clone(),
    };
    probe.wait_subscribed(&publisher).await;
    let crew_id = defs(dir.path())
        .registry
        .crews
        .keys()
        .next()
        .cloned()
        .expect("a crew");
    let messages = read_recording(&dir.path().join("recording.ndjson"));
    let started = Instant::now();
    publish_in_order(&publisher, &messages).await;
    let first = wait_js(
        &page,
        "(document.querySelector('#list [data-incident-id]') || {dataset: {}}).dataset.incidentId",
        secs(90),
        "an incident row in the list",
    )
    .await;
    let id = first.as_str().expect("incident id").to_string();
    eprintln!(
        "incident {id} on the page {:?} after publishing began",
        started.elapsed()
    );
    assert_eq!(
        js(&page, "window.__notReloaded === true").await,
        true,
        "no reload"
    );
    let stream = js(&page, "window.citybrain.stream()").await;
    assert!(
        stream["events"].as_u64().unwrap_or(0) > 0,
        "arrived over the stream: {stream}"
    );
    assert_eq!(api_status(&base, &id).await, "open");

    // A crew status over MQTT moves the crew on the map (crew feed → stream).
    let home = js(
        &page,
        &format!("window.citybrain.state.crews.get({crew_id:?}).home"),
    )
    .await;
    // The contract's status message: position a little way from home, on the road.
    let status = serde_json::json!({
        "crew_id": crew_id, "ts": chrono::Utc::now().to_rfc3339(), "state": "en_route",
        "lat": home["lat"].as_f64().expect("home lat") + 0.004,
        "lon": home["lon"].as_f64().expect("home lon") + 0.004,
    });
    publisher
        .publish(
            &format!("city/crews/{crew_id}/status"),
            status.to_string().into_bytes(),
            1,
            false,
        )
        .await
        .expect("crew status");
    wait_js(
        &page,
        &format!(
            "(window.citybrain.state.crews.get({crew_id:?}).status || {{}}).state === 'en_route'"
        ),
        secs(15),
        "the crew's new state on the page",
    )
    .await;

    // Select it, acknowledge it; the API agrees, and the page shows it.
    let row = format!("#list [data-incident-id=\"{id}\"]");
    page.find_element(row.as_str())
        .await
        .expect("row")
        .click()
        .await
        .expect("select");
    wait_js(
        &page,
        "!document.getElementById('panel').hidden",
        secs(5),
        "the incident panel",
    )
    .await;
    assert_eq!(
        js(&page, "document.getElementById('p-actions').hidden").await,
        false
    );
    page.find_element("#act-ack")
        .await
        .expect("ack button")
        .click()
        .await
        .expect("ack");
    let deadline = Instant::now() + secs(10);
    while api_status(&base, &id).await != "acknowledged" {
        assert!(
            Instant::now() < deadline,
            "the API never showed {id} acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_js(
        &page,
        &format!("document.querySelector('{row}').dataset.status === 'acknowledged'"),
        secs(10),
        "the acknowledged status in the list",
    )
    .await;
    wait_js(
        &page,
        "document.getElementById('p-audit').textContent.includes('ops-desk-1')",
        secs(10),
        "the audit trail naming the operator",
    )
    .await;

    // A refused action is shown as the server worded it (409: already acknowledged).
    js(&page, "(() => { const b = document.getElementById('act-ack'); b.disabled = false; b.click(); })()").await;
    let err = wait_js(
        &page,
        "(e => !e.hidden && e.textContent)(document.getElementById('p-error'))",
        secs(10),
        "the error message",
    )
    .await;
    assert!(
        err.as_str().unwrap_or("").contains("Not possible now"),
        "shown error: {err}"
    );

    // The charts show the devices' recent readings around the evidence.
    wait_js(
        &page,
        "[...document.querySelectorAll('#p-charts .chart')].some(c => Number(c.dataset.readings) > 1)",
        secs(10),
        "a chart drawn from recent readings",
    )
    .await;

    // Let the rest of the city arrive, then keep a picture of the screen.
    probe.wait_received(messages.len() as u64 + 1).await;
    js(&page, "document.getElementById('p-error').hidden = true").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let png = page
        .save_screenshot(ScreenshotParams::builder().build(), artefact())
        .await
        .expect("screenshot");
    assert!(
        png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );

    assert_eq!(
        js(&page, "window.citybrain.cspViolations").await,
        serde_json::json!([]),
        "the page's CSP blocked something it uses"
    );

    // A viewer sees the same incidents, and no action buttons.
    let wall = sign_in(&browser, &base, VIEWER).await;
    assert_eq!(
        js(&wall, "document.getElementById('who-role').textContent").await,
        "viewer"
    );
    wait_js(
        &wall,
        &format!("document.querySelector('{row}') !== null"),
        secs(10),
        "the incident for the viewer",
    )
    .await;
    wall.find_element(row.as_str())
        .await
        .expect("row")
        .click()
        .await
        .expect("select");
    wait_js(
        &wall,
        "!document.getElementById('panel').hidden",
        secs(5),
        "the viewer's panel",
    )
    .await;
    assert_eq!(
        js(&wall, "document.getElementById('p-actions').hidden").await,
        true
    );
    assert_eq!(
        js(
            &wall,
            "document.getElementById('act-ack').offsetParent === null"
        )
        .await,
        true
    );

    browser.close().await.expect("chromium closes");
    let _ = browser.wait().await;
    probe
        .live
        .stop()
        .await
        .expect("pipeline stops with pages connected");
}
