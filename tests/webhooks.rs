//! Webhooks against a real HTTP server (axum on 127.0.0.1:0) that verifies every signature:
//! events survive failing requests and arrive all, in order, signed; a full queue drops its
//! oldest events (counted) without ever blocking the caller; a refused event does not hold up
//! the next one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use citybrain::incident::dispatch::TokioClock;
use citybrain::sink::webhook::{WebhookConfig, WebhookEvent, WebhookEventKind, WebhookSink};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::sync::watch;

const SECRET: &str = "a-shared-secret-for-tests";

/// What the receiver saw.
#[derive(Default)]
struct Receiver {
    /// Requests so far (accepted or not).
    requests: AtomicUsize,
    /// Answer 500 to the first this-many requests.
    fail_first: usize,
    /// Answer 500 to everything while set.
    down: std::sync::atomic::AtomicBool,
    /// Answer 422 to events whose `data.n` is this.
    refuse_n: Option<u64>,
    /// Accepted bodies, in arrival order.
    accepted: Mutex<Vec<serde_json::Value>>,
    /// Requests whose signature did not verify.
    bad_signatures: AtomicUsize,
}

/// Verifies `X-Citybrain-Signature` independently of citybrain's own `sign`.
fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(hex_sig) = headers
        .get("x-citybrain-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = r.requests.fetch_add(1, Ordering::SeqCst);
    if !verify(&headers, &body) {
        r.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if n < r.fail_first || r.down.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
    let event = headers
        .get("x-citybrain-event")
        .and_then(|v| v.to_str().ok());
    assert_eq!(event, value["event"].as_str(), "header and body agree");
    if r.refuse_n.is_some() && value["data"]["n"].as_u64() == r.refuse_n {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    r.accepted.lock().push(value);
    StatusCode::OK
}

async fn serve(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn config(url: &str, queue_capacity: usize) -> WebhookConfig {
    let mut c = WebhookConfig::new("test", url, SECRET);
    c.queue_capacity = queue_capacity;
    c.retry_min_ms = 10;
    c.retry_max_ms = 80;
    c
}

fn event(n: u64) -> WebhookEvent {
    WebhookEvent {
        kind: WebhookEventKind::Incident,
        name: "incident.changed",
        data: serde_json::json!({ "n": n }),
    }
}

async fn wait_accepted(r: &Receiver, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: Vec<u64> = r
            .accepted
            .lock()
            .iter()
            .filter_map(|v| v["data"]["n"].as_u64())
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "accepted only {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_in_order_and_signed_despite_failing_requests() {
    let receiver = Arc::new(Receiver {
        fail_first: 5,
        ..Receiver::default()
    });
    let url = serve(receiver.clone()).await;
    let (_stop, shutdown) = watch::channel(false);
    let (sink, _tasks) =
        WebhookSink::start(vec![config(&url, 1000)], TokioClock::new(), None, shutdown)
            .expect("sink starts");
    let started = Instant::now();
    for n in 1..=30 {
        sink.push(&event(n));
    }
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "push never waits"
    );
    let got = wait_accepted(&receiver, 30).await;
    assert_eq!(got, (1..=30).collect::<Vec<u64>>(), "all, in order");
    let bodies = receiver.accepted.lock().clone();
    let seqs: Vec<u64> = bodies.iter().filter_map(|b| b["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
    assert!(bodies
        .iter()
        .all(|b| b["at"].is_string() && b["event"] == "incident.changed"));
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!(
        receiver.requests.load(Ordering::SeqCst),
        35,
        "5 failures retried"
    );
    let stats = sink.stats("test").expect("stats");
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 30);
    assert_eq!(stats.failed_attempts.load(Ordering::Relaxed), 5);
    assert_eq!(stats.dropped_queue_full.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_its_oldest_events_and_counts_them() {
    let receiver = Arc::new(Receiver::default());
    receiver.down.store(true, Ordering::SeqCst);
    let url = serve(receiver.clone()).await;
    let (_stop, shutdown) = watch::channel(false);
    let metrics = Arc::new(citybrain::telemetry::Metrics::new());
    let (sink, _tasks) = WebhookSink::start(
        vec![config(&url, 3)],
        TokioClock::new(),
        Some(metrics.clone()),
        shutdown,
    )
    .expect("sink starts");
    // Event 1 is taken by the worker and retried while the receiver is down...
    sink.push(&event(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.requests.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the worker never tried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...while 2..=10 pile up in a queue of 3: 2..=7 are dropped, oldest first.
    for n in 2..=10 {
        sink.push(&event(n));
    }
    assert_eq!(sink.queued("test"), 3);
    let stats = sink.stats("test").expect("stats");
    assert_eq!(stats.dropped_queue_full.load(Ordering::Relaxed), 6);
    let text = metrics.encode();
    assert!(
        text.contains(r#"citybrain_webhook_dropped_total{reason="queue_full",webhook="test"} 6"#),
        "{text}"
    );
    receiver.down.store(false, Ordering::SeqCst);
    assert_eq!(wait_accepted(&receiver, 4).await, vec![1, 8, 9, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_dropped_and_does_not_hold_up_the_next() {
    let receiver = Arc::new(Receiver {
        refuse_n: Some(2),
        ..Receiver::default()
    });
    let url = serve(receiver.clone()).await;
    let (_stop, shutdown) = watch::channel(false);
    let (sink, _tasks) =
        WebhookSink::start(vec![config(&url, 100)], TokioClock::new(), None, shutdown)
            .expect("sink starts");
    for n in 1..=3 {
        sink.push(&event(n));
    }
    assert_eq!(wait_accepted(&receiver, 2).await, vec![1, 3]);
    let stats = sink.stats("test").expect("stats");
    assert_eq!(stats.dropped_other.load(Ordering::Relaxed), 1);
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 3, "never retried");
}
