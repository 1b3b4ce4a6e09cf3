//! Damaged payloads: every kind of breakage becomes a dead letter with a reason, partial damage
//! keeps the good part, and no input at all makes decoding panic.

use super::tests::{close, run, shipped, value, ARRIVAL};
use super::*;

const TOPICS: [&str; 7] = [
    "city/traffic/cameras/TC-0042/stats",
    "city/traffic/cameras/TC-0042/events",
    "city/env/AQ-0107/senml",
    "city/env/vendor-b/AQ-2201",
    "city/water/pressure/PG-0311/up",
    "city/crews/W-07/status",
    "city/crews/W-07/ack",
];

/// Asserts exactly one dead letter with `reason` whose detail mentions `needle`.
fn one_dead(d: &Decoded, reason: &str, needle: &str) {
    assert_eq!(d.dead.len(), 1, "{:#?}", d.dead);
    assert_eq!(d.dead[0].reason, reason, "{:#?}", d.dead[0]);
    assert!(
        d.dead[0].detail.contains(needle),
        "detail {:?} lacks {needle:?}",
        d.dead[0].detail
    );
}

#[test]
fn garbage_bytes_and_truncated_json_are_malformed_with_payload_kept() {
    let profiles = shipped();
    let d = decode(&profiles, TOPICS[4], &[0xff, 0xfe, b'{', 0x00], ARRIVAL);
    one_dead(&d, reason::MALFORMED, "UTF-8");
    assert_eq!(d.dead[0].payload, "\u{fffd}\u{fffd}{\u{0}");
    assert_eq!(d.dead[0].arrival, ARRIVAL);
    let d = run(TOPICS[4], r#"{"dev":"PG-0311","seq":1842,"t0":17953"#);
    one_dead(&d, reason::MALFORMED, "invalid JSON");
    assert_eq!(
        d.dead[0].payload,
        r#"{"dev":"PG-0311","seq":1842,"t0":17953"#
    );
    for topic in TOPICS {
        for payload in ["", "null", "42", "\"x\"", "[]", "{}", "[1,2]", "{\"a\":"] {
            let d = run(topic, payload);
            assert!(
                !d.dead.is_empty(),
                "{topic} {payload:?} must be a dead letter"
            );
            assert!(d.readings.is_empty() && d.crew_status.is_empty() && d.crew_acks.is_empty());
        }
    }
}

#[test]
fn missing_fields_and_wrong_types_name_the_field() {
    let d = run(
        TOPICS[4],
        r#"{"dev":"PG-0311","seq":1,"dt":5,"kpa_x10":[1]}"#,
    );
    one_dead(&d, reason::MALFORMED, "t0: missing");
    let d = run(
        TOPICS[4],
        r#"{"dev":"PG-0311","seq":1,"t0":"soon","dt":5,"kpa_x10":[1]}"#,
    );
    one_dead(&d, reason::BAD_TIMESTAMP, "t0");
    let d = run(
        TOPICS[0],
        r#"{"camera_id":"TC-0042","ts":"08:15","lanes":[]}"#,
    );
    one_dead(&d, reason::BAD_TIMESTAMP, "ts");
    let d = run(
        TOPICS[0],
        r#"{"camera_id":7,"ts":"2026-11-22T08:15:30Z","lanes":[]}"#,
    );
    one_dead(&d, reason::MALFORMED, "camera_id: expected a string");
    let d = run(
        TOPICS[1],
        r#"{"ts":"2026-11-22T08:15:30Z","type":"accident","confidence":"high"}"#,
    );
    one_dead(
        &d,
        reason::MALFORMED,
        "confidence: expected a number, got string",
    );
    let d = run(
        TOPICS[5],
        r#"{"ts":"2026-11-22T08:15:30Z","lat":95,"lon":1,"state":"available"}"#,
    );
    one_dead(&d, reason::MALFORMED, "lat");
    let d = run(
        TOPICS[6],
        r#"{"ts":"2026-11-22T08:15:30Z","action":"accept"}"#,
    );
    one_dead(&d, reason::MALFORMED, "incident_id: missing");
}

#[test]
fn huge_numbers_and_empty_arrays() {
    // Beyond f64: serde_json refuses the number, so the message is malformed.
    let d = run(
        TOPICS[4],
        r#"{"dev":"PG-0311","seq":1,"t0":1795335330,"dt":5,"kpa_x10":[1e400]}"#,
    );
    one_dead(&d, reason::MALFORMED, "invalid JSON");
    let d = run(
        TOPICS[4],
        r#"{"dev":"PG-0311","seq":1,"t0":1e300,"dt":5,"kpa_x10":[1]}"#,
    );
    one_dead(&d, reason::BAD_TIMESTAMP, "t0");
    let d = run(
        TOPICS[4],
        r#"{"dev":"PG-0311","seq":1,"t0":1795335330,"dt":1e300,"kpa_x10":[1]}"#,
    );
    one_dead(&d, reason::MALFORMED, "dt");
    // Finite in the payload, infinite after scaling: a dead letter, never an inf reading.
    let pack = r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330,"n":"no2","u":"ppb","v":1.7e308},
        {"n":"o3","u":"ppb","v":1}]"#;
    let d = run(TOPICS[2], pack);
    one_dead(&d, reason::MALFORMED, "after unit conversion");
    assert_eq!(d.readings.len(), 1, "{d:#?}");
    let big = r#"{"dev":"PG-0311","seq":99999999999999999999999,"t0":1795335330,"dt":5,"kpa_x10":[4000]}"#;
    let d = run(TOPICS[4], big);
    one_dead(&d, reason::MALFORMED, "seq");
    assert_eq!(d.readings.len(), 1, "samples survive a bad seq");
    let d = run(
        TOPICS[4],
        r#"{"dev":"PG-0311","seq":1,"t0":1795335330,"dt":5,"kpa_x10":[],"bat_mv":3600}"#,
    );
    one_dead(&d, reason::MALFORMED, "kpa_x10: empty array");
    assert_eq!(value(&d, "battery_mv"), 3600.0);
    let d = run(
        TOPICS[0],
        r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:15:30Z","lanes":[]}"#,
    );
    assert_eq!(d.dead.len(), 3, "one per lane metric: {:#?}", d.dead);
    assert!(d
        .dead
        .iter()
        .all(|x| x.detail.contains("lanes: empty array")));
    let d = run(TOPICS[2], "[]");
    one_dead(&d, reason::MALFORMED, "empty SenML pack");
}

#[test]
fn partial_damage_keeps_the_good_part() {
    let senml = r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330,"n":"pm2_5","u":"ug/m3","v":35.2},
        {"n":"pm10","u":"ug/m3","v":"fifty"}, 17, {"n":"no2","u":"furlongs","v":1},
        {"n":"o3","u":"ppb","v":30.4}, {"n":"unmapped","v":1}, {"n":"temp","u":"Cel","t":"x","v":1}]"#;
    let d = run(TOPICS[2], senml);
    let metrics: Vec<&str> = d.readings.iter().map(|r| r.metric.as_str()).collect();
    assert_eq!(metrics, vec!["pm2_5", "o3"]);
    let reasons: Vec<&str> = d.dead.iter().map(|x| x.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec!["malformed", "malformed", "malformed", "bad_timestamp"],
        "{:#?}",
        d.dead
    );
    assert!(
        d.dead[0].detail.contains("record 1 (pm10)"),
        "{}",
        d.dead[0].detail
    );
    assert!(d.dead[2].detail.contains("furlongs"));

    let batch = r#"{"dev":"PG-0311","seq":7,"t0":1795335330,"dt":5,"kpa_x10":[4123,"x",null,4118],"bat_mv":"low"}"#;
    let d = run(TOPICS[4], batch);
    let kept: Vec<(i64, f64)> = d.readings.iter().map(|r| (r.ts.0, r.value)).collect();
    assert_eq!(kept.len(), 2);
    assert!(close(kept[0].1, 412.3) && close(kept[1].1, 411.8));
    assert_eq!(
        (kept[0].0, kept[1].0),
        (1_795_335_330_000, 1_795_335_345_000),
        "indices keep their times"
    );
    let details: Vec<&str> = d.dead.iter().map(|x| x.detail.as_str()).collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(details[0].starts_with("kpa_x10[1]") && details[1].starts_with("kpa_x10[2]"));
    assert!(details[2].starts_with("bat_mv"));

    let lanes = r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:15:30Z","lanes":[
        {"count":3,"avg_speed_kmh":40,"occupancy_pct":10},{"count":2,"avg_speed_kmh":"fast","occupancy_pct":20}]}"#;
    let d = run(TOPICS[0], lanes);
    one_dead(&d, reason::MALFORMED, "lanes[1].avg_speed_kmh");
    assert_eq!(value(&d, "vehicle_count"), 5.0);
    assert!(close(value(&d, "occupancy_pct"), 15.0));
}

#[test]
fn out_of_range_values_are_readings_not_dead_letters() {
    let d = run(
        TOPICS[4],
        r#"{"dev":"PG-0311","seq":1,"t0":1795335330,"dt":5,"kpa_x10":[-50, 99999]}"#,
    );
    assert!(d.dead.is_empty(), "{:#?}", d.dead);
    assert_eq!(d.readings.len(), 2);
    assert!(close(d.readings[0].value, -5.0));
}

/// Tiny deterministic generator so the fuzz cases are the same on every run.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn no_input_panics_truncations_flips_and_noise() {
    let profiles = shipped();
    let valid = [
        r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:15:30.250Z","lanes":[{"count":12,"avg_speed_kmh":38.5,"occupancy_pct":22.1}]}"#,
        r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:16:02.100Z","type":"accident","confidence":0.91}"#,
        r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330.0,"n":"no2","u":"ppb","v":21.0,"t":-5}]"#,
        r#"{"station":"AQ-2201","time":"2026-11-22 16:15:00+08:00","PM2.5":35,"unit":"ug/m3"}"#,
        r#"{"dev":"PG-0311","seq":1842,"t0":1795335330,"dt":5,"kpa_x10":[4123,4120],"bat_mv":3610}"#,
        r#"{"crew_id":"W-07","ts":"2026-11-22T08:15:00Z","lat":30.2741,"lon":120.1551,"state":"available"}"#,
        r#"{"incident_id":"i","ts":"2026-11-22T08:15:00Z","action":"accept"}"#,
    ];
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = Decoded::default();
    for (topic, payload) in TOPICS.iter().zip(valid) {
        let bytes = payload.as_bytes();
        for cut in 0..bytes.len() {
            decode_into(&profiles, topic, &bytes[..cut], ARRIVAL, &mut out);
        }
        for _ in 0..300 {
            let mut m = bytes.to_vec();
            let i = (xorshift(&mut rng) as usize) % m.len();
            m[i] = xorshift(&mut rng) as u8;
            decode_into(&profiles, topic, &m, ARRIVAL, &mut out);
        }
        for len in [1usize, 7, 64, 300] {
            let noise: Vec<u8> = (0..len).map(|_| xorshift(&mut rng) as u8).collect();
            decode_into(&profiles, topic, &noise, ARRIVAL, &mut out);
        }
        let deep = "[".repeat(10_000);
        decode_into(&profiles, topic, deep.as_bytes(), ARRIVAL, &mut out);
        // Every output is accounted for: nothing non-finite slipped through.
        assert!(out.readings.iter().all(|r| r.value.is_finite()));
        assert!(out
            .dead
            .iter()
            .all(|d| !d.reason.is_empty() && !d.detail.is_empty()));
        out.clear();
    }
}
