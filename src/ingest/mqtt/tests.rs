//! Source, publisher and recorder against a real mosquitto (see `ingest::testkit`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::*;
use crate::ingest::publish::{publish_recording, Pace, Publisher};
use crate::ingest::recording::RawMessage;
use crate::ingest::testkit::Mosquitto;
use crate::model::EventTime;

pub(super) const WAIT: Duration = Duration::from_secs(15);

pub(super) fn broker() -> Mosquitto {
    Mosquitto::start().unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn cfg_for(m: &Mosquitto, name: &str) -> MqttConfig {
    MqttConfig {
        client_id: format!("{name}-{}", std::process::id()),
        reconnect_min_ms: 50,
        reconnect_max_ms: 400,
        ..MqttConfig::for_broker("127.0.0.1", m.port)
    }
}

struct Running {
    rx: mpsc::Receiver<RawMessage>,
    stats: Arc<SourceStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), MqttError>>,
}

fn spawn_source(cfg: MqttConfig, capacity: usize) -> Running {
    let (tx, rx) = mpsc::channel(capacity);
    let stats = Arc::new(SourceStats::default());
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run_source(cfg, tx, stats.clone(), stop_rx));
    Running {
        rx,
        stats,
        stop,
        task,
    }
}

impl Running {
    async fn finish(self) {
        self.stop.send(true).expect("source still running");
        let res = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("stops in time");
        res.expect("joins").expect("source ends cleanly");
    }
}

pub(super) async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes QoS 0 probes until one comes through `rx` (the subscription is then active).
async fn probe(publisher: &Publisher, rx: &mut mpsc::Receiver<RawMessage>) {
    for i in 0..100 {
        let topic = format!("city/probe/{i}");
        publisher
            .publish(&topic, b"probe".to_vec(), 0, false)
            .await
            .expect("probe publish");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(150), rx.recv()).await {
            assert!(m.topic.starts_with("city/probe/"), "unexpected {m:?}");
            return;
        }
    }
    panic!("subscription never became active");
}

/// Receives `n` messages under `city/test/`, skipping late probes.
async fn recv_test(rx: &mut mpsc::Receiver<RawMessage>, n: usize) -> Vec<RawMessage> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", got.len()))
            .expect("source channel open");
        if m.topic.starts_with("city/test/") {
            got.push(m);
        }
    }
    got
}

pub(super) fn payload(i: usize) -> Vec<u8> {
    format!("{{\"seq\":{i}}}").into_bytes()
}

fn seq_of(p: &[u8]) -> usize {
    let v: serde_json::Value = serde_json::from_slice(p).expect("test payload");
    v["seq"].as_u64().expect("seq") as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_qos1_message_arrives_in_order_through_a_small_channel() {
    let m = broker();
    let mut src = spawn_source(cfg_for(&m, "src-order"), 4);
    let publisher = Publisher::connect(&cfg_for(&m, "pub-order"), "t")
        .await
        .expect("connects");
    probe(&publisher, &mut src.rx).await;
    let n = 2000;
    for i in 0..n {
        publisher
            .publish("city/test/order", payload(i), 1, false)
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("all acknowledged");
    let mut got = Vec::new();
    for chunk in 0..n / 100 {
        got.extend(recv_test(&mut src.rx, 100).await);
        if chunk % 5 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await; // a slow consumer
        }
    }
    let want: Vec<Vec<u8>> = (0..n).map(payload).collect();
    assert_eq!(
        got.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
        want
    );
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        got.iter()
            .all(|m| (now - m.arrival.millis()).abs() < 60_000),
        "wall-clock arrival"
    );
    assert!(got.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    assert!(src.stats.messages.load(Ordering::Relaxed) >= n as u64);
    assert_eq!(src.stats.shed_qos0.load(Ordering::Relaxed), 0);
    assert_eq!(src.stats.reconnects.load(Ordering::Relaxed), 0);
    publisher.disconnect().await;
    src.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_reconnects_with_backoff_after_a_broker_restart() {
    let mut m = broker();
    let mut src = spawn_source(cfg_for(&m, "src-restart"), 64);
    {
        let publisher = Publisher::connect(&cfg_for(&m, "pub-r1"), "t")
            .await
            .expect("connects");
        probe(&publisher, &mut src.rx).await;
        for i in 0..10 {
            publisher
                .publish("city/test/before", payload(i), 1, false)
                .await
                .expect("publish");
        }
        publisher.flush().await.expect("acknowledged");
        assert_eq!(recv_test(&mut src.rx, 10).await.len(), 10);
        publisher.disconnect().await;
    }
    m.stop();
    let stats = src.stats.clone();
    wait_until("source to notice", || {
        !stats.connected.load(Ordering::Relaxed)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await; // a few failed attempts with backoff
    m.restart().unwrap_or_else(|e| panic!("{e}"));
    wait_until("reconnect", || stats.reconnects.load(Ordering::Relaxed) > 0).await;
    assert!(stats.connected.load(Ordering::Relaxed));

    // mosquitto restarted without persistence: the source must have resubscribed.
    let publisher = Publisher::connect(&cfg_for(&m, "pub-r2"), "t")
        .await
        .expect("reconnects");
    probe(&publisher, &mut src.rx).await;
    for i in 0..50 {
        publisher
            .publish("city/test/after", payload(i), 1, false)
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("acknowledged");
    let got = recv_test(&mut src.rx, 50).await;
    assert_eq!(
        got.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
        (0..50).map(payload).collect::<Vec<_>>()
    );
    assert_eq!(stats.reconnects.load(Ordering::Relaxed), 1);
    // ~1 s down with 50 ms doubling to 400 ms: a handful of attempts, not a busy loop.
    let errors = stats.connect_errors.load(Ordering::Relaxed);
    assert!(
        (2..=15).contains(&errors),
        "{errors} connection errors while the broker was down"
    );
    publisher.disconnect().await;
    src.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_is_shed_and_counted_when_downstream_is_full() {
    let m = broker();
    let mut src = spawn_source(cfg_for(&m, "src-shed"), 2);
    let publisher = Publisher::connect(&cfg_for(&m, "pub-shed"), "t")
        .await
        .expect("connects");
    probe(&publisher, &mut src.rx).await;
    let before = src.stats.messages.load(Ordering::Relaxed);
    let shed_before = src.stats.shed_qos0.load(Ordering::Relaxed);
    let n = 300u64;
    for i in 0..n as usize {
        publisher
            .publish("city/test/shed", payload(i), 0, false)
            .await
            .expect("publish");
    }
    // Publish a QoS 1 marker last: it must not be shed and must arrive after the kept QoS 0s.
    publisher
        .publish("city/test/marker", b"end".to_vec(), 1, false)
        .await
        .expect("publish");
    publisher.flush().await.expect("acknowledged");
    let stats = src.stats.clone();
    wait_until("all delivered to the source", || {
        stats.messages.load(Ordering::Relaxed) > before + n
    })
    .await;
    let shed = stats.shed_qos0.load(Ordering::Relaxed) - shed_before;
    assert!(
        shed >= n - 10,
        "only {shed} of {n} shed with a full channel"
    );
    let mut kept = Vec::new();
    loop {
        let m = recv_test(&mut src.rx, 1).await.remove(0);
        if m.topic == "city/test/marker" {
            break;
        }
        kept.push(m.payload);
    }
    assert_eq!(
        kept.len() as u64 + shed,
        n,
        "every qos 0 message is either kept or counted"
    );
    let seqs: Vec<usize> = kept.iter().map(|p| seq_of(p)).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "kept messages out of order: {seqs:?}"
    );
    publisher.disconnect().await;
    src.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_recording_keeps_order_and_paces_by_speedup() {
    let m = broker();
    let mut src = spawn_source(cfg_for(&m, "src-replay"), 1024);
    let publisher = Publisher::connect(&cfg_for(&m, "pub-probe"), "t")
        .await
        .expect("connects");
    probe(&publisher, &mut src.rx).await;
    publisher.disconnect().await;
    // 21 messages over 2 s of recorded time, replayed at 10x: at least 200 ms.
    let recorded: Vec<RawMessage> = (0..21)
        .map(|i| RawMessage {
            arrival: EventTime(1_795_335_330_000 + i as i64 * 100),
            topic: if i % 2 == 0 {
                "city/test/cameras".into()
            } else {
                "city/test/water".into()
            },
            payload: payload(i),
        })
        .collect();
    let started = std::time::Instant::now();
    let cfg = MqttConfig {
        client_id: "replayer".into(),
        ..cfg_for(&m, "x")
    };
    let n = publish_recording(&cfg, recorded.clone().into_iter(), Pace::Speedup(10.0))
        .await
        .expect("replays");
    assert_eq!(n, 21);
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    let got = recv_test(&mut src.rx, 21).await;
    let got: Vec<(String, Vec<u8>)> = got.into_iter().map(|m| (m.topic, m.payload)).collect();
    let want: Vec<(String, Vec<u8>)> = recorded.into_iter().map(|m| (m.topic, m.payload)).collect();
    assert_eq!(got, want);
    assert!(matches!(
        publish_recording(&cfg, std::iter::empty(), Pace::Speedup(0.0)).await,
        Err(MqttError::InvalidPace(_))
    ));
    src.finish().await;
}

#[tokio::test]
async fn publisher_connect_fails_fast_without_a_broker() {
    let port = crate::ingest::testkit::free_port().expect("port");
    let cfg = MqttConfig::for_broker("127.0.0.1", port);
    match Publisher::connect(&cfg, "t").await {
        Err(MqttError::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{port}")),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
}
