//! The `batch` decoder (pressure loggers): sample arrays expanded to `t0 + i·dt`, scalar extras at
//! `t0`, the upload's `seq` on every reading. A bad sample costs only itself.

use serde_json::Value;

use super::json::emit_value;
use super::{number, reason, Cx};
use crate::config::profile::compiled::BatchDecoder;
use crate::config::profile::path::{json_type, Miss, PathSpec};
use crate::model::EventTime;

/// Longest sample spacing accepted; more is not a logger's `dt` but garbage.
const MAX_DT_SECS: f64 = 86_400.0;

pub(super) fn decode(cx: &mut Cx<'_>, b: &BatchDecoder, root: &Value, t0: EventTime) {
    let dt = match super::number_at(root, &b.dt) {
        Ok(Some(dt)) if dt > 0.0 && dt <= MAX_DT_SECS => dt,
        Ok(Some(dt)) => {
            let detail = format!(
                "{}: {dt} is not in (0, {MAX_DT_SECS}] seconds",
                b.dt.as_str()
            );
            return cx.dead(reason::MALFORMED, detail);
        }
        Ok(None) => return cx.dead(reason::MALFORMED, format!("{}: missing", b.dt.as_str())),
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    // A bad seq is reported, but the samples are still good readings (without a seq).
    let seq = b.seq.as_ref().and_then(|path| match path.get(root) {
        Ok(v) => match v.as_u64() {
            Some(s) => Some(s),
            None => {
                let detail = format!(
                    "{}: expected a non-negative integer, got {v}",
                    path.as_str()
                );
                cx.dead(reason::MALFORMED, detail);
                None
            }
        },
        Err(miss) => {
            cx.dead(reason::MALFORMED, format!("{}: {miss}", path.as_str()));
            None
        }
    });
    for spec in &b.samples {
        let PathSpec::One(path) = &spec.path else {
            continue;
        };
        let samples = match path.get(root) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) | Err(Miss::Missing) if spec.optional => continue,
            Ok(Value::Null) | Err(Miss::Missing) => {
                cx.dead(reason::MALFORMED, format!("{}: missing", path.as_str()));
                continue;
            }
            Ok(other) => {
                let detail = format!(
                    "{}: expected an array, got {}",
                    path.as_str(),
                    json_type(other)
                );
                cx.dead(reason::MALFORMED, detail);
                continue;
            }
            Err(miss) => {
                cx.dead(reason::MALFORMED, format!("{}: {miss}", path.as_str()));
                continue;
            }
        };
        if samples.is_empty() {
            cx.dead(reason::MALFORMED, format!("{}: empty array", path.as_str()));
            continue;
        }
        for (i, sample) in samples.iter().enumerate() {
            let ts = sample_time(t0, i, dt);
            match number(sample) {
                Ok(raw) => cx.reading(
                    &spec.metric,
                    ts,
                    spec.convert.apply(raw),
                    seq,
                    path.as_str(),
                ),
                Err(e) => cx.dead(reason::MALFORMED, format!("{}[{i}]: {e}", path.as_str())),
            }
        }
    }
    for spec in &b.extras {
        emit_value(cx, spec, root, t0, seq);
    }
}

/// `t0 + i·dt`, rounded to the millisecond (dt = 0.1 s must not drift by float error).
fn sample_time(t0: EventTime, i: usize, dt_secs: f64) -> EventTime {
    let offset_ms = (i as f64 * dt_secs * 1000.0).round();
    // offset_ms ≤ len × 86.4e6: far inside i64 for any array that fits in memory.
    EventTime(t0.0.saturating_add(offset_ms as i64))
}
