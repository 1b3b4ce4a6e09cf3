//! Backtest scoring on hand-made incidents.

use std::collections::BTreeMap;

use super::*;
use crate::model::{Evidence, IncidentStatus, Severity};

fn truth(kind: &str, start_s: i64, end_s: i64, devices: &[&str]) -> TruthIncident {
    TruthIncident {
        kind: kind.into(),
        start: EventTime(start_s * 1000),
        end: EventTime(end_s * 1000),
        location: Location {
            lat: 30.0,
            lon: 120.0,
        },
        devices: devices.iter().map(|d| d.to_string()).collect(),
    }
}

fn incident(
    id: &str,
    kind: &str,
    opened_s: i64,
    detected_s: i64,
    device: &str,
    lat: f64,
) -> Incident {
    Incident {
        id: id.into(),
        kind: kind.into(),
        severity: Severity::High,
        status: IncidentStatus::Open,
        location: Location { lat, lon: 120.0 },
        departments: vec![],
        opened_at: EventTime(opened_s * 1000),
        detected_at: EventTime(detected_s * 1000),
        updated_at: EventTime(detected_s * 1000),
        evidence: vec![Evidence {
            device_id: device.into(),
            metric: "m".into(),
            detector: "d".into(),
            ts: EventTime(opened_s * 1000),
            value: 1.0,
            signal: "s".into(),
            score: 1.0,
            reason: String::new(),
            weight: 1.0,
        }],
        merged_into: None,
        confidence: 0.5,
    }
}

#[test]
fn found_missed_extra_duplicates_and_delays() {
    let t = vec![
        truth("burst", 1000, 2000, &["PG-1"]),
        truth("burst", 5000, 6000, &["PG-2"]),
        truth("fault", 1000, 9000, &["AQ-1"]),
    ];
    let found = vec![
        incident("a", "burst", 1010, 1100, "PG-1", 30.0),
        incident("b", "burst", 1500, 1600, "PG-1", 30.0), // duplicate of the first burst
        incident("c", "fault", 1200, 1200, "AQ-9", 31.0), // wrong device, far away: extra
        incident("d", "burst", 90000, 90000, "PG-2", 30.0), // far outside the time span: extra
    ];
    let mut flaps = BTreeMap::new();
    flaps.insert("a".to_string(), 2);
    let e = evaluate(&t, &found, &flaps, &MatchOptions::default());
    let burst = &e.per_kind["burst"];
    assert_eq!(
        (
            burst.truth,
            burst.found,
            burst.missed,
            burst.extra,
            burst.duplicates
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(burst.flaps, 2);
    assert_eq!(burst.median_delay_secs, Some(100.0));
    assert!((burst.recall - 0.5).abs() < 1e-9);
    assert!((burst.precision - 1.0 / 3.0).abs() < 1e-9);
    let fault = &e.per_kind["fault"];
    assert_eq!((fault.found, fault.missed, fault.extra), (0, 1, 1));
    assert_eq!(fault.f1, 0.0);
    assert_eq!(e.overall.truth, 3);
    assert_eq!(e.overall.found, 1);
    assert_eq!(e.missed, vec![1, 2]);
    let text = e.to_text(&t);
    assert!(text.contains("missed: fault"), "{text}");
}

#[test]
fn nearby_incident_without_a_shared_device_still_matches() {
    let t = vec![truth("pollution", 1000, 4000, &["AQ-1", "AQ-2"])];
    let found = vec![incident("p", "pollution", 1600, 1700, "AQ-3", 30.001)];
    let e = evaluate(&t, &found, &BTreeMap::new(), &MatchOptions::default());
    assert_eq!(e.overall.found, 1);
    assert_eq!(e.overall.f1, 1.0);
}

#[test]
fn compare_reports_would_fire_and_would_miss() {
    let a = vec![
        incident("a1", "burst", 1000, 1000, "PG-1", 30.0),
        incident("a2", "fault", 3000, 3000, "AQ-1", 30.0),
    ];
    let b = vec![
        incident("b1", "burst", 1100, 1100, "PG-1", 30.0),
        incident("b2", "burst", 8000, 8000, "PG-5", 30.0),
    ];
    let c = compare(&a, &b, 600.0);
    assert_eq!(c.both, vec![("a1".to_string(), "b1".to_string())]);
    assert_eq!(c.would_have_fired.len(), 1);
    assert_eq!(c.would_have_fired[0].id, "b2");
    assert_eq!(c.would_have_missed[0].id, "a2");
    assert!(c.to_text().contains("would have missed: fault"));
}
