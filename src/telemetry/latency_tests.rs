//! What the latency histograms observe, and what they must not: replayed arrivals, clock skew,
//! an incident's later snapshots, a reopened incident's second acknowledgement.

use std::sync::Arc;

use super::*;
use crate::incident::IncidentStore;
use crate::model::{
    Anomaly, EventTime, Evidence, Incident, IncidentSnapshot, IncidentStatus, Location, Phase,
    Severity,
};

const NOW: EventTime = EventTime(1_795_300_000_000);

fn anomaly(ts: i64, arrival: Option<EventTime>, phase: Phase) -> Anomaly {
    Anomaly {
        device_id: "PL-0001".into(),
        metric: "pressure_kpa".into(),
        signal: "pressure_drop".into(),
        detector: "step_drop".into(),
        ts: EventTime(ts),
        value: 231.0,
        score: 0.9,
        phase,
        reason: "dropped".into(),
        arrival,
    }
}

fn evidence_of(a: &Anomaly) -> Evidence {
    Evidence {
        device_id: a.device_id.clone(),
        metric: a.metric.clone(),
        detector: a.detector.clone(),
        ts: a.ts,
        value: a.value,
        signal: a.signal.clone(),
        score: a.score,
        reason: a.reason.clone(),
        weight: 1.0,
    }
}

fn snapshot(id: &str, evidence: Vec<Evidence>, detected_at: EventTime) -> IncidentSnapshot {
    IncidentSnapshot {
        id: id.into(),
        kind: "water_main_burst".into(),
        severity: Severity::High,
        location: Location {
            lat: 30.27,
            lon: 120.15,
        },
        departments: vec!["water".into()],
        opened_at: detected_at,
        detected_at,
        updated_at: detected_at,
        evidence,
        confidence: 0.9,
        cleared_at: None,
        merged_into: None,
    }
}

fn incident(evidence: Vec<Evidence>) -> Incident {
    IncidentStore::default().apply_snapshot(snapshot("i-1", evidence, NOW))
}

fn count(m: &Metrics, stage: &str) -> u64 {
    m.dataflow_latency_seconds.count([stage])
}

#[test]
fn only_live_arrivals_count() {
    assert_eq!(live_latency_secs(EventTime(NOW.0 - 250), NOW), Some(0.25));
    assert_eq!(live_latency_secs(NOW, NOW), Some(0.0));
    assert_eq!(live_latency_secs(EventTime(NOW.0 + 1), NOW), None);
    assert_eq!(
        live_latency_secs(EventTime(NOW.0 - LIVE_WINDOW_MS - 1), NOW),
        None
    );
}

#[test]
fn an_anomaly_and_the_incident_it_grows_are_observed_once() {
    let m = Metrics::new();
    let mut lat = PipelineLatency::default();
    let a = anomaly(
        NOW.0 - 310_000,
        Some(EventTime(NOW.0 - 305_000)),
        Phase::Raised,
    );
    lat.anomaly(&m, &a, NOW);
    assert_eq!(count(&m, "anomaly"), 1);
    // A snapshot that does not hold it (a watermark clearing another incident) is not it.
    lat.incident(&m, &incident(vec![]), NOW);
    assert_eq!(count(&m, "incident"), 0);
    let grown = incident(vec![evidence_of(&a)]);
    lat.incident(&m, &grown, NOW);
    assert_eq!(count(&m, "incident"), 1);
    // A later snapshot of the same incident (cleared, merged) is not observed again.
    lat.incident(&m, &grown, EventTime(NOW.0 + 600_000));
    assert_eq!(count(&m, "incident"), 1);
    let text = m.encode();
    assert!(
        text.contains(r#"citybrain_dataflow_latency_seconds_sum{stage="anomaly"} 305"#),
        "{text}"
    );
}

#[test]
fn replayed_arrivals_skewed_clocks_and_watermark_anomalies_are_skipped() {
    let m = Metrics::new();
    let mut lat = PipelineLatency::default();
    // Replay: arrival is the recording's t_ms, days ago.
    let old = anomaly(1_000, Some(EventTime(2_000)), Phase::Raised);
    lat.anomaly(&m, &old, NOW);
    lat.incident(&m, &incident(vec![evidence_of(&old)]), NOW);
    // Arrival after "now": not a live measurement either.
    lat.anomaly(
        &m,
        &anomaly(NOW.0, Some(EventTime(NOW.0 + 5)), Phase::Raised),
        NOW,
    );
    // Raised at a watermark: no arrival at all.
    let silent = anomaly(NOW.0 - 1_000, None, Phase::Raised);
    lat.anomaly(&m, &silent, NOW);
    lat.incident(&m, &incident(vec![evidence_of(&silent)]), NOW);
    assert_eq!(count(&m, "anomaly"), 0);
    assert_eq!(count(&m, "incident"), 0);
}

#[test]
fn a_cleared_anomaly_is_not_waited_for_and_the_next_anomaly_replaces_the_last() {
    let m = Metrics::new();
    let mut lat = PipelineLatency::default();
    let arrival = Some(EventTime(NOW.0 - 1_000));
    let first = anomaly(NOW.0 - 2_000, arrival, Phase::Raised);
    lat.anomaly(&m, &first, NOW);
    lat.anomaly(&m, &anomaly(NOW.0 - 1_500, arrival, Phase::Cleared), NOW);
    lat.incident(&m, &incident(vec![evidence_of(&first)]), NOW);
    assert_eq!(count(&m, "anomaly"), 2);
    assert_eq!(count(&m, "incident"), 0, "the first anomaly was superseded");
}

#[test]
fn dispatch_and_ack_skip_negative_spans() {
    let m = Metrics::new();
    m.observe_dispatch("automatic", NOW, EventTime(NOW.0 - 1));
    m.observe_ack(Responder::Crew, NOW, EventTime(NOW.0 - 1));
    assert_eq!(m.dispatch_latency_seconds.count(["automatic"]), 0);
    assert_eq!(m.ack_latency_seconds.count(["crew"]), 0);
    m.observe_dispatch("operator_confirmed", NOW, EventTime(NOW.0 + 2_000));
    assert_eq!(m.dispatch_latency_seconds.count(["operator_confirmed"]), 1);
}

#[test]
fn the_store_observes_the_first_answer_only() {
    let m = Arc::new(Metrics::new());
    let store = IncidentStore::new(Some(m.clone()));
    let a = anomaly(NOW.0, None, Phase::Raised);
    store.apply_snapshot(snapshot("i-1", vec![evidence_of(&a)], NOW));
    store.apply_snapshot(snapshot("i-2", vec![evidence_of(&a)], NOW));
    store
        .ack("i-1", "ops", None, EventTime(NOW.0 + 45_000))
        .expect("ack");
    assert_eq!(m.ack_latency_seconds.count(["operator"]), 1);
    assert!(m
        .encode()
        .contains(r#"citybrain_ack_latency_seconds_sum{by="operator"} 45"#));
    // Resolved, reopened and acknowledged again: not a first answer.
    store
        .resolve("i-1", "ops", None, EventTime(NOW.0 + 60_000))
        .expect("resolve");
    let reopened = store
        .reopen("i-1", "ops", None, EventTime(NOW.0 + 70_000))
        .expect("reopen");
    assert_eq!(reopened.status, IncidentStatus::Open);
    store
        .ack("i-1", "ops", None, EventTime(NOW.0 + 80_000))
        .expect("second ack");
    assert_eq!(m.ack_latency_seconds.count(["operator"]), 1);
    // A crew accepting an open incident is its first answer.
    store
        .dispatch("i-2", "crew-7", EventTime(NOW.0 + 20_000))
        .expect("dispatch");
    assert_eq!(m.ack_latency_seconds.count(["crew"]), 1);
}

#[test]
fn mirrored_counters_only_move_forward() {
    let m = Metrics::new();
    m.mqtt_reconnects_total.advance_to(3);
    m.mqtt_reconnects_total.advance_to(2);
    assert_eq!(m.mqtt_reconnects_total.get(), 3);
    m.mqtt_reconnects_total.advance_to(5);
    assert_eq!(m.mqtt_reconnects_total.get(), 5);
}
