//! Test-only: does a payload have exactly the contract's shape for its topic? And a minimal
//! decoder of the values the scenario tests look at.
//!
//! Written independently of `payload.rs` (from `devices.md`), so a drift in the encoder shows
//! up here: exact key sets, value types, timestamp formats, units.

use serde_json::{Map, Value};

use super::RawMessage;
use crate::model::EventTime;

/// The device id and kind of message a topic carries.
pub(crate) fn parse_topic(topic: &str) -> Option<(&str, &'static str)> {
    let parts: Vec<&str> = topic.split('/').collect();
    match parts.as_slice() {
        ["city", "traffic", "cameras", id, "stats"] => Some((id, "stats")),
        ["city", "traffic", "cameras", id, "events"] => Some((id, "events")),
        ["city", "env", "vendor-b", id] => Some((id, "vendor_b")),
        ["city", "env", id, "senml"] => Some((id, "senml")),
        ["city", "water", "pressure", id, "up"] => Some((id, "logger")),
        _ => None,
    }
}

fn keys(o: &Map<String, Value>, want: &[&str]) -> Result<(), String> {
    let mut got: Vec<&str> = o.keys().map(String::as_str).collect();
    let mut want = want.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    if got == want {
        Ok(())
    } else {
        Err(format!("keys {got:?}, want {want:?}"))
    }
}

fn obj(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("not an object: {v}"))
}

fn num(o: &Map<String, Value>, k: &str) -> Result<f64, String> {
    o.get(k)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("{k} not a number"))
}

fn int(o: &Map<String, Value>, k: &str) -> Result<i64, String> {
    o.get(k)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{k} not an integer"))
}

fn string<'a>(o: &'a Map<String, Value>, k: &str) -> Result<&'a str, String> {
    o.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{k} not a string"))
}

fn expect(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// RFC 3339 in UTC with exactly millisecond precision: `2026-11-22T08:15:30.250Z`.
fn utc_millis(ts: &str) -> Result<(), String> {
    let shape = ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes().get(19) == Some(&b'.');
    expect(
        shape && EventTime::parse_rfc3339(ts).is_some(),
        &format!("bad ts {ts:?}"),
    )
}

/// Checks `payload` against the contract for `topic`.
pub(crate) fn validate(topic: &str, payload: &[u8]) -> Result<(), String> {
    let (id, kind) = parse_topic(topic).ok_or_else(|| format!("unknown topic {topic}"))?;
    let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    match kind {
        "stats" => {
            let o = obj(&v)?;
            keys(o, &["camera_id", "ts", "interval_s", "lanes"])?;
            expect(string(o, "camera_id")? == id, "camera_id")?;
            utc_millis(string(o, "ts")?)?;
            expect(int(o, "interval_s")? == 10, "interval_s")?;
            let lanes = o
                .get("lanes")
                .and_then(Value::as_array)
                .ok_or("lanes not an array")?;
            expect((2..=3).contains(&lanes.len()), "2-3 lanes")?;
            for (i, l) in lanes.iter().enumerate() {
                let l = obj(l)?;
                keys(l, &["lane", "count", "avg_speed_kmh", "occupancy_pct"])?;
                expect(int(l, "lane")? == i as i64 + 1, "lane numbering")?;
                expect(int(l, "count")? >= 0, "count")?;
                expect(
                    num(l, "avg_speed_kmh")? > 0.0 && num(l, "occupancy_pct")? >= 0.0,
                    "lane values",
                )?;
            }
        }
        "events" => {
            let o = obj(&v)?;
            keys(o, &["camera_id", "ts", "type", "lane", "confidence"])?;
            expect(string(o, "camera_id")? == id, "camera_id")?;
            utc_millis(string(o, "ts")?)?;
            let types = [
                "stopped_vehicle",
                "accident",
                "wrong_way",
                "pedestrian_on_road",
                "water_on_road",
                "congestion",
            ];
            expect(types.contains(&string(o, "type")?), "event type")?;
            expect(int(o, "lane")? >= 1, "lane")?;
            expect((0.0..=1.0).contains(&num(o, "confidence")?), "confidence")?;
        }
        "senml" => {
            let recs = v.as_array().ok_or("senml not an array")?;
            expect(
                !recs.is_empty() && recs.len() % 8 == 0,
                "8 records per minute",
            )?;
            let units = [
                ("pm2_5", "ug/m3"),
                ("pm10", "ug/m3"),
                ("no2", "ppb"),
                ("o3", "ppb"),
                ("noise_laeq", "dB"),
                ("temp", "Cel"),
                ("humidity", "%RH"),
                ("rain", "mm/h"),
            ];
            for (i, r) in recs.iter().enumerate() {
                let r = obj(r)?;
                let mut want = vec!["n", "u", "v"];
                if i == 0 {
                    want.extend(["bn", "bt"]);
                    expect(string(r, "bn")? == format!("urn:dev:env:{id}:"), "bn")?;
                    expect(num(r, "bt")? > 1.0e9, "bt")?;
                }
                if r.contains_key("t") {
                    want.push("t");
                    expect(num(r, "t")? > 0.0, "t")?;
                }
                keys(r, &want)?;
                let (n, u) = units[i % 8];
                expect(string(r, "n")? == n && string(r, "u")? == u, "name/unit")?;
                num(r, "v")?;
            }
        }
        "vendor_b" => {
            let o = obj(&v)?;
            keys(
                o,
                &["station", "time", "PM2.5", "PM10", "NO2", "O3", "unit"],
            )?;
            expect(string(o, "station")? == id, "station")?;
            let time = string(o, "time")?;
            let shape = time.len() == 25
                && time.as_bytes().get(10) == Some(&b' ')
                && time.ends_with("+08:00");
            let parsed = EventTime::parse_rfc3339(&time.replacen(' ', "T", 1)).is_some();
            expect(shape && parsed, &format!("bad time {time:?}"))?;
            expect(
                o.get("PM2.5").is_some_and(Value::is_u64)
                    && o.get("PM10").is_some_and(Value::is_u64),
                "PM ints",
            )?;
            num(o, "NO2")?;
            num(o, "O3")?;
            expect(string(o, "unit")? == "ug/m3", "unit")?;
        }
        "logger" => {
            let o = obj(&v)?;
            keys(o, &["dev", "seq", "t0", "dt", "kpa_x10", "bat_mv"])?;
            expect(string(o, "dev")? == id, "dev")?;
            expect(
                int(o, "seq")? > 0 && int(o, "t0")? > 1_000_000_000 && int(o, "dt")? == 5,
                "seq/t0/dt",
            )?;
            let k = o
                .get("kpa_x10")
                .and_then(Value::as_array)
                .ok_or("kpa_x10 not an array")?;
            expect(
                k.len() == 12 && k.iter().all(Value::is_i64),
                "12 integer samples",
            )?;
            expect((3000..=3700).contains(&int(o, "bat_mv")?), "bat_mv")?;
        }
        _ => return Err(format!("unhandled {kind}")),
    }
    Ok(())
}

/// A reading as a test decoder sees it: device clock time, metric, value.
pub(crate) struct R {
    pub(crate) dev: String,
    pub(crate) t: i64,
    pub(crate) metric: String,
    pub(crate) value: f64,
}

pub(crate) fn readings(msgs: &[RawMessage]) -> Vec<R> {
    let mut out = Vec::new();
    for m in msgs
        .iter()
        .filter(|m| validate(&m.topic, &m.payload).is_ok())
    {
        let Some((id, kind)) = parse_topic(&m.topic) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
            continue;
        };
        let mut push = |t: i64, metric: String, value: f64| {
            out.push(R {
                dev: id.to_string(),
                t,
                metric,
                value,
            })
        };
        let ts = |s: &Value| {
            s.as_str()
                .and_then(EventTime::parse_rfc3339)
                .map(EventTime::millis)
                .unwrap_or(0)
        };
        match kind {
            "stats" => {
                let speeds: Vec<f64> = v["lanes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l["avg_speed_kmh"].as_f64())
                    .collect();
                push(
                    ts(&v["ts"]),
                    "speed".into(),
                    speeds.iter().sum::<f64>() / speeds.len().max(1) as f64,
                );
            }
            "events" => push(
                ts(&v["ts"]),
                format!("event.{}", v["type"].as_str().unwrap_or("")),
                v["confidence"].as_f64().unwrap_or(0.0),
            ),
            "senml" => {
                let bt = v[0]["bt"].as_f64().unwrap_or(0.0);
                for r in v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["n"] == "pm2_5")
                {
                    let t = ((bt + r["t"].as_f64().unwrap_or(0.0)) * 1000.0) as i64;
                    push(t, "pm2_5".into(), r["v"].as_f64().unwrap_or(0.0));
                }
            }
            "vendor_b" => {
                let time = v["time"].as_str().unwrap_or("").replacen(' ', "T", 1);
                push(
                    ts(&Value::String(time)),
                    "pm2_5".into(),
                    v["PM2.5"].as_f64().unwrap_or(0.0),
                );
            }
            "logger" => {
                let t0 = v["t0"].as_i64().unwrap_or(0) * 1000;
                for (k, x) in v["kpa_x10"].as_array().into_iter().flatten().enumerate() {
                    push(
                        t0 + 5000 * k as i64,
                        "kpa_x10".into(),
                        x.as_f64().unwrap_or(0.0),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

pub(crate) fn of(rs: &[R], dev: &str, metric: &str, from: i64, to: i64) -> Vec<f64> {
    rs.iter()
        .filter(|r| r.dev == dev && r.metric == metric && from <= r.t && r.t < to)
        .map(|r| r.value)
        .collect()
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}
