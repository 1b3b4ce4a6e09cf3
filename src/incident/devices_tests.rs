//! Device table: one test per status, precedence, fault bookkeeping and JSON shape.

use super::*;
use crate::model::{Anomaly, Device, EventTime, Location, Phase};

fn device(id: &str) -> Device {
    Device {
        device_id: id.into(),
        profile: "pressure-logger".into(),
        location: Location {
            lat: 1.3,
            lon: 103.8,
        },
        department: "water".into(),
        district: "central".into(),
    }
}

fn anomaly(id: &str, detector: &str, metric: &str, phase: Phase) -> Anomaly {
    Anomaly {
        device_id: id.into(),
        metric: metric.into(),
        signal: "health".into(),
        detector: detector.into(),
        ts: EventTime(50),
        value: 0.0,
        score: 1.0,
        phase,
        reason: "test".into(),
        arrival: None,
    }
}

fn status(t: &DeviceTable, id: &str) -> Option<DeviceStatus> {
    t.get(id).map(|v| v.status)
}

#[test]
fn registered_device_is_never_seen_then_online() {
    let t = DeviceTable::new(vec![device("PL-1")]);
    assert_eq!(status(&t, "PL-1"), Some(DeviceStatus::NeverSeen));
    t.observe_reading("PL-1", "pressure-logger", EventTime(10), EventTime(12));
    assert_eq!(status(&t, "PL-1"), Some(DeviceStatus::Online));
}

#[test]
fn unknown_reporter_is_unregistered_whatever_else_holds() {
    let t = DeviceTable::new(vec![]);
    t.observe_reading("X-9", "air-quality", EventTime(10), EventTime(12));
    t.observe_anomaly(&anomaly("X-9", "silence", "*", Phase::Raised));
    t.observe_anomaly(&anomaly("X-9", "flatline", "pm2_5", Phase::Raised));
    let v = t.get("X-9").expect("kept");
    assert_eq!(v.status, DeviceStatus::Unregistered);
    assert_eq!(v.profile.as_deref(), Some("air-quality"));
    assert!(v.location.is_none() && v.department.is_none() && v.district.is_none());
}

#[test]
fn silence_toggles_silent_and_beats_faulty() {
    let t = DeviceTable::new(vec![device("PL-1")]);
    t.observe_reading("PL-1", "pressure-logger", EventTime(10), EventTime(12));
    t.observe_anomaly(&anomaly("PL-1", "flatline", "pressure_kpa", Phase::Raised));
    t.observe_anomaly(&anomaly("PL-1", "silence", "*", Phase::Raised));
    assert_eq!(status(&t, "PL-1"), Some(DeviceStatus::Silent));
    t.observe_anomaly(&anomaly("PL-1", "silence", "*", Phase::Cleared));
    assert_eq!(status(&t, "PL-1"), Some(DeviceStatus::Faulty));
}

#[test]
fn never_seen_beats_silent() {
    let t = DeviceTable::new(vec![device("PL-1")]);
    t.observe_anomaly(&anomaly("PL-1", "silence", "*", Phase::Raised));
    assert_eq!(status(&t, "PL-1"), Some(DeviceStatus::NeverSeen));
}

#[test]
fn faults_are_kept_per_detector_and_metric() {
    let t = DeviceTable::new(vec![device("PL-1")]);
    t.observe_reading("PL-1", "pressure-logger", EventTime(10), EventTime(12));
    t.observe_anomaly(&anomaly("PL-1", "flatline", "pressure_kpa", Phase::Raised));
    t.observe_anomaly(&anomaly("PL-1", "out_of_range", "flow_lps", Phase::Raised));
    t.observe_anomaly(&anomaly("PL-1", "step_drop", "pressure_kpa", Phase::Raised)); // not health
    let v = t.get("PL-1").expect("known");
    assert_eq!(v.status, DeviceStatus::Faulty);
    assert_eq!(v.faults, ["flatline:pressure_kpa", "out_of_range:flow_lps"]);
    t.observe_anomaly(&anomaly("PL-1", "flatline", "pressure_kpa", Phase::Cleared));
    assert_eq!(status(&t, "PL-1"), Some(DeviceStatus::Faulty));
    t.observe_anomaly(&anomaly("PL-1", "out_of_range", "flow_lps", Phase::Cleared));
    assert_eq!(status(&t, "PL-1"), Some(DeviceStatus::Online));
}

#[test]
fn times_only_move_forward_and_json_has_the_contract_shape() {
    let t = DeviceTable::new(vec![device("PL-2"), device("PL-1")]);
    t.observe_reading(
        "PL-1",
        "pressure-logger",
        EventTime(2_000),
        EventTime(2_100),
    );
    t.observe_reading(
        "PL-1",
        "pressure-logger",
        EventTime(1_000),
        EventTime(2_200),
    );
    let list = t.list();
    assert_eq!(
        list.iter()
            .map(|v| v.device_id.as_str())
            .collect::<Vec<_>>(),
        ["PL-1", "PL-2"]
    );
    assert_eq!(list[0].last_seen, Some(EventTime(2_000)));
    assert_eq!(list[0].last_arrival, Some(EventTime(2_200)));
    let json = serde_json::to_value(&list).expect("serializes");
    assert_eq!(json[0]["status"], "online");
    assert_eq!(json[0]["last_seen"], "1970-01-01T00:00:02.000Z");
    assert_eq!(json[1]["status"], "never-seen");
    assert!(json[1]["last_seen"].is_null());
    assert_eq!(json[1]["faults"], serde_json::json!([]));
    for s in ["online", "silent", "faulty", "unregistered", "never-seen"] {
        assert_eq!(DeviceStatus::parse(s).map(DeviceStatus::as_str), Some(s));
    }
}
