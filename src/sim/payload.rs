//! Topics and payload bytes per device family, exactly as `devices.md` shows them (field order
//! included), and the malformed payloads a buggy firmware sends.
//!
//! Payloads are serialized from structs (not maps) so key order is the contract's; floats are
//! rounded to the devices' resolution beforehand, so `41.0` prints as `41.0`.

use chrono::DateTime;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::city::Family;
use super::signals::{AirSample, LaneStat};
use crate::model::EventTime;

/// µg/m³ per ppb at 25 °C: vendor B reports NO2 and O3 by mass, vendor A by volume.
const NO2_UG_PER_PPB: f64 = 1.88;
const O3_UG_PER_PPB: f64 = 1.96;

pub(crate) fn stats_topic(id: &str) -> String {
    format!("city/traffic/cameras/{id}/stats")
}

pub(crate) fn events_topic(id: &str) -> String {
    format!("city/traffic/cameras/{id}/events")
}

/// The topic a device publishes its regular data on.
pub(crate) fn data_topic(family: Family, id: &str) -> String {
    match family {
        Family::Camera => stats_topic(id),
        Family::StationA => format!("city/env/{id}/senml"),
        Family::StationB => format!("city/env/vendor-b/{id}"),
        Family::Logger => format!("city/water/pressure/{id}/up"),
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings, integers and finite floats cannot fail to serialize into memory;
    // were it ever to happen, an empty (invalid) payload shows up in the tests, not a panic live.
    serde_json::to_vec(value).unwrap_or_default()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[derive(Serialize)]
struct Stats<'a> {
    camera_id: &'a str,
    ts: String,
    interval_s: u32,
    lanes: Vec<Lane>,
}

#[derive(Serialize)]
struct Lane {
    lane: u8,
    count: u32,
    avg_speed_kmh: f64,
    occupancy_pct: f64,
}

/// Camera stats; `device_ms` is the box's clock.
pub(crate) fn camera_stats(id: &str, device_ms: i64, lanes: &[LaneStat]) -> Vec<u8> {
    to_json(&Stats {
        camera_id: id,
        ts: EventTime(device_ms).to_rfc3339(),
        interval_s: 10,
        lanes: lanes
            .iter()
            .map(|l| Lane {
                lane: l.lane,
                count: l.count,
                avg_speed_kmh: l.avg_speed_kmh,
                occupancy_pct: l.occupancy_pct,
            })
            .collect(),
    })
}

#[derive(Serialize)]
struct CameraEvent<'a> {
    camera_id: &'a str,
    ts: String,
    #[serde(rename = "type")]
    kind: &'a str,
    lane: u8,
    confidence: f64,
}

/// A camera event; confidence is sent with two decimals.
pub(crate) fn camera_event(
    id: &str,
    device_ms: i64,
    kind: &str,
    lane: u8,
    confidence: f64,
) -> Vec<u8> {
    let confidence = (confidence * 100.0).round() / 100.0;
    to_json(&CameraEvent {
        camera_id: id,
        ts: EventTime(device_ms).to_rfc3339(),
        kind,
        lane,
        confidence,
    })
}

#[derive(Serialize)]
struct SenmlRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bt: Option<f64>,
    n: &'a str,
    u: &'a str,
    v: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
}

/// A SenML pack of one or more minutes: `bt` is the first minute (device clock, whole seconds);
/// records of later minutes carry `t` relative to it.
pub(crate) fn senml_pack(id: &str, minutes: &[(i64, AirSample)]) -> Vec<u8> {
    let Some((first_ms, _)) = minutes.first() else {
        return b"[]".to_vec();
    };
    let mut records = Vec::with_capacity(minutes.len() * 8);
    for (device_ms, s) in minutes {
        let rel = (device_ms - first_ms) / 1000;
        let fields = [
            ("pm2_5", "ug/m3", s.pm2_5),
            ("pm10", "ug/m3", s.pm10),
            ("no2", "ppb", s.no2_ppb),
            ("o3", "ppb", s.o3_ppb),
            ("noise_laeq", "dB", s.noise_db),
            ("temp", "Cel", s.temp_c),
            ("humidity", "%RH", s.humidity_pct),
            ("rain", "mm/h", s.rain_mm_h),
        ];
        for (n, u, v) in fields {
            let base = records.is_empty();
            records.push(SenmlRecord {
                bn: base.then(|| format!("urn:dev:env:{id}:")),
                bt: base.then(|| (first_ms / 1000) as f64),
                n,
                u,
                v,
                t: (rel != 0).then_some(rel),
            });
        }
    }
    to_json(&records)
}

#[derive(Serialize)]
struct VendorB<'a> {
    station: &'a str,
    time: String,
    #[serde(rename = "PM2.5")]
    pm2_5: i64,
    #[serde(rename = "PM10")]
    pm10: i64,
    #[serde(rename = "NO2")]
    no2: f64,
    #[serde(rename = "O3")]
    o3: f64,
    unit: &'a str,
}

/// `2026-11-22 16:15:00+08:00`: vendor B's local-time format.
fn local_time(device_ms: i64) -> String {
    match DateTime::from_timestamp_millis(device_ms.saturating_add(8 * 3_600_000)) {
        Some(d) => d.format("%Y-%m-%d %H:%M:%S+08:00").to_string(),
        None => String::from("1970-01-01 08:00:00+08:00"),
    }
}

/// Vendor B's flat JSON: PM as integers, NO2/O3 converted to µg/m³.
pub(crate) fn vendor_b(id: &str, device_ms: i64, s: &AirSample) -> Vec<u8> {
    to_json(&VendorB {
        station: id,
        time: local_time(device_ms),
        pm2_5: s.pm2_5.round() as i64,
        pm10: s.pm10.round() as i64,
        no2: round1(s.no2_ppb * NO2_UG_PER_PPB),
        o3: round1(s.o3_ppb * O3_UG_PER_PPB),
        unit: "ug/m3",
    })
}

#[derive(Serialize)]
struct LoggerUp<'a> {
    dev: &'a str,
    seq: u64,
    t0: i64,
    dt: u32,
    kpa_x10: Vec<i64>,
    bat_mv: i64,
}

/// A logger upload: `t0_s` is the first sample on the logger's clock.
pub(crate) fn logger_up(id: &str, seq: u64, t0_s: i64, kpa_x10: Vec<i64>, bat_mv: i64) -> Vec<u8> {
    to_json(&LoggerUp {
        dev: id,
        seq,
        t0: t0_s,
        dt: 5,
        kpa_x10,
        bat_mv,
    })
}

/// The same shape with one field of the wrong type, where the decoder needs it.
fn wrong_types(family: Family, id: &str, device_ms: i64, seq: u64) -> Vec<u8> {
    let ts = EventTime(device_ms).to_rfc3339();
    let secs = device_ms / 1000;
    let text = match family {
        Family::Camera => {
            format!(r#"{{"camera_id":"{id}","ts":"{ts}","interval_s":10,"lanes":"abc"}}"#)
        }
        // `bt` as a date string where SenML wants epoch seconds, and `v` not a number.
        Family::StationA => format!(
            r#"[{{"bn":"urn:dev:env:{id}:","bt":"{ts}","n":"pm2_5","u":"ug/m3","v":"abc"}}]"#
        ),
        Family::StationB => format!(
            r#"{{"station":"{id}","time":"{}","PM2.5":"abc","PM10":"abc","NO2":"abc","O3":"abc","unit":"ug/m3"}}"#,
            local_time(device_ms)
        ),
        Family::Logger => format!(
            r#"{{"dev":"{id}","seq":{seq},"t0":{secs},"dt":5,"kpa_x10":"abc","bat_mv":3590}}"#
        ),
    };
    text.into_bytes()
}

/// A malformed payload for a device: truncated JSON (`valid` cut short), wrong field types, or
/// binary garbage that is not UTF-8 (it starts with 0xFF, which UTF-8 never contains).
pub(crate) fn malformed(
    family: Family,
    id: &str,
    device_ms: i64,
    valid: Vec<u8>,
    rng: &mut ChaCha8Rng,
) -> Vec<u8> {
    let roll: f64 = rng.random();
    if roll < 0.4 && valid.len() > 4 {
        // Any strict prefix of a JSON object or array is unterminated, hence invalid.
        let cut = (valid.len() as f64 * rng.random_range(0.3..0.85)) as usize;
        valid[..cut.clamp(1, valid.len() - 1)].to_vec()
    } else if roll < 0.8 {
        wrong_types(family, id, device_ms, rng.random_range(1..10_000))
    } else {
        let len = rng.random_range(16..64);
        let mut bytes = vec![0xFF];
        bytes.extend((1..len).map(|_| rng.random::<u8>()));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_match_the_contract_examples_byte_for_byte() {
        let lanes = [
            LaneStat {
                lane: 1,
                count: 12,
                avg_speed_kmh: 38.5,
                occupancy_pct: 22.1,
            },
            LaneStat {
                lane: 2,
                count: 9,
                avg_speed_kmh: 41.0,
                occupancy_pct: 18.4,
            },
        ];
        let ms = EventTime::parse_rfc3339("2026-11-22T08:15:30.250Z").map(|t| t.millis());
        let ms = ms.unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&camera_stats("TC-0042", ms, &lanes)),
            r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:15:30.250Z","interval_s":10,"lanes":[{"lane":1,"count":12,"avg_speed_kmh":38.5,"occupancy_pct":22.1},{"lane":2,"count":9,"avg_speed_kmh":41.0,"occupancy_pct":18.4}]}"#
        );
        let logger = logger_up("PG-0311", 1842, 1795335330, vec![4123, 4120], 3610);
        assert_eq!(
            String::from_utf8_lossy(&logger),
            r#"{"dev":"PG-0311","seq":1842,"t0":1795335330,"dt":5,"kpa_x10":[4123,4120],"bat_mv":3610}"#
        );
        let s = AirSample {
            pm2_5: 35.2,
            pm10: 51.0,
            no2_ppb: 21.0,
            o3_ppb: 30.4,
            noise_db: 62.1,
            temp_c: 14.2,
            humidity_pct: 55.0,
            rain_mm_h: 0.0,
        };
        let senml = String::from_utf8_lossy(&senml_pack("AQ-0107", &[(1795335330000, s.clone())]))
            .into_owned();
        assert!(senml.starts_with(
            r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330.0,"n":"pm2_5","u":"ug/m3","v":35.2},{"n":"pm10","u":"ug/m3","v":51.0}"#
        ));
        assert!(
            senml.ends_with(r#"{"n":"rain","u":"mm/h","v":0.0}]"#),
            "{senml}"
        );
        let b = String::from_utf8_lossy(&vendor_b("AQ-2201", 1795335300000, &s)).into_owned();
        assert!(b.starts_with(r#"{"station":"AQ-2201","time":"2026-11-22 16:15:00+08:00","PM2.5":35,"PM10":51,"NO2":39.5"#), "{b}");
    }
}
