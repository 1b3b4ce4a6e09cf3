//! The `json` decoder (one value, or an aggregated array of values, per metric) and the
//! `json_event` decoder (metric named after the event type). Shared by batch extras.

use serde_json::Value;

use super::{number, reason, Cx};
use crate::config::profile::compiled::{valid_event_type, EventDecoder, ValueSpec};
use crate::config::profile::path::{json_type, FieldPath, Miss, PathSpec};
use crate::config::profile::Aggregate;
use crate::ingest::units::{self, Linear};
use crate::model::EventTime;

/// One reading per metric spec; a metric that cannot be read is one dead letter.
pub(super) fn decode_values(cx: &mut Cx<'_>, values: &[ValueSpec], root: &Value, ts: EventTime) {
    for spec in values {
        emit_value(cx, spec, root, ts, None);
    }
}

/// Reads, converts and records one metric (or its dead letter, or nothing if optional+missing).
pub(super) fn emit_value(
    cx: &mut Cx<'_>,
    spec: &ValueSpec,
    root: &Value,
    ts: EventTime,
    seq: Option<u64>,
) {
    let raw = match &spec.path {
        PathSpec::One(path) => one(path, root),
        PathSpec::Each { array, item } => each(spec, array, item, root),
    };
    let raw = match raw {
        Ok(Some(v)) => v,
        Ok(None) if spec.optional => return,
        Ok(None) => return cx.dead(reason::MALFORMED, format!("{}: missing", spec.path_text())),
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    let convert = match convert_for(spec, root) {
        Ok(c) => c,
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    cx.reading(&spec.metric, ts, convert.apply(raw), seq, spec.path_text());
}

/// The conversion to use: the compiled one, unless the payload names another unit.
fn convert_for(spec: &ValueSpec, root: &Value) -> Result<Linear, String> {
    let Some(path) = &spec.unit_field else {
        return Ok(spec.convert);
    };
    match path.get(root) {
        Ok(Value::Null) | Err(Miss::Missing) => Ok(spec.convert),
        Ok(Value::String(unit)) => units::conversion(&spec.metric, unit, &spec.canonical_unit)
            .map(|l| l.after_scale(spec.scale))
            .map_err(|e| format!("{} for {}: {e}", path.as_str(), spec.path_text())),
        Ok(other) => Err(format!(
            "{}: expected a unit string, got {}",
            path.as_str(),
            json_type(other)
        )),
        Err(miss) => Err(format!("{}: {miss}", path.as_str())),
    }
}

impl ValueSpec {
    /// The field path as the profile wrote it.
    fn path_text(&self) -> &str {
        match &self.path {
            PathSpec::One(p) => p.as_str(),
            PathSpec::Each { item, .. } => item.as_str(),
        }
    }
}

/// A scalar: `Ok(None)` when missing or null.
fn one(path: &FieldPath, root: &Value) -> Result<Option<f64>, String> {
    super::number_at(root, path)
}

/// Aggregates the items of `array[*].item`.
fn each(
    spec: &ValueSpec,
    array: &FieldPath,
    item: &FieldPath,
    root: &Value,
) -> Result<Option<f64>, String> {
    let items = match array.get(root) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Null) | Err(Miss::Missing) => return Ok(None),
        Ok(other) => {
            return Err(format!(
                "{}: expected an array, got {}",
                array.as_str(),
                json_type(other)
            ))
        }
        Err(miss) => return Err(format!("{}: {miss}", array.as_str())),
    };
    if items.is_empty() {
        return Err(format!("{}: empty array", array.as_str()));
    }
    // Where item i went wrong, e.g. `lanes[1].count` (only built on the error path).
    let at = |path: &FieldPath, i: usize| path.as_str().replacen("[*]", &format!("[{i}]"), 1);
    let (mut sum, mut min, mut max) = (0.0_f64, f64::INFINITY, f64::NEG_INFINITY);
    let (mut weighted, mut weights) = (0.0_f64, 0.0_f64);
    for (i, elem) in items.iter().enumerate() {
        let v = match item.get(elem) {
            Ok(v) => number(v).map_err(|e| format!("{}: {e}", at(item, i)))?,
            Err(miss) => return Err(format!("{}: {miss}", at(item, i))),
        };
        sum += v;
        min = min.min(v);
        max = max.max(v);
        if let Some(wpath) = &spec.weight {
            let w = match wpath.get(elem) {
                Ok(w) => number(w).map_err(|e| format!("{}: {e}", at(wpath, i)))?,
                Err(miss) => return Err(format!("{}: {miss}", at(wpath, i))),
            };
            if w < 0.0 {
                return Err(format!("{}: negative weight {w}", at(wpath, i)));
            }
            weighted += v * w;
            weights += w;
        }
    }
    let n = items.len() as f64;
    let value = match spec.aggregate {
        Some(Aggregate::Sum) => sum,
        Some(Aggregate::Min) => min,
        Some(Aggregate::Max) => max,
        Some(Aggregate::WeightedMean) if weights > 0.0 => weighted / weights,
        // No weight at all (every lane counted 0 vehicles): the plain mean still says something.
        Some(Aggregate::Mean | Aggregate::WeightedMean) | None => sum / n,
    };
    Ok(Some(value))
}

/// One reading named after the event type.
pub(super) fn decode_event(cx: &mut Cx<'_>, ev: &EventDecoder, root: &Value, ts: EventTime) {
    let ty = match ev.type_path.get(root) {
        Ok(Value::String(s)) => s.as_str(),
        Ok(Value::Null) | Err(Miss::Missing) => {
            return cx.dead(
                reason::MALFORMED,
                format!("{}: missing", ev.type_path.as_str()),
            );
        }
        Ok(other) => {
            let detail = format!(
                "{}: expected a string, got {}",
                ev.type_path.as_str(),
                json_type(other)
            );
            return cx.dead(reason::MALFORMED, detail);
        }
        Err(miss) => {
            return cx.dead(
                reason::MALFORMED,
                format!("{}: {miss}", ev.type_path.as_str()),
            )
        }
    };
    let allowed = match &ev.allowed {
        Some(list) => list.iter().any(|t| t == ty),
        None => valid_event_type(ty),
    };
    if !allowed {
        let detail = format!("{}: unknown event type {ty:?}", ev.type_path.as_str());
        return cx.dead(reason::MALFORMED, detail);
    }
    let value = match super::number_at(root, &ev.value_path) {
        Ok(Some(v)) => v,
        Ok(None) => {
            return cx.dead(
                reason::MALFORMED,
                format!("{}: missing", ev.value_path.as_str()),
            )
        }
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    let metric = format!("{}{ty}{}", ev.prefix, ev.suffix);
    cx.reading(
        &metric,
        ts,
        ev.convert.apply(value),
        None,
        ev.value_path.as_str(),
    );
}
