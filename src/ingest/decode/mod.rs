//! Payload decoding: one MQTT message (topic + bytes) → readings, crew messages and dead letters,
//! driven entirely by the compiled device profiles.
//!
//! Decoding never fails and never panics: whatever cannot be used becomes a [`DeadLetter`] with a
//! reason class ([`reason`]) and a detail naming the field. Damage is contained: a bad SenML
//! record or one non-numeric batch sample costs that record or sample, not the message. Values
//! outside a metric's valid range are kept (they are real readings of a faulty device).
//!
//! This is the hot path: the payload is parsed once into a `serde_json::Value`; topic filters,
//! field paths and unit conversions were compiled when the profiles loaded. [`decode_into`] lets
//! a caller reuse the output buffers.

mod batch;
mod crew;
mod json;
mod senml;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_damage;
mod time;

use serde_json::Value;

use crate::config::profile::compiled::{CompiledMessage, Decoder, PayloadId};
use crate::config::profile::path::{json_type, FieldPath, Miss};
use crate::config::profile::ProfileSet;
use crate::model::{CrewAck, CrewStatus, DeadLetter, EventTime, Reading};

/// Dead-letter reason classes produced by decoding.
pub mod reason {
    /// No profile claims the topic.
    pub const NO_PROFILE: &str = "no_profile";
    /// Not UTF-8, not JSON, a missing field, a wrong type, a non-finite number.
    pub const MALFORMED: &str = "malformed";
    /// A timestamp is present but cannot be parsed (or is implausible).
    pub const BAD_TIMESTAMP: &str = "bad_timestamp";
    /// The payload names a different device than the topic.
    pub const DEVICE_MISMATCH: &str = "device_mismatch";
}

/// Everything one message decoded into.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Sensor readings in canonical metrics and units.
    pub readings: Vec<Reading>,
    /// Crew status updates.
    pub crew_status: Vec<CrewStatus>,
    /// Crew answers to dispatches.
    pub crew_acks: Vec<CrewAck>,
    /// What could not be used, with reasons.
    pub dead: Vec<DeadLetter>,
}

impl Decoded {
    /// Empties every list, keeping their capacity.
    pub fn clear(&mut self) {
        self.readings.clear();
        self.crew_status.clear();
        self.crew_acks.clear();
        self.dead.clear();
    }
}

/// Decodes one message. See the module docs for the rules.
pub fn decode(profiles: &ProfileSet, topic: &str, payload: &[u8], arrival: EventTime) -> Decoded {
    let mut out = Decoded::default();
    decode_into(profiles, topic, payload, arrival, &mut out);
    out
}

/// Like [`decode`], appending to `out` (so a caller can reuse its buffers).
pub fn decode_into(
    profiles: &ProfileSet,
    topic: &str,
    payload: &[u8],
    arrival: EventTime,
    out: &mut Decoded,
) {
    let mut cx = Cx {
        topic,
        payload,
        arrival,
        profile: "",
        device_id: "",
        out,
    };
    let Some(m) = profiles.match_topic(topic) else {
        return cx.dead(
            reason::NO_PROFILE,
            "no device profile matches the topic".to_string(),
        );
    };
    let Some(msg) = profiles.message(&m) else {
        return cx.dead(
            reason::NO_PROFILE,
            "profile message index out of range".to_string(),
        );
    };
    let topic_id = m.device_id.as_deref().unwrap_or("");
    cx.profile = m.profile;
    cx.device_id = topic_id;
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => return cx.dead(reason::MALFORMED, format!("payload is not UTF-8: {e}")),
    };
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return cx.dead(reason::MALFORMED, format!("invalid JSON: {e}")),
    };
    decode_message(&mut cx, msg, &root);
}

fn decode_message(cx: &mut Cx<'_>, msg: &CompiledMessage, root: &Value) {
    if let Some(PayloadId::Field(path)) = &msg.payload_id {
        match path.get(root) {
            Ok(Value::String(id)) if id != cx.device_id => {
                let detail = format!(
                    "{}: payload says {id:?}, topic says {:?}",
                    path.as_str(),
                    cx.device_id
                );
                return cx.dead(reason::DEVICE_MISMATCH, detail);
            }
            Ok(Value::String(_) | Value::Null) | Err(Miss::Missing) => {}
            Ok(other) => {
                let detail = format!(
                    "{}: expected a string, got {}",
                    path.as_str(),
                    json_type(other)
                );
                return cx.dead(reason::MALFORMED, detail);
            }
            Err(miss) => return cx.dead(reason::MALFORMED, format!("{}: {miss}", path.as_str())),
        }
    }
    if let Decoder::Senml(metrics) = &msg.decoder {
        let strip = match &msg.payload_id {
            Some(PayloadId::SenmlBn { prefix, suffix }) => Some((prefix.as_str(), suffix.as_str())),
            _ => None,
        };
        return senml::decode(cx, metrics, strip, root);
    }
    let Some(ts_spec) = &msg.timestamp else {
        // Validation guarantees a timestamp for every non-SenML decoder.
        return cx.dead(
            reason::MALFORMED,
            "profile has no timestamp for this message".to_string(),
        );
    };
    let ts = match ts_spec.path.get(root) {
        Ok(Value::Null) | Err(Miss::Missing) => {
            return cx.dead(
                reason::MALFORMED,
                format!("{}: missing timestamp", ts_spec.path.as_str()),
            );
        }
        Err(miss) => {
            return cx.dead(
                reason::MALFORMED,
                format!("{}: {miss}", ts_spec.path.as_str()),
            )
        }
        Ok(v) => match time::parse(v, ts_spec.format, ts_spec.utc_offset_secs) {
            Ok(ts) => ts,
            Err(e) => {
                return cx.dead(
                    reason::BAD_TIMESTAMP,
                    format!("{}: {e}", ts_spec.path.as_str()),
                )
            }
        },
    };
    match &msg.decoder {
        Decoder::Json(values) => json::decode_values(cx, values, root, ts),
        Decoder::Event(ev) => json::decode_event(cx, ev, root, ts),
        Decoder::Batch(b) => batch::decode(cx, b, root, ts),
        Decoder::CrewStatus { lat, lon, state } => crew::status(cx, root, ts, [lat, lon, state]),
        Decoder::CrewAck { incident, action } => crew::ack(cx, root, ts, incident, action),
        Decoder::Senml(_) => {}
    }
}

/// Decoding state of one message: where output goes and what every output carries.
struct Cx<'a> {
    topic: &'a str,
    payload: &'a [u8],
    arrival: EventTime,
    profile: &'a str,
    /// Resolved sender id (from the topic; checked against the payload).
    device_id: &'a str,
    out: &'a mut Decoded,
}

impl Cx<'_> {
    /// Records a dead letter (the payload is copied only here, on the error path).
    fn dead(&mut self, reason: &str, detail: String) {
        self.out.dead.push(DeadLetter {
            arrival: self.arrival,
            topic: self.topic.to_string(),
            reason: reason.to_string(),
            detail,
            payload: String::from_utf8_lossy(self.payload).into_owned(),
        });
    }

    /// Records a reading; a value that is not finite after conversion is a dead letter instead.
    fn reading(&mut self, metric: &str, ts: EventTime, value: f64, seq: Option<u64>, field: &str) {
        if !value.is_finite() {
            return self.dead(
                reason::MALFORMED,
                format!("{field}: {value} after unit conversion"),
            );
        }
        self.out.readings.push(Reading {
            device_id: self.device_id.to_string(),
            profile: self.profile.to_string(),
            metric: metric.to_string(),
            ts,
            value,
            seq,
            arrival: self.arrival,
        });
    }
}

/// A number at `path`: `Ok(None)` if missing or null, an error detail for anything else.
fn number_at(root: &Value, path: &FieldPath) -> Result<Option<f64>, String> {
    match path.get(root) {
        Ok(Value::Null) | Err(Miss::Missing) => Ok(None),
        Ok(v) => number(v)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.as_str())),
        Err(miss) => Err(format!("{}: {miss}", path.as_str())),
    }
}

/// `v` as a finite number.
fn number(v: &Value) -> Result<f64, String> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        Some(x) => Err(format!("{x} is not finite")),
        None => Err(format!("expected a number, got {}", json_type(v))),
    }
}
