//! Every example payload of `shared/contracts/devices.md`, exactly as written there, decoded with
//! the shipped profiles in `device-profiles/`.

use std::path::Path;

use super::*;
use crate::model::{CrewAction, CrewState};

pub(super) const ARRIVAL: EventTime = EventTime(1_795_335_400_000);

pub(super) fn shipped() -> ProfileSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles");
    match ProfileSet::load_dir(&dir) {
        Ok(set) => set,
        Err(e) => panic!("shipped profiles must load:\n{e}"),
    }
}

pub(super) fn run(topic: &str, payload: &str) -> Decoded {
    decode(&shipped(), topic, payload.as_bytes(), ARRIVAL)
}

/// The value of the one reading of `metric` (fails if there is not exactly one).
pub(super) fn value(d: &Decoded, metric: &str) -> f64 {
    let found: Vec<_> = d.readings.iter().filter(|r| r.metric == metric).collect();
    assert_eq!(found.len(), 1, "{metric}: {:#?}", d);
    found[0].value
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// Within 0.05 %: the ppb factors 1.882 / 1.963 are MW/24.45 rounded to three decimals.
fn rel_close(a: f64, b: f64) -> bool {
    (a / b - 1.0).abs() < 5e-4
}

const CAMERA_STATS: &str = r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:15:30.250Z","interval_s":10,
 "lanes":[{"lane":1,"count":12,"avg_speed_kmh":38.5,"occupancy_pct":22.1},
          {"lane":2,"count":9,"avg_speed_kmh":41.0,"occupancy_pct":18.4}]}"#;

#[test]
fn camera_stats_aggregate_over_lanes() {
    let d = run("city/traffic/cameras/TC-0042/stats", CAMERA_STATS);
    assert!(d.dead.is_empty(), "{:#?}", d.dead);
    assert_eq!(d.readings.len(), 3);
    assert_eq!(value(&d, "vehicle_count"), 21.0);
    let speed = (12.0 * 38.5 + 9.0 * 41.0) / 21.0;
    assert!(
        close(value(&d, "avg_speed_kmh"), speed),
        "{}",
        value(&d, "avg_speed_kmh")
    );
    assert!(close(value(&d, "occupancy_pct"), (22.1 + 18.4) / 2.0));
    for r in &d.readings {
        assert_eq!(r.device_id, "TC-0042");
        assert_eq!(r.profile, "traffic-camera");
        assert_eq!(r.ts, EventTime(1_795_335_330_250));
        assert_eq!(r.arrival, ARRIVAL);
        assert_eq!(r.seq, None);
    }
}

#[test]
fn camera_speed_with_all_counts_zero_is_the_plain_mean() {
    let p = r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:15:30Z","lanes":[
        {"count":0,"avg_speed_kmh":40.0,"occupancy_pct":0},{"count":0,"avg_speed_kmh":50.0,"occupancy_pct":0}]}"#;
    let d = run("city/traffic/cameras/TC-0042/stats", p);
    assert!(close(value(&d, "avg_speed_kmh"), 45.0));
    assert_eq!(value(&d, "vehicle_count"), 0.0);
}

#[test]
fn camera_event_becomes_an_event_metric() {
    let p = r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:16:02.100Z","type":"stopped_vehicle","lane":2,"confidence":0.91}"#;
    let d = run("city/traffic/cameras/TC-0042/events", p);
    assert!(d.dead.is_empty(), "{:#?}", d.dead);
    assert!(close(value(&d, "event.stopped_vehicle"), 0.91));
    assert_eq!(d.readings[0].ts, EventTime(1_795_335_362_100));
    let unknown = p.replace("stopped_vehicle", "alien_landing");
    let d = run("city/traffic/cameras/TC-0042/events", &unknown);
    assert!(d.readings.is_empty());
    assert_eq!(d.dead[0].reason, reason::MALFORMED);
    assert!(
        d.dead[0].detail.contains("alien_landing"),
        "{}",
        d.dead[0].detail
    );
}

const SENML: &str = r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330.0,"n":"pm2_5","u":"ug/m3","v":35.2},
 {"n":"pm10","u":"ug/m3","v":51.0},{"n":"no2","u":"ppb","v":21.0},{"n":"o3","u":"ppb","v":30.4},
 {"n":"noise_laeq","u":"dB","v":62.1},{"n":"temp","u":"Cel","v":14.2},
 {"n":"humidity","u":"%RH","v":55.0},{"n":"rain","u":"mm/h","v":0.0}]"#;

#[test]
fn senml_pack_maps_names_and_converts_ppb() {
    let d = run("city/env/AQ-0107/senml", SENML);
    assert!(d.dead.is_empty(), "{:#?}", d.dead);
    assert_eq!(d.readings.len(), 8);
    assert!(close(value(&d, "pm2_5"), 35.2));
    assert!(close(value(&d, "pm10"), 51.0));
    assert!(
        rel_close(value(&d, "no2"), 21.0 * 1.882),
        "{}",
        value(&d, "no2")
    );
    assert!(
        rel_close(value(&d, "o3"), 30.4 * 1.963),
        "{}",
        value(&d, "o3")
    );
    assert!(close(value(&d, "noise_laeq"), 62.1));
    assert!(close(value(&d, "temp_c"), 14.2));
    assert!(close(value(&d, "humidity_pct"), 55.0));
    assert!(close(value(&d, "rain_mm_h"), 0.0));
    assert!(d
        .readings
        .iter()
        .all(|r| r.device_id == "AQ-0107" && r.ts == EventTime(1_795_335_330_000)));
}

#[test]
fn senml_record_times_are_relative_to_bt() {
    let p = r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330,"n":"pm2_5","u":"ug/m3","v":30,"t":-120},
        {"n":"pm2_5","u":"ug/m3","v":31,"t":-60},{"n":"pm2_5","u":"ug/m3","v":32}]"#;
    let d = run("city/env/AQ-0107/senml", p);
    let got: Vec<(i64, f64)> = d.readings.iter().map(|r| (r.ts.0, r.value)).collect();
    assert_eq!(
        got,
        vec![
            (1_795_335_210_000, 30.0),
            (1_795_335_270_000, 31.0),
            (1_795_335_330_000, 32.0)
        ]
    );
}

#[test]
fn senml_base_unit_and_base_value_apply_to_later_records() {
    let p = r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330,"bu":"ppb","bv":1,"n":"no2","v":20},
        {"n":"o3","v":9,"u":"ppb"}]"#;
    let d = run("city/env/AQ-0107/senml", p);
    assert!(d.dead.is_empty(), "{:#?}", d.dead);
    assert!(rel_close(value(&d, "no2"), 21.0 * 1.882));
    assert!(rel_close(value(&d, "o3"), 10.0 * 1.963));
}

#[test]
fn senml_times_below_2_pow_28_are_relative_to_arrival() {
    let p = r#"[{"bn":"urn:dev:env:AQ-0107:","n":"pm10","u":"ug/m3","v":5,"t":-30}]"#;
    let d = run("city/env/AQ-0107/senml", p);
    assert_eq!(d.readings[0].ts, EventTime(ARRIVAL.0 - 30_000));
}

#[test]
fn vendor_b_local_time_and_units_land_with_vendor_a() {
    let p = r#"{"station":"AQ-2201","time":"2026-11-22 16:15:00+08:00","PM2.5":35,"PM10":52,"NO2":40.1,"O3":59.8,"unit":"ug/m3"}"#;
    let d = run("city/env/vendor-b/AQ-2201", p);
    assert!(d.dead.is_empty(), "{:#?}", d.dead);
    assert_eq!(d.readings.len(), 4);
    assert!(close(value(&d, "pm2_5"), 35.0));
    assert!(close(value(&d, "pm10"), 52.0));
    assert!(close(value(&d, "no2"), 40.1));
    assert!(close(value(&d, "o3"), 59.8));
    assert!(d
        .readings
        .iter()
        .all(|r| r.ts == EventTime(1_795_335_300_000) && r.device_id == "AQ-2201"));
    // Same pollutant, same unit, whichever vendor.
    let profiles = shipped();
    let a = profiles
        .metric_info("air-senml", "no2")
        .expect("vendor A no2");
    let b = profiles
        .metric_info("air-vendor-b", "no2")
        .expect("vendor B no2");
    assert_eq!((a.unit.as_str(), b.unit.as_str()), ("ug/m3", "ug/m3"));
    // A vendor B station reporting in ppb is converted, not mislabelled.
    let ppb = p.replace(r#""unit":"ug/m3""#, r#""unit":"ppb""#);
    let d = run("city/env/vendor-b/AQ-2201", &ppb);
    assert!(rel_close(value(&d, "no2"), 40.1 * 1.882), "{d:#?}");
    assert_eq!(d.dead.len(), 2, "PM has no ppb conversion: {:#?}", d.dead);
}

const PRESSURE: &str = r#"{"dev":"PG-0311","seq":1842,"t0":1795335330,"dt":5,"kpa_x10":[4123,4120,4118,4121,4119,4117,4120,4122,4118,4116,4119,4121],"bat_mv":3610}"#;

#[test]
fn pressure_batch_expands_samples_with_seq() {
    let d = run("city/water/pressure/PG-0311/up", PRESSURE);
    assert!(d.dead.is_empty(), "{:#?}", d.dead);
    let p: Vec<_> = d
        .readings
        .iter()
        .filter(|r| r.metric == "pressure_kpa")
        .collect();
    assert_eq!(p.len(), 12);
    assert!(close(p[0].value, 412.3) && close(p[11].value, 412.1));
    assert_eq!(p[0].ts, EventTime(1_795_335_330_000));
    assert_eq!(p[1].ts, EventTime(1_795_335_335_000));
    assert_eq!(p[11].ts, EventTime(1_795_335_385_000));
    assert!(d
        .readings
        .iter()
        .all(|r| r.seq == Some(1842) && r.device_id == "PG-0311"));
    assert_eq!(value(&d, "battery_mv"), 3610.0);
    let bat = d
        .readings
        .iter()
        .find(|r| r.metric == "battery_mv")
        .expect("battery");
    assert_eq!(bat.ts, EventTime(1_795_335_330_000));
}

#[test]
fn crew_status_and_ack() {
    let p = r#"{"crew_id":"W-07","ts":"2026-11-22T08:15:00Z","lat":30.2741,"lon":120.1551,"state":"available"}"#;
    let d = run("city/crews/W-07/status", p);
    assert!(d.dead.is_empty() && d.readings.is_empty(), "{d:#?}");
    let s = &d.crew_status[0];
    assert_eq!(
        (s.crew_id.as_str(), s.state, s.ts),
        ("W-07", CrewState::Available, EventTime(1_795_335_300_000))
    );
    assert!(close(s.location.lat, 30.2741) && close(s.location.lon, 120.1551));

    let a = r#"{"incident_id":"inc-7","ts":"2026-11-22T08:20:00Z","action":"on_scene"}"#;
    let d = run("city/crews/W-07/ack", a);
    assert_eq!(d.crew_acks.len(), 1, "{d:#?}");
    assert_eq!(d.crew_acks[0].action, CrewAction::OnScene);
    assert_eq!(
        (
            d.crew_acks[0].crew_id.as_str(),
            d.crew_acks[0].incident_id.as_str()
        ),
        ("W-07", "inc-7")
    );

    let d = run("city/crews/W-07/ack", &a.replace("on_scene", "maybe"));
    assert!(d.crew_acks.is_empty());
    assert_eq!(d.dead[0].reason, reason::MALFORMED);
    assert!(d.dead[0].detail.contains("maybe"));
}

#[test]
fn unknown_topic_is_no_profile_and_mismatch_is_caught() {
    let d = run("city/unknown/thing", "{}");
    assert_eq!(d.dead.len(), 1);
    assert_eq!(d.dead[0].reason, reason::NO_PROFILE);
    assert_eq!(d.dead[0].topic, "city/unknown/thing");

    let d = run("city/traffic/cameras/TC-9999/stats", CAMERA_STATS);
    assert!(d.readings.is_empty());
    assert_eq!(d.dead[0].reason, reason::DEVICE_MISMATCH);
    let d = run("city/env/AQ-9999/senml", SENML);
    assert!(d.readings.is_empty());
    assert_eq!(
        d.dead.len(),
        1,
        "one dead letter per wrong pack: {:#?}",
        d.dead
    );
    assert_eq!(d.dead[0].reason, reason::DEVICE_MISMATCH);
    let d = run(
        "city/crews/W-08/status",
        r#"{"crew_id":"W-07","ts":"2026-11-22T08:15:00Z","lat":1,"lon":2,"state":"available"}"#,
    );
    assert_eq!(d.dead[0].reason, reason::DEVICE_MISMATCH);
}

#[test]
fn decode_into_appends_and_reuses_buffers() {
    let profiles = shipped();
    let mut out = Decoded::default();
    decode_into(
        &profiles,
        "city/water/pressure/PG-0311/up",
        PRESSURE.as_bytes(),
        ARRIVAL,
        &mut out,
    );
    decode_into(&profiles, "nope", b"", ARRIVAL, &mut out);
    assert_eq!((out.readings.len(), out.dead.len()), (13, 1));
    out.clear();
    assert!(out.readings.is_empty() && out.dead.is_empty() && out.readings.capacity() >= 13);
}
