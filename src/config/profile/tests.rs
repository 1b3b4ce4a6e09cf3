//! Tests of profile loading, validation (file + line + field in every error) and lookups.

use std::path::Path;

use super::*;

fn shipped_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles")
}

fn shipped() -> ProfileSet {
    ProfileSet::load_dir(&shipped_dir()).unwrap_or_else(|e| panic!("shipped profiles:\n{e}"))
}

/// A valid one-message JSON profile; tests break one line of it.
const GOOD: &str = "\
name: gauge
description: test gauge
interval_secs: 30
messages:
  - topic: city/test/{device_id}/up
    timestamp:
      field: ts
      format: epoch_ms
    decode:
      json:
        metrics:
          pressure_kpa:
            field: p
            unit: Pa
            canonical_unit: kPa
            valid_range: [0, 1000]
";

fn errors_of(text: &str) -> Vec<ConfigError> {
    match ProfileSet::from_yaml_str(Path::new("gauge.yaml"), text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// Asserts one error at `line` whose field ends with `field`.
fn assert_error(text: &str, line: usize, field: &str) {
    let errs = errors_of(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!(e.file, "gauge.yaml");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(
        e.field.ends_with(field),
        "field {:?} should end with {field:?} ({e})",
        e.field
    );
}

#[test]
fn the_template_itself_is_valid() {
    let set = ProfileSet::from_yaml_str(Path::new("gauge.yaml"), GOOD).expect("valid");
    let info = set.metric_info("gauge", "pressure_kpa").expect("declared");
    assert_eq!(
        info,
        MetricInfo {
            unit: "kPa".to_string(),
            valid_range: Some((0.0, 1000.0))
        }
    );
}

#[test]
fn every_shipped_profile_loads_and_declares_the_canonical_metrics() {
    let set = shipped();
    assert_eq!(
        set.names(),
        vec![
            "air-senml",
            "air-vendor-b",
            "crew",
            "pressure-logger",
            "traffic-camera"
        ]
    );
    let air = [
        "humidity_pct",
        "no2",
        "noise_laeq",
        "o3",
        "pm10",
        "pm2_5",
        "rain_mm_h",
        "temp_c",
    ];
    assert_eq!(set.metrics("air-senml"), air.map(String::from).to_vec());
    assert_eq!(
        set.metrics("air-vendor-b"),
        ["no2", "o3", "pm10", "pm2_5"].map(String::from).to_vec()
    );
    assert_eq!(
        set.metrics("pressure-logger"),
        ["battery_mv", "pressure_kpa"].map(String::from).to_vec()
    );
    let camera = set.metrics("traffic-camera");
    for m in [
        "vehicle_count",
        "avg_speed_kmh",
        "occupancy_pct",
        "event.stopped_vehicle",
        "event.accident",
        "event.wrong_way",
        "event.pedestrian_on_road",
        "event.water_on_road",
        "event.congestion",
    ] {
        assert!(
            camera.contains(&m.to_string()),
            "{m} missing from {camera:?}"
        );
    }
    assert_eq!(camera.len(), 9);
    assert!(set.metrics("crew").is_empty());
    assert_eq!(set.interval_secs("traffic-camera"), Some(10.0));
    assert_eq!(set.interval_secs("pressure-logger"), Some(60.0));
    assert_eq!(set.interval_secs("nope"), None);
    let units = [
        ("pm2_5", "ug/m3"),
        ("no2", "ug/m3"),
        ("temp_c", "Cel"),
        ("humidity_pct", "%RH"),
        ("noise_laeq", "dB"),
    ];
    for (metric, unit) in units {
        assert_eq!(
            set.metric_info("air-senml", metric).map(|i| i.unit),
            Some(unit.to_string()),
            "{metric}"
        );
    }
    let event = set
        .metric_info("traffic-camera", "event.accident")
        .expect("event");
    assert_eq!(event.valid_range, Some((0.0, 1.0)));
    assert_eq!(set.metric_info("traffic-camera", "event.alien"), None);
    assert_eq!(
        set.get("pressure-logger").map(|p| p.messages.len()),
        Some(1)
    );
}

#[test]
fn topics_route_to_profile_message_and_id() {
    let set = shipped();
    let m = set
        .match_topic("city/traffic/cameras/TC-0042/events")
        .expect("camera events");
    assert_eq!(
        (m.profile, m.message_index, m.device_id.as_deref()),
        ("traffic-camera", 1, Some("TC-0042"))
    );
    let m = set
        .match_topic("city/env/vendor-b/AQ-2201")
        .expect("vendor b");
    assert_eq!(
        (m.profile, m.device_id.as_deref()),
        ("air-vendor-b", Some("AQ-2201"))
    );
    let m = set.match_topic("city/env/AQ-0107/senml").expect("vendor a");
    assert_eq!(m.profile, "air-senml");
    // Both contract filters accept this topic; the one with the longer fixed prefix wins.
    assert_eq!(
        set.match_topic("city/env/vendor-b/senml")
            .map(|m| m.profile),
        Some("air-vendor-b")
    );
    assert_eq!(
        set.match_topic("city/crews/W-07/ack")
            .map(|m| m.message_index),
        Some(1)
    );
    assert!(
        set.match_topic("city/crews/W-07/dispatch").is_none(),
        "our own dispatches are not input"
    );
    assert!(set.match_topic("city/env/AQ-0107").is_none());
    assert!(set
        .subscriptions()
        .contains(&"city/traffic/cameras/+/stats".to_string()));
}

#[test]
fn unknown_field_reports_file_line_and_field() {
    let text = GOOD.replace(
        "            unit: Pa\n",
        "            unit: Pa\n            units: Pa\n",
    );
    assert_error(&text, 15, "units");
}

#[test]
fn unknown_unit_and_missing_conversion_report_the_unit_line() {
    assert_error(
        &GOOD.replace("unit: Pa", "unit: psi"),
        14,
        "pressure_kpa.unit",
    );
    assert_error(
        &GOOD.replace("unit: Pa", "unit: mV"),
        14,
        "pressure_kpa.unit",
    );
    assert_error(
        &GOOD.replace("canonical_unit: kPa", "canonical_unit: bars"),
        15,
        "canonical_unit",
    );
}

#[test]
fn semantic_errors_name_their_lines() {
    assert_error(&GOOD.replace("[0, 1000]", "[1000, 0]"), 16, "valid_range");
    assert_error(
        &GOOD.replace("interval_secs: 30", "interval_secs: 0"),
        3,
        "interval_secs",
    );
    assert_error(
        &GOOD.replace("city/test/{device_id}/up", "city/test/up"),
        5,
        "messages[0].topic",
    );
    assert_error(&GOOD.replace("name: gauge", "name: \"\""), 1, "name");
    assert_error(
        &GOOD.replace("field: p", "field: \"p[*]\""),
        12,
        "aggregate",
    );
    assert_error(
        &GOOD.replace("field: ts", "field: \"ts..x\""),
        7,
        "timestamp.field",
    );
    assert_error(&GOOD.replace("format: epoch_ms", "format: julian"), 8, "");
}

#[test]
fn all_errors_of_a_file_come_at_once() {
    let text = GOOD
        .replace("interval_secs: 30", "interval_secs: -1")
        .replace("unit: Pa", "unit: psi")
        .replace("[0, 1000]", "[5, 1]");
    let errs = errors_of(&text);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(errs.len(), 3, "{fields:?}");
    assert!(errs.iter().all(|e| e.line.is_some()), "{errs:#?}");
}

#[test]
fn message_and_decoder_rules() {
    let senml_with_ts = "name: s\ninterval_secs: 60\nmessages:\n  - topic: a/{device_id}\n    timestamp: { field: ts, format: rfc3339 }\n    decode:\n      senml:\n        metrics:\n          pm10: { field: pm10, unit: ug/m3 }\n";
    assert_error(senml_with_ts, 5, "timestamp");
    let weighted = GOOD.replace("field: p\n", "field: \"ps[*].v\"\n            aggregate: weighted_mean\n            weight: \"other[*].w\"\n");
    assert_error(&weighted, 15, "weight");
    let event = "name: e\ninterval_secs: 1\nmessages:\n  - topic: a/{device_id}\n    timestamp: { field: ts, format: rfc3339 }\n    decode:\n      json_event:\n        type_field: type\n        metric_template: \"event.type\"\n        value_field: c\n        unit: ratio\n";
    assert_error(event, 9, "metric_template");
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write temp profile");
}

#[test]
fn cross_file_duplicates_overlaps_and_unit_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.yaml", GOOD);
    write(dir.path(), "b.yaml", GOOD);
    let other_topic = GOOD.replace("name: gauge", "name: gauge2");
    write(dir.path(), "c.yml", &other_topic);
    let conflicting = GOOD
        .replace("name: gauge", "name: gauge3")
        .replace("city/test/", "city/other/")
        .replace("canonical_unit: kPa", "canonical_unit: Pa");
    write(dir.path(), "d.yaml", &conflicting);
    write(
        dir.path(),
        "e.yaml",
        "name: broken\ninterval_secs: 1\nmessages: 7\n",
    );
    write(dir.path(), "notes.txt", "not a profile");
    let errs = ProfileSet::load_dir(dir.path()).expect_err("must fail").0;
    let summary: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 4, "{summary:#?}");
    assert!(
        errs[0].file.ends_with("b.yaml") && errs[0].field == "name" && errs[0].line == Some(1),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].file.ends_with("c.yml") && errs[1].message.contains("overlaps"),
        "{}",
        errs[1]
    );
    assert_eq!(errs[1].line, Some(5));
    assert!(
        errs[2].file.ends_with("d.yaml") && errs[2].message.contains("kPa"),
        "{}",
        errs[2]
    );
    assert!(
        errs[3].file.ends_with("e.yaml") && errs[3].line == Some(3),
        "{}",
        errs[3]
    );
}

#[test]
fn empty_or_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(ProfileSet::load_dir(dir.path()).is_err());
    assert!(ProfileSet::load_dir(&dir.path().join("missing")).is_err());
}

#[test]
fn profiles_built_in_code() {
    let spec: DeviceProfile =
        crate::config::load_yaml_str(Path::new("x.yaml"), GOOD).expect("parses");
    let set = ProfileSet::from_profiles(vec![spec.clone()]).expect("valid");
    assert_eq!(set.names(), vec!["gauge"]);
    let mut bad = spec;
    bad.interval_secs = f64::NAN;
    let errs = ProfileSet::from_profiles(vec![bad])
        .expect_err("NaN interval")
        .0;
    assert_eq!(
        (errs[0].file.as_str(), errs[0].field.as_str()),
        ("<profile gauge>", "interval_secs")
    );
}

#[test]
fn errors_in_a_later_message_of_a_shipped_file_point_at_their_line() {
    let text = std::fs::read_to_string(shipped_dir().join("traffic-camera.yaml")).expect("shipped");
    let broken = text.replace("unit: ratio", "unit: ratios");
    let line = text
        .lines()
        .position(|l| l.trim() == "unit: ratio")
        .expect("present")
        + 1;
    let errs = errors_of(&broken);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, Some(line), "{}", errs[0]);
    assert_eq!(errs[0].field, "messages[1].decode.json_event.unit");
}
