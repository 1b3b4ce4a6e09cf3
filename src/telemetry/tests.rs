//! Metric names are exported, valid, and accepted by Prometheus' own linter.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;
use crate::model::EventTime;

/// A registry with one sample in every metric, so every family appears in the output.
fn touched() -> Metrics {
    let m = Metrics::new();
    m.messages_total.inc(["pressure-logger"]);
    m.bytes_total.inc_by(["pressure-logger"], 120);
    m.readings_total.inc(["pressure-logger"]);
    m.dead_letters_total.inc(["malformed"]);
    m.duplicates_total.inc();
    m.late_total.inc();
    m.future_total.inc();
    m.anomalies_total.inc(["pressure_drop", "raised"]);
    m.incidents_opened_total.inc(["water_main_burst"]);
    m.incident_updates_total.inc(["water_main_burst"]);
    m.incidents.set(["water_main_burst", "open"], 1.0);
    m.ingest_queue_depth.set(3.0);
    m.dataflow_watermark_lag_seconds.set(1.5);
    m.dataflow_latency_seconds.observe(["anomaly"], 0.004);
    m.mqtt_connected.set(1.0);
    m.mqtt_reconnects_total.inc();
    m.mqtt_shed_qos0_total.inc();
    m.api_requests_total.inc(["/api/v1/incidents", "200"]);
    m.webhook_deliveries_total.inc(["ops-bridge", "delivered"]);
    m.webhook_dropped_total.inc(["ops-bridge", "queue_full"]);
    m.dataflow_output_queue_depth.set(2.0);
    m.observe_dispatch("automatic", EventTime(0), EventTime(1_500));
    m.observe_ack(Responder::Operator, EventTime(0), EventTime(90_000));
    m
}

#[test]
fn encode_contains_every_metric_name() {
    let text = touched().encode();
    for name in METRIC_NAMES {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("device_id"),
        "a device id must never be a label"
    );
}

#[test]
fn handles_count_and_latency_stages_exist_from_the_start() {
    let m = Metrics::new();
    let text = m.encode();
    assert!(text.contains(r#"citybrain_dataflow_latency_seconds_count{stage="incident"} 0"#));
    m.api_requests_total.inc(["/healthz", "200"]);
    m.api_requests_total.inc(["/healthz", "200"]);
    assert_eq!(m.api_requests_total.get(["/healthz", "200"]), 2);
    assert_eq!(m.late_total.get(), 0);
}

#[test]
fn two_registries_do_not_collide() {
    // Each Metrics owns its registry, so tests and embedded servers never hit AlreadyReg.
    let a = touched();
    let b = touched();
    assert_eq!(a.late_total.get(), 1);
    assert_eq!(b.late_total.get(), 1);
}

#[test]
fn promtool_accepts_the_exposition() {
    let text = touched().encode();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!("promtool not runnable ({e}): apt-get install -y prometheus"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- input ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
