//! Correlation behaviour on hand-made anomalies against the shipped-style rules.

use std::sync::Arc;

use super::*;
use crate::config::pipeline::PipelineSet;
use crate::config::registers::Registry;
use crate::model::{Device, Location};

const SIGNALS: &str = r#"
signals:
  - {name: pressure_drop, profiles: ["*"], metric: pressure_kpa, detector: {type: out_of_range, min: 0.0, max: 1.0}}
  - {name: speed_collapse, profiles: ["*"], metric: avg_speed_kmh, detector: {type: out_of_range, min: 0.0, max: 1.0}}
  - {name: occupancy_rise, profiles: ["*"], metric: occupancy_pct, detector: {type: out_of_range, min: 0.0, max: 1.0}}
  - {name: water_on_road, profiles: ["*"], metric: event.water_on_road, detector: {type: event, min_confidence: 0.5}}
  - {name: accident_event, profiles: ["*"], metric: event.accident, detector: {type: event, min_confidence: 0.5}}
  - {name: pm25_high, profiles: ["*"], metric: pm2_5, detector: {type: out_of_range, min: 0.0, max: 1.0}}
  - {name: device_silent, profiles: ["*"], metric: "*", detector: {type: silence}}
  - {name: sensor_frozen, profiles: ["*"], metric: pressure_kpa, detector: {type: flatline, min_duration_secs: 60}}
  - {name: out_of_range, profiles: ["*"], metric: "*", detector: {type: out_of_range}}
"#;

fn rules() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines");
    let mut files = vec![("signals.yaml".to_string(), SIGNALS.to_string())];
    for name in [
        "water_main_burst",
        "traffic_accident",
        "pollution_episode",
        "device_fault",
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{name}.yaml")).expect("shipped pipeline");
        // Keep only the incident rule: the signals come from SIGNALS above.
        let rule = text.split("\nincident:").nth(1).expect("has a rule");
        files.push((format!("{name}.yaml"), format!("incident:{rule}")));
    }
    files
}

fn device(id: &str, dept: &str, lat: f64, lon: f64) -> Device {
    Device {
        device_id: id.into(),
        profile: "p".into(),
        location: Location { lat, lon },
        department: dept.into(),
        district: "Xihu".into(),
    }
}

fn correlator() -> Correlator {
    let set = PipelineSet::from_texts(&rules(), None).expect("rules load");
    let registry = Registry::from_parts(
        vec![
            device("PG-1", "water", 30.2745, 120.1548),
            device("TC-1", "traffic", 30.2760, 120.1560), // ~200 m from PG-1
            device("TC-far", "traffic", 30.3200, 120.2000), // ~6 km away
            device("AQ-1", "environment", 30.2700, 120.1500),
            device("AQ-2", "environment", 30.2900, 120.1800), // ~3.6 km from AQ-1
        ],
        vec![],
    );
    Correlator::new(&set, Arc::new(registry))
}

fn anomaly(
    device: &str,
    signal: &str,
    metric: &str,
    t_s: i64,
    score: f64,
    phase: Phase,
) -> Anomaly {
    Anomaly {
        device_id: device.into(),
        metric: metric.into(),
        signal: signal.into(),
        detector: "test".into(),
        ts: EventTime(t_s * 1000),
        value: 1.0,
        score,
        phase,
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

fn latest(snaps: &[IncidentSnapshot]) -> Vec<IncidentSnapshot> {
    let mut by_id: std::collections::BTreeMap<String, IncidentSnapshot> = Default::default();
    for s in snaps {
        by_id.insert(s.id.clone(), s.clone());
    }
    by_id
        .into_values()
        .filter(|s| s.merged_into.is_none())
        .collect()
}

#[test]
fn burst_is_one_incident_with_water_and_traffic() {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![
            anomaly(
                "PG-1",
                "pressure_drop",
                "pressure_kpa",
                1000,
                0.8,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "water_on_road",
                "event.water_on_road",
                1100,
                0.9,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "speed_collapse",
                "avg_speed_kmh",
                1150,
                0.7,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "occupancy_rise",
                "occupancy_pct",
                1150,
                0.6,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "water_on_road",
                "event.water_on_road",
                1200,
                0.8,
                Phase::Raised,
            ),
        ],
    );
    let incidents = latest(&out);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let inc = &incidents[0];
    assert_eq!(inc.kind, "water_main_burst");
    assert_eq!(
        inc.departments,
        vec!["traffic".to_string(), "water".to_string()]
    );
    assert_eq!(inc.evidence.len(), 5);
    assert_eq!(inc.opened_at, EventTime(1_000_000));
    assert!(inc.id.starts_with("water_main_burst-"));
}

#[test]
fn pressure_drop_alone_and_far_camera_evidence_open_nothing() {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![
            anomaly(
                "PG-1",
                "pressure_drop",
                "pressure_kpa",
                1000,
                0.8,
                Phase::Raised,
            ),
            anomaly(
                "TC-far",
                "water_on_road",
                "event.water_on_road",
                1100,
                0.9,
                Phase::Raised,
            ),
        ],
    );
    assert!(latest(&out).is_empty(), "{out:#?}");
}

#[test]
fn lone_low_confidence_event_is_not_an_incident_but_two_add_up() {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![anomaly(
            "TC-1",
            "accident_event",
            "event.accident",
            10,
            0.6,
            Phase::Raised,
        )],
    );
    assert!(latest(&out).is_empty());
    let out = run(
        &mut c,
        vec![anomaly(
            "TC-1",
            "accident_event",
            "event.accident",
            40,
            0.6,
            Phase::Raised,
        )],
    );
    let incidents = latest(&out);
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, "traffic_accident");
    assert_eq!(incidents[0].evidence.len(), 2);
}

#[test]
fn burst_absorbs_an_accident_opened_by_its_camera_first() {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![
            // The camera's clock runs early: its speed collapse is seen before the pressure drop.
            anomaly(
                "TC-1",
                "speed_collapse",
                "avg_speed_kmh",
                900,
                0.7,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "occupancy_rise",
                "occupancy_pct",
                900,
                0.6,
                Phase::Raised,
            ),
            anomaly(
                "PG-1",
                "pressure_drop",
                "pressure_kpa",
                1000,
                0.8,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "water_on_road",
                "event.water_on_road",
                1100,
                0.9,
                Phase::Raised,
            ),
        ],
    );
    let merged: Vec<_> = out.iter().filter(|s| s.merged_into.is_some()).collect();
    assert_eq!(merged.len(), 1, "the accident is merged into the burst");
    assert_eq!(merged[0].kind, "traffic_accident");
    let incidents = latest(&out);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0].kind, "water_main_burst");
    assert_eq!(
        incidents[0].evidence.len(),
        4,
        "the accident's evidence moved over"
    );
    assert_eq!(
        merged[0].merged_into.as_deref(),
        Some(incidents[0].id.as_str())
    );
}

#[test]
fn pollution_needs_two_stations() {
    let mut c = correlator();
    let one = run(
        &mut c,
        vec![anomaly(
            "AQ-1",
            "pm25_high",
            "pm2_5",
            100,
            0.5,
            Phase::Raised,
        )],
    );
    assert!(latest(&one).is_empty());
    let two = run(
        &mut c,
        vec![anomaly(
            "AQ-2",
            "pm25_high",
            "pm2_5",
            400,
            0.5,
            Phase::Raised,
        )],
    );
    let incidents = latest(&two);
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, "pollution_episode");
    assert_eq!(incidents[0].departments, vec!["environment".to_string()]);
}

#[test]
fn device_faults_are_one_incident_per_device_owned_by_its_department() {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![
            anomaly("PG-1", "device_silent", "*", 100, 1.0, Phase::Raised),
            anomaly("AQ-1", "device_silent", "*", 100, 1.0, Phase::Raised),
        ],
    );
    let incidents = latest(&out);
    assert_eq!(incidents.len(), 2);
    let pg = incidents
        .iter()
        .find(|i| i.evidence[0].device_id == "PG-1")
        .expect("PG-1 fault");
    assert_eq!(pg.departments, vec!["water".to_string()]);
    assert_eq!(pg.kind, "device_fault");
}

#[test]
fn incident_clears_after_quiet_time_and_reopens_instead_of_duplicating() {
    let mut c = correlator();
    let mut out = run(
        &mut c,
        vec![
            anomaly("AQ-1", "pm25_high", "pm2_5", 0, 0.5, Phase::Raised),
            anomaly("AQ-2", "pm25_high", "pm2_5", 60, 0.5, Phase::Raised),
            anomaly("AQ-1", "pm25_high", "pm2_5", 600, 0.5, Phase::Cleared),
            anomaly("AQ-2", "pm25_high", "pm2_5", 700, 0.5, Phase::Cleared),
        ],
    );
    // Still held until 700 s, clear_after is 1800 s: clears at exactly 2500 s.
    c.on_watermark(EventTime(2_499_000), &mut out);
    assert!(out.iter().all(|s| s.cleared_at.is_none()));
    c.on_watermark(EventTime(3_000_000), &mut out);
    let cleared: Vec<_> = out.iter().filter(|s| s.cleared_at.is_some()).collect();
    assert_eq!(cleared.len(), 1);
    assert_eq!(
        cleared[0].cleared_at,
        Some(EventTime(2_500_000)),
        "exact, not watermark time"
    );
    let id = cleared[0].id.clone();
    // Recurs within the hold-off: same incident again, not a new one.
    let again = run(
        &mut c,
        vec![anomaly(
            "AQ-1",
            "pm25_high",
            "pm2_5",
            3_500,
            0.5,
            Phase::Raised,
        )],
    );
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, id);
    assert!(again[0].cleared_at.is_none());
}

#[test]
fn unregistered_devices_are_counted_not_correlated() {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![anomaly("XX-1", "device_silent", "*", 1, 1.0, Phase::Raised)],
    );
    assert!(out.is_empty());
    assert_eq!(c.unlocated, 1);
}

#[test]
fn evidence_from_an_unhealthy_device_counts_for_less() {
    let mut c = correlator();
    // TC-1 is reporting impossible values: its 0.9 accident event weighs 0.27 (< 0.8).
    let out = run(
        &mut c,
        vec![
            anomaly(
                "TC-1",
                "out_of_range",
                "occupancy_pct",
                100,
                1.0,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "accident_event",
                "event.accident",
                110,
                0.9,
                Phase::Raised,
            ),
        ],
    );
    assert!(
        latest(&out).iter().all(|i| i.kind != "traffic_accident"),
        "{out:#?}"
    );
    // Healthy again: the same evidence opens the incident at full weight.
    let out = run(
        &mut c,
        vec![
            anomaly(
                "TC-1",
                "out_of_range",
                "occupancy_pct",
                200,
                0.0,
                Phase::Cleared,
            ),
            anomaly(
                "TC-1",
                "accident_event",
                "event.accident",
                2000,
                0.9,
                Phase::Raised,
            ),
        ],
    );
    let acc: Vec<_> = latest(&out)
        .into_iter()
        .filter(|i| i.kind == "traffic_accident")
        .collect();
    assert_eq!(acc.len(), 1);
    assert!(acc[0].evidence.iter().all(|e| e.weight == 1.0));
}

#[test]
fn confidence_grows_with_independent_witnesses_not_with_repeats() {
    let mut c = correlator();
    let out = run(
        &mut c,
        vec![
            anomaly(
                "PG-1",
                "pressure_drop",
                "pressure_kpa",
                1000,
                0.6,
                Phase::Raised,
            ),
            anomaly(
                "TC-1",
                "water_on_road",
                "event.water_on_road",
                1100,
                0.6,
                Phase::Raised,
            ),
        ],
    );
    let first = latest(&out)[0].confidence;
    assert!((first - 0.84).abs() < 1e-9, "1 - 0.4 * 0.4, got {first}");
    // The same camera repeating the same signal at the same strength adds nothing.
    let out = run(
        &mut c,
        vec![anomaly(
            "TC-1",
            "water_on_road",
            "event.water_on_road",
            1200,
            0.6,
            Phase::Raised,
        )],
    );
    assert!((latest(&out)[0].confidence - first).abs() < 1e-9);
    // A different signal from the camera is another witness.
    let out = run(
        &mut c,
        vec![anomaly(
            "TC-1",
            "speed_collapse",
            "avg_speed_kmh",
            1300,
            0.5,
            Phase::Raised,
        )],
    );
    assert!(latest(&out)[0].confidence > first);
}
