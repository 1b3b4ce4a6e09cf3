//! An anomaly: a detector's judgement about one device+metric at one event time.

use serde::{Deserialize, Serialize};

use super::EventTime;

/// Whether an anomaly starts (or re-asserts) a condition, or reports that it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The condition holds (evidence for an incident).
    Raised,
    /// The condition has ended (e.g. hysteresis released, device reporting again).
    Cleared,
}

/// Output of a detector: evidence for correlation, and device-health state changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Device that produced the readings.
    pub device_id: String,
    /// Metric judged (canonical name).
    pub metric: String,
    /// Signal name declared in the pipeline (e.g. `pressure_drop`, `water_on_road`).
    pub signal: String,
    /// Detector type that fired (e.g. `step_drop`, `threshold`, `silence`).
    pub detector: String,
    /// Event time the condition was established.
    pub ts: EventTime,
    /// The value that established it (the reading, or the silent time in seconds).
    pub value: f64,
    /// Strength of the evidence in [0, 1].
    pub score: f64,
    /// Raised or cleared.
    pub phase: Phase,
    /// Human-readable reason ("pressure 231 kPa, 38% below baseline 372 kPa").
    pub reason: String,
    /// Wall-clock arrival of the reading whose observation produced it (the reading's
    /// `arrival`: wall clock live, the recording's `t_ms` in replay), set by the detector bank;
    /// `None` for anomalies raised by the passing of event time alone (a silence noticed at a
    /// watermark). Only for latency metrics (`telemetry::PipelineLatency`): nothing decides on
    /// it. Skipped when absent, so the JSON shape of older anomalies is unchanged; that makes
    /// the encoding unfit for non-self-describing formats (bincode), which is fine while timely
    /// runs in one process (`Config::process`: exchanged data is moved, never serialized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<EventTime>,
}
