//! A normalised reading (one quantity of one device at one event time) and a dead letter.

use serde::{Deserialize, Serialize};

use super::EventTime;

/// One normalised sample: canonical metric name, canonical unit, event time from the device.
///
/// Camera events are readings too: metric `event.<type>` (e.g. `event.accident`) with the box's
/// confidence in [0, 1] as the value, so detectors and correlation treat them uniformly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Device id as the device reports it (matches `devices.csv`).
    pub device_id: String,
    /// Name of the device profile that decoded it (e.g. `pressure-logger`).
    pub profile: String,
    /// Canonical metric name (e.g. `pressure_kpa`, `pm2_5`, `avg_speed_kmh`, `event.accident`).
    pub metric: String,
    /// Event time from the device clock.
    pub ts: EventTime,
    /// Value in the metric's canonical unit.
    pub value: f64,
    /// Upload sequence number, where the device sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When the message carrying it reached us (recording `t_ms`, or wall clock live).
    pub arrival: EventTime,
}

/// A message (or part of one) that could not be used, kept with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Arrival time of the message.
    pub arrival: EventTime,
    /// MQTT topic it came on.
    pub topic: String,
    /// Short machine-readable reason class (`malformed`, `late`, `future`, `no_profile`, ...).
    pub reason: String,
    /// Human-readable detail naming the offending field or value.
    pub detail: String,
    /// Raw payload as UTF-8 (lossy) so an engineer can see what arrived.
    pub payload: String,
}
