//! The `senml` decoder: RFC 8428 packs. Base fields (`bn`, `bt`, `bu`, `bv`) apply to their own
//! record and every later one until replaced; a record's time is `bt + t`, and a resolved time
//! below 2^28 s is relative to now (RFC 8428 §4.5.3), taken here as the arrival time.
//!
//! Records are selected by name `n` (the part after `bn`); records the profile does not map are
//! ignored. A broken record is one dead letter; the rest of the pack still decodes.

use serde_json::{Map, Value};

use super::{reason, Cx};
use crate::config::profile::compiled::SenmlMetric;
use crate::config::profile::path::json_type;
use crate::ingest::units;
use crate::model::EventTime;

/// RFC 8428 §4.5.3: resolved times below 2^28 seconds are relative to the current time.
const RELATIVE_TIME_LIMIT_S: f64 = 268_435_456.0;

/// Base values in force while walking a pack.
#[derive(Default)]
struct Base<'v> {
    name: Option<&'v str>,
    time_s: f64,
    unit: Option<&'v str>,
    value: f64,
}

/// `strip`: how to cut the device id out of `bn` (prefix, suffix), when the profile says so.
pub(super) fn decode(
    cx: &mut Cx<'_>,
    metrics: &[SenmlMetric],
    strip: Option<(&str, &str)>,
    root: &Value,
) {
    let records = match root {
        Value::Array(r) if !r.is_empty() => r,
        Value::Array(_) => return cx.dead(reason::MALFORMED, "empty SenML pack".to_string()),
        other => {
            let detail = format!("expected a SenML pack (array), got {}", json_type(other));
            return cx.dead(reason::MALFORMED, detail);
        }
    };
    let mut base = Base::default();
    // The last `bn` already reported as belonging to another device, so one wrong pack is one
    // dead letter rather than one per record.
    let mut mismatched_bn: Option<&str> = None;
    for (i, rec) in records.iter().enumerate() {
        let Value::Object(rec) = rec else {
            cx.dead(
                reason::MALFORMED,
                format!("record {i}: expected an object, got {}", json_type(rec)),
            );
            continue;
        };
        if let Err(e) = update_base(&mut base, rec) {
            cx.dead(reason::MALFORMED, format!("record {i}: {e}"));
            continue;
        }
        if let (Some((prefix, suffix)), Some(bn)) = (strip, base.name) {
            if mismatched_bn == Some(bn) {
                continue;
            }
            let id = bn
                .strip_prefix(prefix)
                .map(|s| s.strip_suffix(suffix).unwrap_or(s));
            if id != Some(cx.device_id) {
                mismatched_bn = Some(bn);
                let detail = format!(
                    "record {i}: bn {bn:?} does not name topic device {:?}",
                    cx.device_id
                );
                cx.dead(reason::DEVICE_MISMATCH, detail);
                continue;
            }
        }
        let name = match rec.get("n") {
            Some(Value::String(n)) => n.as_str(),
            None => continue,
            Some(other) => {
                cx.dead(
                    reason::MALFORMED,
                    format!("record {i}: n: expected a string, got {}", json_type(other)),
                );
                continue;
            }
        };
        let Some(spec) = metrics.iter().find(|m| m.name == name) else {
            continue;
        };
        record(cx, &base, rec, i, spec);
    }
}

/// Applies the record's base fields (before its own fields are read, as RFC 8428 says).
fn update_base<'v>(base: &mut Base<'v>, rec: &'v Map<String, Value>) -> Result<(), String> {
    if let Some(v) = rec.get("bn") {
        base.name = Some(
            v.as_str()
                .ok_or_else(|| format!("bn: expected a string, got {}", json_type(v)))?,
        );
    }
    if let Some(v) = rec.get("bt") {
        base.time_s = finite(v).map_err(|e| format!("bt: {e}"))?;
    }
    if let Some(v) = rec.get("bu") {
        base.unit = Some(
            v.as_str()
                .ok_or_else(|| format!("bu: expected a string, got {}", json_type(v)))?,
        );
    }
    if let Some(v) = rec.get("bv") {
        base.value = finite(v).map_err(|e| format!("bv: {e}"))?;
    }
    Ok(())
}

/// One mapped record → a reading or a dead letter.
fn record(
    cx: &mut Cx<'_>,
    base: &Base<'_>,
    rec: &Map<String, Value>,
    i: usize,
    spec: &SenmlMetric,
) {
    let at = |what: &str| format!("record {i} ({}): {what}", spec.name);
    let value = match rec.get("v") {
        Some(v) => match finite(v) {
            Ok(v) => base.value + v,
            Err(e) => return cx.dead(reason::MALFORMED, at(&format!("v: {e}"))),
        },
        None => return cx.dead(reason::MALFORMED, at("no numeric value v")),
    };
    let t = match rec.get("t").map(finite) {
        None => 0.0,
        Some(Ok(t)) => t,
        Some(Err(e)) => return cx.dead(reason::BAD_TIMESTAMP, at(&format!("t: {e}"))),
    };
    let resolved = base.time_s + t;
    let ts = if resolved.abs() < RELATIVE_TIME_LIMIT_S {
        EventTime::from_secs_f64(resolved).map(|rel| EventTime(cx.arrival.0.saturating_add(rel.0)))
    } else {
        EventTime::from_secs_f64(resolved)
    };
    let Some(ts) = ts else {
        return cx.dead(
            reason::BAD_TIMESTAMP,
            at(&format!("bt+t = {resolved} s is not a plausible time")),
        );
    };
    let unit = match rec.get("u") {
        Some(Value::String(u)) => u.as_str(),
        Some(other) => {
            return cx.dead(
                reason::MALFORMED,
                at(&format!("u: expected a string, got {}", json_type(other))),
            )
        }
        None => base.unit.unwrap_or(&spec.unit),
    };
    let convert = if unit == spec.unit {
        spec.convert
    } else {
        match units::conversion(&spec.metric, unit, &spec.canonical_unit) {
            Ok(l) => l.after_scale(spec.scale),
            Err(e) => return cx.dead(reason::MALFORMED, at(&e.to_string())),
        }
    };
    let out = convert.apply(value);
    if !out.is_finite() {
        return cx.dead(
            reason::MALFORMED,
            at(&format!("v: {out} after unit conversion")),
        );
    }
    cx.reading(&spec.metric, ts, out, None, "v");
}

fn finite(v: &Value) -> Result<f64, String> {
    super::number(v)
}
