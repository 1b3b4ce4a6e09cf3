//! `Correlator::restore`: after a restart, evidence for an incident that was open joins it (same
//! id) instead of opening a duplicate, and a restored incident still clears when it goes quiet.

use std::sync::Arc;

use super::*;
use crate::config::pipeline::PipelineSet;
use crate::config::registers::Registry;
use crate::model::{Device, Location};

const RULES: &str = r#"
signals:
  - {name: pressure_drop, profiles: ["*"], metric: pressure_kpa, detector: {type: out_of_range, min: 0.0, max: 1.0}}
  - {name: water_on_road, profiles: ["*"], metric: event.water_on_road, detector: {type: event, min_confidence: 0.5}}
incident:
  kind: water_main_burst
  severity: critical
  radius_m: 500
  window_secs: 900
  clear_after_secs: 1800
  departments: [water, traffic]
  trigger:
    - all:
        - {signals: [pressure_drop]}
        - {signals: [water_on_road]}
"#;

fn correlator() -> Correlator {
    let set = PipelineSet::from_texts(&[("burst.yaml".to_string(), RULES.to_string())], None)
        .expect("rules load");
    let device = |id: &str, dept: &str, lat: f64, lon: f64| Device {
        device_id: id.into(),
        profile: "p".into(),
        location: Location { lat, lon },
        department: dept.into(),
        district: "Xihu".into(),
    };
    let registry = Registry::from_parts(
        vec![
            device("PG-1", "water", 30.2745, 120.1548),
            device("TC-1", "traffic", 30.2760, 120.1560),
        ],
        vec![],
    );
    Correlator::new(&set, Arc::new(registry))
}

fn raised(device: &str, signal: &str, t_s: i64) -> Anomaly {
    Anomaly {
        device_id: device.into(),
        metric: if signal == "pressure_drop" {
            "pressure_kpa".into()
        } else {
            "event.water_on_road".into()
        },
        signal: signal.into(),
        detector: "test".into(),
        ts: EventTime(t_s * 1000),
        value: 1.0,
        score: 0.9,
        phase: Phase::Raised,
        reason: format!("{signal} on {device}"),
        arrival: None,
    }
}

fn run(c: &mut Correlator, items: Vec<Anomaly>) -> Vec<IncidentSnapshot> {
    let mut out = Vec::new();
    for a in items {
        c.on_watermark(a.ts, &mut out);
        c.ingest(a, &mut out);
    }
    out
}

/// The incident as it was when the process died.
fn before_the_crash() -> IncidentSnapshot {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![
            raised("PG-1", "pressure_drop", 1000),
            raised("TC-1", "water_on_road", 1010),
        ],
    );
    out.last().cloned().expect("the burst opened")
}

/// What the restarted detectors report: the camera keeps seeing water, and the logger's
/// detector, with a fresh baseline, raises the drop again.
fn after_the_restart() -> Vec<Anomaly> {
    vec![
        raised("TC-1", "water_on_road", 1100),
        raised("PG-1", "pressure_drop", 1105),
    ]
}

#[test]
fn without_restore_the_same_event_opens_a_second_incident() {
    let open = before_the_crash();
    let out = run(&mut correlator(), after_the_restart());
    let ids: std::collections::BTreeSet<&str> = out.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 1);
    assert!(!ids.contains(open.id.as_str()), "a duplicate: {ids:?}");
}

#[test]
fn restored_incidents_take_new_evidence_under_their_id() {
    let open = before_the_crash();
    let mut c = correlator();
    assert_eq!(c.restore(vec![open.clone()]), 1);
    assert_eq!(c.restore(vec![open.clone()]), 0, "already open: not twice");
    let out = run(&mut c, after_the_restart());
    assert!(!out.is_empty());
    assert!(out.iter().all(|s| s.id == open.id), "{out:#?}");
    let last = out.last().expect("snapshot");
    assert_eq!(last.evidence.len(), open.evidence.len() + 2);
    assert_eq!(last.opened_at, open.opened_at);
    assert_eq!(last.detected_at, open.detected_at);
    assert_eq!(last.departments, ["traffic", "water"]);
}

#[test]
fn restored_incidents_clear_when_quiet_and_unknown_kinds_are_skipped() {
    let open = before_the_crash();
    let mut c = correlator();
    c.restore(vec![open.clone()]);
    let mut out = Vec::new();
    c.on_watermark(EventTime((1010 + 1799) * 1000), &mut out);
    assert!(out.is_empty(), "not quiet long enough yet");
    c.on_watermark(EventTime((1010 + 1800) * 1000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, open.id);
    assert_eq!(out[0].cleared_at, Some(EventTime((1010 + 1800) * 1000)));

    let mut other = open;
    other.kind = "no_such_rule".into();
    other.id = "x".into();
    assert_eq!(correlator().restore(vec![other]), 0);
}
