//! End to end through a real mosquitto: devices publish, citybrain ingests live, the API shows
//! the incidents. Needs `mosquitto` (apt-get install -y mosquitto); fails without it.

mod common;

use citybrain::app::replay_recording;
use citybrain::dataflow::DataflowConfig;
use citybrain::ingest::publish::Publisher;
use citybrain::ingest::recording::RawMessage;
use citybrain::sim::{InjectedKind, NoiseOptions, SimOptions};
use citybrain::sink::DeadLetterLog;
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A quiet hour of the simulated city with one water-main burst in it.
fn burst_city(dir: &std::path::Path) {
    let mut opts = SimOptions::default_with_seed(21, minutes_ago(70), 60 * 60);
    opts.incidents = vec![InjectedKind::WaterMainBurst];
    opts.noise = NoiseOptions::none();
    simulate(dir, &opts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn water_main_burst_over_mqtt_is_one_incident_for_water_and_traffic() {
    let dir = tempfile::tempdir().expect("tempdir");
    burst_city(dir.path());
    let broker = mosquitto();
    let rig = start_live(&broker, defs(dir.path()));
    let publisher = Publisher::connect(&rig.mqtt, "devices")
        .await
        .expect("publisher");
    rig.wait_subscribed(&publisher).await;
    let messages = read_recording(&dir.path().join("recording.ndjson"));
    publish_in_order(&publisher, &messages).await;

    // The incident shows up on the API while the pipeline is live.
    let deadline = Instant::now() + Duration::from_secs(60);
    let incidents = loop {
        let found = api_incidents(&rig, "?kind=water_main_burst").await;
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        incidents.len(),
        1,
        "exactly one burst incident: {incidents:#?}"
    );
    let burst = &incidents[0];
    assert_eq!(
        burst.departments,
        vec!["traffic".to_string(), "water".to_string()]
    );
    let devices: std::collections::BTreeSet<&str> = burst
        .evidence
        .iter()
        .map(|e| e.device_id.as_str())
        .collect();
    assert!(
        devices.iter().any(|d| d.starts_with("PG-")),
        "a logger in the evidence: {devices:?}"
    );
    assert!(
        devices.iter().any(|d| d.starts_with("TC-")),
        "a camera in the evidence: {devices:?}"
    );

    // Once everything has been received: still one incident in total, nothing else.
    rig.wait_received(messages.len() as u64 + 1).await;
    let all = api_incidents(&rig, "").await;
    assert_eq!(all.len(), 1, "no other incident: {all:#?}");
    let one = get(
        rig.url(&format!("/api/v1/incidents/{}", burst.id)),
        Some(rig.token.clone()),
    )
    .await;
    assert_eq!(one.0, 200);
    let (status, _) = get(rig.url("/api/v1/incidents"), None).await;
    assert_eq!(status, 401, "the API needs a token");
    let done = rig.live.stop().await.expect("stops");
    assert_eq!(done.store.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_replayed_runs_of_a_recording_give_the_same_incidents() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The default messy city: skewed clocks, late batches, duplicates, malformed payloads.
    let opts = SimOptions::default_with_seed(31, minutes_ago(130), 120 * 60);
    simulate(dir.path(), &opts);
    let recording = dir.path().join("recording.ndjson");
    let messages = read_recording(&recording);

    let broker = mosquitto();
    let rig = start_live(&broker, defs(dir.path()));
    let publisher = Publisher::connect(&rig.mqtt, "devices")
        .await
        .expect("publisher");
    rig.wait_subscribed(&publisher).await;
    let probes = rig
        .live
        .source_stats
        .messages
        .load(std::sync::atomic::Ordering::Relaxed);
    publish_in_order(&publisher, &messages).await;
    rig.wait_received(messages.len() as u64 + probes).await;
    let live = rig.live.stop().await.expect("stops").store.all();

    let replayed = replay_recording(
        &recording,
        defs(dir.path()),
        DataflowConfig::default(),
        Arc::new(DeadLetterLog::in_memory()),
        None,
    )
    .expect("replay");
    assert!(
        replayed.incidents.len() >= 6,
        "the city has injected incidents"
    );
    assert_eq!(essence(&live), essence(&replayed.incidents));
}

/// Garbage of every kind on real and unknown topics.
fn malformed() -> Vec<RawMessage> {
    let m = |topic: &str, payload: &[u8]| RawMessage {
        arrival: citybrain::model::EventTime(0),
        topic: topic.into(),
        payload: payload.to_vec(),
    };
    vec![
        m(
            "city/water/pressure/PG-0301/up",
            b"{\"dev\":\"PG-0301\",\"seq\":1,\"t0\":",
        ),
        m(
            "city/water/pressure/PG-0301/up",
            b"{\"dev\":\"PG-0301\",\"seq\":\"x\",\"t0\":1,\"dt\":5,\"kpa_x10\":\"abc\"}",
        ),
        m("city/traffic/cameras/TC-0001/stats", b"\xff\xfe\x00garbage"),
        m("city/traffic/cameras/TC-0001/stats", b"[]"),
        m("city/env/AQ-0101/senml", b"{\"not\":\"senml\"}"),
        m(
            "city/env/vendor-b/AQ-2201",
            b"{\"station\":\"AQ-2201\",\"time\":\"yesterday\"}",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_are_counted_and_lose_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    burst_city(dir.path());
    let recording = dir.path().join("recording.ndjson");
    let clean = read_recording(&recording);
    let baseline = replay_recording(
        &recording,
        defs(dir.path()),
        DataflowConfig::default(),
        Arc::new(DeadLetterLog::in_memory()),
        None,
    )
    .expect("clean replay");
    assert_eq!(
        baseline.dead_letters.values().sum::<u64>(),
        0,
        "the clean city has no dead letters"
    );

    // Interleave garbage through the whole stream, plus messages on a topic no profile knows.
    let bad = malformed();
    let mut dirty = Vec::new();
    let mut injected = 0u64;
    for (i, msg) in clean.iter().enumerate() {
        dirty.push(msg.clone());
        if i % 97 == 0 {
            dirty.push(bad[(i / 97) % bad.len()].clone());
            injected += 1;
        }
    }
    let unknown = 5u64;
    for k in 0..unknown {
        dirty.push(RawMessage {
            arrival: citybrain::model::EventTime(0),
            topic: format!("city/unknown/device-{k}"),
            payload: b"{\"v\":1}".to_vec(),
        });
    }

    let broker = mosquitto();
    let rig = start_live(&broker, defs(dir.path()));
    let publisher = Publisher::connect(&rig.mqtt, "devices")
        .await
        .expect("publisher");
    rig.wait_subscribed(&publisher).await;
    let probes = rig
        .live
        .source_stats
        .messages
        .load(std::sync::atomic::Ordering::Relaxed);
    publish_in_order(&publisher, &dirty).await;
    rig.wait_received(dirty.len() as u64 + probes).await;
    // Let the decode thread drain before reading the counters.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, text) = get(rig.url("/metrics"), None).await;
        assert_eq!(status, 200);
        let seen: f64 = text
            .lines()
            .filter(|l| l.starts_with("citybrain_messages_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if seen as usize >= dirty.len() || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // One bad message may yield several dead letters (each damaged part is kept with its own
    // reason); what each yields is decided by the decoder, tested on its own.
    let profiles = defs(dir.path()).profiles;
    let mut expected_dead = 0u64;
    for (i, _) in clean.iter().enumerate().filter(|(i, _)| i % 97 == 0) {
        let m = &bad[(i / 97) % bad.len()];
        let d = citybrain::ingest::decode::decode(&profiles, &m.topic, &m.payload, m.arrival);
        assert!(!d.dead.is_empty(), "{} is a dead letter", m.topic);
        assert!(d.readings.is_empty());
        expected_dead += d.dead.len() as u64;
    }
    let malformed_counted = metric(
        &metrics,
        "citybrain_dead_letters_total{reason=\"malformed\"}",
    ) + metric(
        &metrics,
        "citybrain_dead_letters_total{reason=\"bad_timestamp\"}",
    );
    let dl: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("citybrain_dead_letters_total"))
        .collect();
    assert_eq!(
        malformed_counted as u64, expected_dead,
        "every malformed payload is counted: {dl:?}"
    );
    assert!(expected_dead >= injected);
    let no_profile = metric(
        &metrics,
        "citybrain_dead_letters_total{reason=\"no_profile\"}",
    );
    assert_eq!(
        no_profile as u64,
        unknown + probes,
        "unknown topics are counted"
    );
    let readings: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("citybrain_readings_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        readings as u64, baseline.readings,
        "no good reading was lost"
    );
    let done = rig.live.stop().await.expect("stops");
    assert_eq!(done.dead_letters.total(), expected_dead + unknown + probes);
    assert_eq!(
        essence(&done.store.all()),
        essence(&baseline.incidents),
        "same incidents as clean"
    );
}
