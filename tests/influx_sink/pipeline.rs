//! The pipeline's side of the sink: handing over never blocks, whatever the server does, and
//! the engine hands over every reading, anomaly and incident change.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citybrain::app::{load_definitions, Engine};
use citybrain::dataflow::DataflowConfig;
use citybrain::ingest::recording::open_recording;
use citybrain::model::EventTime;
use citybrain::sim::{write_city, NoiseOptions, SimOptions};
use citybrain::sink::influx::{departments, Record, Spool};
use citybrain::sink::DeadLetterLog;
use citybrain::telemetry::Metrics;
use tokio::runtime::Runtime;

use super::vm::{free_port, wait_until, Vm};
use super::{config, reading, recent_ms, start, start_with};

#[test]
fn a_hanging_server_never_blocks_the_pipeline() {
    // Accepts connections and never answers: each write hangs until its timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new().expect("runtime");
    let mut cfg = config(&url, &dir.path().join("spool"));
    cfg.queue_capacity = 8;
    cfg.batch_size = 10;
    cfg.timeout_ms = 3000;
    let s = start(&rt, cfg, HashMap::new());
    let base = recent_ms();
    let started = Instant::now();
    let accepted = (0..5_000)
        .filter(|i| {
            let r = reading("PL-1", "pressure-logger", "pressure_kpa", base + i, 1.0);
            s.sink.send(Record::Readings(vec![r]))
        })
        .count() as u64;
    let elapsed = started.elapsed();
    // Without waiting, 5000 sends take microseconds each; one blocked send would take seconds.
    assert!(elapsed < Duration::from_secs(2), "sends took {elapsed:?}");
    let dropped = s.metrics.influx_dropped_points_total.get(["queue_full"]);
    assert!(dropped > 0, "a full queue drops instead of waiting");
    assert_eq!(accepted + dropped, 5_000);
    drop(listener);
    let m = s.shutdown(&rt);
    // What was accepted is not lost: the server never answered, so it is all in the spool.
    let spool = Spool::open(&dir.path().join("spool"), 1 << 30).expect("spool");
    assert_eq!(
        spool.points() as u64 + m.influx_points_written_total.get(),
        accepted
    );
}

#[test]
fn the_engine_hands_readings_anomalies_and_incidents_to_the_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vm = Vm::start(dir.path(), free_port());
    let city = dir.path().join("city");
    let start_ms = chrono::Utc::now().timestamp_millis() - 3 * 3600 * 1000;
    let mut opts = SimOptions::default_with_seed(11, EventTime(start_ms), 2 * 3600);
    // No duplicates or skew: every decoded reading is one distinct point.
    opts.noise = NoiseOptions::none();
    write_city(&city, &opts).expect("simulated city");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let defs = load_definitions(
        &repo.join("pipelines"),
        &repo.join("device-profiles"),
        &city.join("devices.csv"),
        &city.join("crews.csv"),
    )
    .expect("definitions");
    let rt = Runtime::new().expect("runtime");
    let metrics = Arc::new(Metrics::new());
    let mut cfg = config(&vm.url(), &dir.path().join("spool"));
    cfg.queue_capacity = 1_000_000; // a replay runs far faster than any live city
    cfg.batch_size = 5000;
    let s = start_with(&rt, cfg, departments(&defs.registry), metrics.clone());
    let anomaly_log = dir.path().join("anomalies.ndjson");
    let log = std::fs::File::create(&anomaly_log).expect("anomaly log");
    let dead = Arc::new(DeadLetterLog::in_memory());
    let engine = Engine::start_full(
        DataflowConfig::default(),
        defs,
        metrics.clone(),
        dead,
        Some(Box::new(log)),
        Some(s.sink.clone()),
    )
    .expect("engine");
    let mut readings = 0;
    for msg in open_recording(&city.join("recording.ndjson")).expect("recording") {
        readings += engine.submit(&msg.expect("recording line"));
    }
    let done = engine.finish().expect("engine finishes");
    let anomalies = std::fs::read_to_string(&anomaly_log)
        .expect("log")
        .lines()
        .count();
    let ids: BTreeSet<String> = done.store.all().into_iter().map(|i| i.id).collect();
    assert!(readings > 10_000 && anomalies > 0 && !ids.is_empty());
    let m = s.shutdown(&rt);
    assert_eq!(m.influx_dropped_points_total.get(["queue_full"]), 0);
    assert_eq!(m.influx_spool_bytes.get(), 0.0);

    assert!(
        wait_until(30, || vm.count("reading_value") == readings),
        "{} of {readings} readings",
        vm.count("reading_value")
    );
    let with_department = vm.export(r#"reading_value{department=~".+"}"#);
    assert!(
        !with_department.is_empty(),
        "registered devices carry their department"
    );
    // Each batch becomes searchable on its own (~1 s): wait for each measurement.
    assert!(
        wait_until(20, || vm.count("anomaly_score") == anomalies),
        "{} of {anomalies} anomalies",
        vm.count("anomaly_score")
    );
    let incident_ids = || -> BTreeSet<String> {
        let series = vm.export("incident_lat").into_iter();
        series.map(|s| s.labels["id"].clone()).collect()
    };
    assert!(
        wait_until(20, || incident_ids() == ids),
        "{:?} vs {ids:?}",
        incident_ids()
    );
}
