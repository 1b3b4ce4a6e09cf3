//! The InfluxDB sink against a real InfluxDB-v2-write-compatible server (VictoriaMetrics from
//! Debian's packages): every measurement arrives with its tags, values and times; a minute-long
//! outage in the middle of a steady stream loses nothing; a spool left by a stopped run is
//! delivered by the next one; the engine hands its readings, anomalies and incidents over.
//!
//! VictoriaMetrics stores `<measurement>_<field>` series and ignores the org/bucket query
//! parameters (hence the `org`/`bucket` tags), and string fields become the value 0.
//! The pipeline-side tests (never blocking, the engine hook) are in `influx_sink/pipeline.rs`.
//! Run: `cargo test --test influx_sink` (about 75 s: the outage test waits out its minute).

#[path = "influx_sink/pipeline.rs"]
mod pipeline;
#[path = "influx_sink/vm.rs"]
mod vm;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citybrain::model::IncidentStatus;
use citybrain::model::{Anomaly, EventTime, Location, Phase, Reading, Severity};
use citybrain::sink::influx::{IncidentEvent, InfluxConfig, InfluxSink, Record, Spool};
use citybrain::telemetry::Metrics;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use vm::{free_port, wait_until, Vm};

/// A running sink and what is needed to stop it.
struct Running {
    sink: InfluxSink,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn config(url: &str, spool: &Path) -> InfluxConfig {
    let mut cfg = InfluxConfig::new(url, "city", "citybrain");
    cfg.batch_size = 64;
    cfg.flush_interval_ms = 100;
    cfg.spool_dir = spool.to_path_buf();
    cfg.retry_min_ms = 100;
    cfg.retry_max_ms = 1000;
    cfg.timeout_ms = 2000;
    cfg
}

fn start(rt: &Runtime, cfg: InfluxConfig, departments: HashMap<String, String>) -> Running {
    start_with(rt, cfg, departments, Arc::new(Metrics::new()))
}

fn start_with(
    rt: &Runtime,
    cfg: InfluxConfig,
    departments: HashMap<String, String>,
    metrics: Arc<Metrics>,
) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let _guard = rt.enter();
    let (sink, task) =
        InfluxSink::start(cfg, departments, metrics.clone(), stop_rx).expect("sink starts");
    Running {
        sink,
        metrics,
        stop,
        task,
    }
}

impl Running {
    fn written(&self) -> u64 {
        self.metrics.influx_points_written_total.get()
    }

    fn shutdown(self, rt: &Runtime) -> Arc<Metrics> {
        let _ = self.stop.send(true);
        drop(self.sink);
        rt.block_on(self.task).expect("writer task ends cleanly");
        self.metrics
    }
}

/// Ten minutes ago in milliseconds: recent enough for any retention, never "in the future".
fn recent_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() - 10 * 60_000
}

fn reading(device: &str, profile: &str, metric: &str, ts: i64, value: f64) -> Reading {
    Reading {
        device_id: device.into(),
        profile: profile.into(),
        metric: metric.into(),
        ts: EventTime(ts),
        value,
        seq: None,
        arrival: EventTime(ts),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_measurement_arrives_with_its_tags_values_and_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vm = Vm::start(dir.path(), free_port());
    let rt = Runtime::new().expect("runtime");
    let deps = HashMap::from([("PL-1".to_string(), "water".to_string())]);
    let s = start(&rt, config(&vm.url(), &dir.path().join("spool")), deps);
    let base = recent_ms();
    let mut expected_pl = Vec::new();
    for i in 0..300i64 {
        let (t, v) = (base + i * 1000, 300.0 + i as f64 * 0.25);
        expected_pl.push((t, v));
        let cam = reading("TC 7", "traffic-camera", "avg_speed_kmh", t, -(i as f64));
        s.sink.readings(&[
            reading("PL-1", "pressure-logger", "pressure_kpa", t, v),
            cam,
        ]);
    }
    // NaN has no line-protocol spelling: skipped and counted, never sent.
    s.sink
        .readings(&[reading("PL-1", "pressure-logger", "x", base, f64::NAN)]);
    for (i, phase) in [Phase::Raised, Phase::Cleared].into_iter().enumerate() {
        s.sink.anomaly(&Anomaly {
            device_id: "PL-1".into(),
            metric: "pressure_kpa".into(),
            signal: "pressure_drop".into(),
            detector: "step_drop".into(),
            ts: EventTime(base + 5_000 + i as i64 * 60_000),
            value: 231.0 + i as f64,
            score: 0.75,
            phase,
            reason: "pressure 231 kPa, 38% below \"baseline\"".into(),
            arrival: None,
        });
    }
    let incident = IncidentEvent {
        id: "inc-0001".into(),
        kind: "water_main_burst".into(),
        severity: Severity::Critical,
        status: Some(IncidentStatus::Open),
        evidence_count: 4,
        location: Location {
            lat: 1.3521,
            lon: 103.8198,
        },
        updated_at: EventTime(base + 90_000),
    };
    assert!(s.sink.send(Record::Incident(incident)));
    let total = 600 + 2 + 1;
    assert!(
        wait_until(20, || s.written() == total),
        "written {}",
        s.written()
    );
    let m = s.shutdown(&rt);
    assert_eq!(m.influx_dropped_points_total.get(["invalid"]), 1);
    assert_eq!(m.influx_write_errors_total.get(), 0);
    // One sample per field: readings 1, anomalies 3 (value, score, reason), incidents 3.
    let samples = 600 + 2 * 3 + 3;
    let all = r#"{__name__=~"(reading|anomaly|incident)_.*"}"#;
    assert!(
        wait_until(20, || vm.count(all) == samples),
        "{}",
        vm.count(all)
    );

    let readings = vm.export(r#"{__name__="reading_value"}"#);
    assert_eq!(readings.len(), 2, "{readings:?}");
    let pl = readings
        .iter()
        .find(|s| s.labels["device_id"] == "PL-1")
        .expect("PL-1");
    assert_eq!(
        pl.labels,
        labels(&[
            ("__name__", "reading_value"),
            ("bucket", "citybrain"),
            ("department", "water"),
            ("device_id", "PL-1"),
            ("metric", "pressure_kpa"),
            ("org", "city"),
            ("profile", "pressure-logger"),
        ])
    );
    assert_eq!(pl.samples, expected_pl);
    let cam = readings
        .iter()
        .find(|s| s.labels["device_id"] == "TC 7")
        .expect("camera");
    assert!(!cam.labels.contains_key("department"), "{:?}", cam.labels);
    assert_eq!(cam.samples.len(), 300);
    assert_eq!(cam.samples[299], (base + 299_000, -299.0));

    let scores = vm.export(r#"{__name__="anomaly_score"}"#);
    let phases: Vec<&str> = scores.iter().map(|s| s.labels["phase"].as_str()).collect();
    assert_eq!(phases.len(), 2, "{scores:?}");
    for s in &scores {
        for (k, v) in [
            ("signal", "pressure_drop"),
            ("detector", "step_drop"),
            ("org", "city"),
        ] {
            assert_eq!(s.labels[k], v, "{:?}", s.labels);
        }
        assert_eq!(s.samples.len(), 1);
        assert_eq!(s.samples[0].1, 0.75);
    }
    let raised = vm.export(r#"anomaly_value{phase="raised"}"#);
    assert_eq!(raised[0].samples, vec![(base + 5_000, 231.0)]);
    assert_eq!(
        vm.count("anomaly_reason"),
        2,
        "string field stored (as 0) by VictoriaMetrics"
    );

    let lat = vm.export("incident_lat");
    assert_eq!(lat.len(), 1, "{lat:?}");
    for (k, v) in [
        ("id", "inc-0001"),
        ("kind", "water_main_burst"),
        ("severity", "critical"),
    ] {
        assert_eq!(lat[0].labels[k], v);
    }
    assert_eq!(lat[0].labels["status"], "open");
    assert_eq!(lat[0].samples, vec![(base + 90_000, 1.3521)]);
    assert_eq!(vm.export("incident_evidence_count")[0].samples[0].1, 4.0);
}

/// Sends one reading every 10 ms over four devices until `until`; returns (device, ts, value).
fn stream(sink: &InfluxSink, base: i64, from: usize, until: Instant) -> Vec<(String, i64, f64)> {
    let mut sent = Vec::new();
    let mut i = from;
    while Instant::now() < until {
        let device = format!("PL-{}", i % 4);
        let (ts, value) = (base + i as i64 * 10, i as f64 + 0.5);
        assert!(sink.send(Record::Readings(vec![reading(
            &device,
            "pressure-logger",
            "pressure_kpa",
            ts,
            value
        )])));
        sent.push((device, ts, value));
        i += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    sent
}

#[test]
fn a_minute_long_outage_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vm = Vm::start(dir.path(), free_port());
    let rt = Runtime::new().expect("runtime");
    let spool_dir = dir.path().join("spool");
    let s = start(&rt, config(&vm.url(), &spool_dir), HashMap::new());
    let base = recent_ms();
    let t0 = Instant::now();

    let mut sent = stream(&s.sink, base, 0, t0 + Duration::from_secs(5));
    assert!(s.written() > 0, "writes before the outage");
    vm.stop();
    let outage = Instant::now();
    sent.extend(stream(
        &s.sink,
        base,
        sent.len(),
        outage + Duration::from_secs(30),
    ));
    // Mid-outage: batches are on disk, nothing counted as written since.
    assert!(
        s.metrics.influx_spool_bytes.get() > 0.0,
        "spooling during the outage"
    );
    assert!(s.metrics.influx_batches_spooled_total.get() > 0);
    assert!(s.metrics.influx_write_errors_total.get() > 0);
    assert_eq!(s.metrics.influx_up.get(), 0.0);
    sent.extend(stream(
        &s.sink,
        base,
        sent.len(),
        outage + Duration::from_secs(60),
    ));
    vm.start_again();
    sent.extend(stream(
        &s.sink,
        base,
        sent.len(),
        Instant::now() + Duration::from_secs(5),
    ));

    let total = sent.len() as u64;
    assert!(
        wait_until(30, || s.written() == total
            && s.metrics.influx_spool_bytes.get() == 0.0),
        "written {} of {total}, spool {} bytes",
        s.written(),
        s.metrics.influx_spool_bytes.get()
    );
    let leftover = std::fs::read_dir(&spool_dir).expect("spool dir").count();
    assert_eq!(leftover, 0, "spool directory empty at the end");
    let m = s.shutdown(&rt);
    assert_eq!(m.influx_dropped_points_total.get(["queue_full"]), 0);
    assert_eq!(m.influx_dropped_points_total.get(["spool_full"]), 0);
    assert_eq!(m.influx_up.get(), 1.0);

    let selector = r#"{__name__="reading_value"}"#;
    assert!(
        wait_until(20, || vm.count(selector) == sent.len()),
        "{} of {}",
        vm.count(selector),
        sent.len()
    );
    let mut got: Vec<(String, i64, f64)> = vm
        .export(selector)
        .into_iter()
        .flat_map(|s| {
            let d = s.labels["device_id"].clone();
            s.samples.into_iter().map(move |(t, v)| (d.clone(), t, v))
        })
        .collect();
    got.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    assert_eq!(got, sent, "every point, value and time arrived");
    eprintln!(
        "outage test: {} points in {:.1} s",
        sent.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn a_spool_left_by_a_stopped_run_is_delivered_by_the_next_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let spool_dir = dir.path().join("spool");
    let rt = Runtime::new().expect("runtime");
    let base = recent_ms();
    let batch = |from: i64, n: i64| -> Vec<Reading> {
        (from..from + n)
            .map(|i| reading("AQ-1", "air-senml", "pm2_5", base + i, i as f64))
            .collect()
    };

    // Nothing listens: every batch, and what is pending at shutdown, goes to the spool.
    let first = start(&rt, config(&url, &spool_dir), HashMap::new());
    first.sink.readings(&batch(0, 250));
    assert!(wait_until(10, || first
        .metrics
        .influx_batches_spooled_total
        .get()
        > 0));
    first.sink.readings(&batch(250, 50));
    first.shutdown(&rt);
    let spool = Spool::open(&spool_dir, 1 << 30).expect("spool reopens");
    assert_eq!(spool.points(), 300, "everything spooled at shutdown");
    drop(spool);

    let vm = Vm::start(dir.path(), port);
    let second = start(&rt, config(&url, &spool_dir), HashMap::new());
    second.sink.readings(&batch(300, 100));
    assert!(
        wait_until(20, || second.written() == 400),
        "written {}",
        second.written()
    );
    let m = second.shutdown(&rt);
    assert_eq!(m.influx_spool_bytes.get(), 0.0);
    assert!(wait_until(20, || vm.count("reading_value") == 400));
    let series = vm.export("reading_value");
    let expected: Vec<(i64, f64)> = (0..400).map(|i| (base + i, i as f64)).collect();
    assert_eq!(series[0].samples, expected);
}
