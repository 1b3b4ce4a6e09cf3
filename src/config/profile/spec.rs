//! The YAML shape of a device profile: one file per device model in `device-profiles/`.
//!
//! These types are the reference documentation of the format (every field has a doc). They are
//! plain data; [`super::ProfileSet`] validates them and compiles them for the decoder.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One device model: what it sends, on which topics, and how to turn that into readings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Profile name as `devices.csv` names it (`traffic-camera`); unique across all files.
    pub name: String,
    /// What the device is, for operators.
    #[serde(default)]
    pub description: String,
    /// Expected reporting interval in seconds (> 0); silence detection measures against it.
    pub interval_secs: f64,
    /// The messages the device sends, each with its own topic filter and decoder.
    pub messages: Vec<MessageSpec>,
}

/// One kind of message a device sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// MQTT topic filter with exactly one id level, `{device_id}` (or `{crew_id}`), which is where
    /// the sender's id is read from: `city/traffic/cameras/{device_id}/stats`. `+` and a final `#`
    /// are allowed; filters of different messages must not overlap.
    pub topic: String,
    /// Where the payload names the sender too; when it disagrees with the topic the message is a
    /// dead letter (`device_mismatch`). Absent: only the topic is used.
    #[serde(default)]
    pub payload_device_id: Option<PayloadDeviceId>,
    /// Where the event time is. Required for every decoder except `senml` (which uses `bt`/`t`).
    #[serde(default)]
    pub timestamp: Option<TimestampSpec>,
    /// How to decode the payload.
    pub decode: DecoderSpec,
}

/// Where a payload names its sender.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PayloadDeviceId {
    /// A JSON field path holding the id as a string (`camera_id`, `station`, `dev`).
    Field(String),
    /// The SenML base name `bn`, with a fixed prefix and suffix removed
    /// (`urn:dev:env:AQ-0107:` → `AQ-0107`).
    SenmlBn(BnStrip),
}

/// How to cut a device id out of a SenML base name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BnStrip {
    /// Removed from the start of `bn` (`urn:dev:env:`); `bn` must start with it.
    #[serde(default)]
    pub strip_prefix: String,
    /// Removed from the end of `bn` (`:`), if present.
    #[serde(default)]
    pub strip_suffix: String,
}

/// Where and how a message carries its event time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampSpec {
    /// JSON field path of the timestamp (`ts`, `time`, `t0`).
    pub field: String,
    /// How the timestamp is written.
    pub format: TimeFormat,
    /// Fixed UTC offset (`+08:00`) for `datetime` timestamps that carry none. An offset in the
    /// timestamp itself always wins.
    #[serde(default)]
    pub utc_offset: Option<String>,
}

/// Timestamp encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2026-11-22T08:15:30.250Z` or with an offset (`+08:00`).
    Rfc3339,
    /// Seconds since the Unix epoch (number, fractions allowed).
    EpochS,
    /// Milliseconds since the Unix epoch (number).
    EpochMs,
    /// Local date-time `2026-11-22 16:15:00+08:00` (space or `T`); without an offset the
    /// profile's `utc_offset` applies.
    Datetime,
}

/// Decoder kinds. Written as a one-key map: `decode: { json: { metrics: ... } }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DecoderSpec {
    /// A JSON object with one value (or one array of values) per metric.
    Json(JsonSpec),
    /// A JSON event: the metric name comes from a type field (`event.{type}`).
    JsonEvent(EventSpec),
    /// A SenML pack (RFC 8428), records selected by name.
    Senml(SenmlSpec),
    /// A batch upload: sample arrays at `t0 + i·dt`, plus scalar extras at `t0`.
    Batch(BatchSpec),
    /// A crew tablet's status (`crew_id`, `ts`, `lat`, `lon`, `state`).
    CrewStatus(CrewStatusSpec),
    /// A crew's answer to a dispatch (`incident_id`, `ts`, `action`).
    CrewAck(CrewAckSpec),
}

/// `json` decoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSpec {
    /// Canonical metric name → where its value is.
    pub metrics: BTreeMap<String, MetricSpec>,
}

/// `senml` decoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenmlSpec {
    /// Canonical metric name → SenML record name (`field`) and units. Records with other names
    /// are ignored (stations may send more than the city uses).
    pub metrics: BTreeMap<String, MetricSpec>,
}

/// How one canonical metric is read from a payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// JSON field path (`bat_mv`, `lanes[*].count`, `['PM2.5']`), or for `senml` the record name
    /// `n` (without the base name).
    pub field: String,
    /// Unit of the value in the payload (after `scale`); must be in the units table. A SenML
    /// record's own `u` (or a `unit_field`) overrides it.
    pub unit: String,
    /// Canonical unit of the metric; default: `unit`. The conversion `unit` → `canonical_unit`
    /// must be in the units table.
    #[serde(default)]
    pub canonical_unit: Option<String>,
    /// Multiplier for fixed-point fields applied before the unit conversion (`kpa_x10`: 0.1).
    #[serde(default)]
    pub scale: Option<f64>,
    /// How the values of a `[*]` path combine into one reading; required with `[*]` (and only
    /// then). Not used by `senml` and batch samples.
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    /// Weight path for `weighted_mean` (`lanes[*].count`, same array as `field`).
    #[serde(default)]
    pub weight: Option<String>,
    /// JSON field path of a unit named in the payload (vendor B's `unit`); when present it
    /// overrides `unit` and must convert to the canonical unit.
    #[serde(default)]
    pub unit_field: Option<String>,
    /// Valid range `[min, max]` in the canonical unit. Values outside are still readings (of a
    /// faulty device); detectors flag them.
    #[serde(default)]
    pub valid_range: Option<[f64; 2]>,
    /// If true, a missing (or null) field is skipped silently instead of a dead letter.
    #[serde(default)]
    pub optional: bool,
}

/// How the items of a `[*]` path combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Arithmetic mean.
    Mean,
    /// Sum.
    Sum,
    /// Largest.
    Max,
    /// Smallest.
    Min,
    /// Mean weighted by `weight`; the plain mean when all weights are 0.
    WeightedMean,
}

/// `json_event` decoder: one reading per message, metric from the event type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// JSON field path of the event type (`type`).
    pub type_field: String,
    /// Metric name template with one `{type}` (`event.{type}`).
    pub metric_template: String,
    /// JSON field path of the value (`confidence`).
    pub value_field: String,
    /// Accepted types; others are dead letters. Absent: any type made of `[a-z0-9_]`.
    #[serde(default)]
    pub allowed_types: Option<Vec<String>>,
    /// Unit of the value (`ratio` for a confidence).
    pub unit: String,
    /// Canonical unit; default: `unit`.
    #[serde(default)]
    pub canonical_unit: Option<String>,
    /// Valid range `[min, max]` in the canonical unit.
    #[serde(default)]
    pub valid_range: Option<[f64; 2]>,
}

/// `batch` decoder. The message's `timestamp` is the time of the first sample (`t0`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// JSON field path of the seconds between samples (`dt`), a number > 0.
    pub dt_field: String,
    /// JSON field path of the upload sequence number (`seq`), copied into every reading.
    #[serde(default)]
    pub seq_field: Option<String>,
    /// Canonical metric → array of samples (`field: kpa_x10`, `scale: 0.1`); sample `i` is at
    /// `t0 + i·dt`.
    pub samples: BTreeMap<String, MetricSpec>,
    /// Canonical metric → scalar field read once at `t0` (`battery_mv` from `bat_mv`).
    #[serde(default)]
    pub extras: BTreeMap<String, MetricSpec>,
}

/// `crew_status` decoder; field paths default to the contract's names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewStatusSpec {
    /// Latitude field (degrees).
    #[serde(default = "default_lat")]
    pub lat_field: String,
    /// Longitude field (degrees).
    #[serde(default = "default_lon")]
    pub lon_field: String,
    /// State field (`available`, `en_route`, `on_scene`, `off_duty`).
    #[serde(default = "default_state")]
    pub state_field: String,
}

/// `crew_ack` decoder; field paths default to the contract's names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewAckSpec {
    /// Incident id field.
    #[serde(default = "default_incident")]
    pub incident_field: String,
    /// Action field (`accept`, `decline`, `on_scene`, `resolved`).
    #[serde(default = "default_action")]
    pub action_field: String,
}

fn default_lat() -> String {
    "lat".to_string()
}
fn default_lon() -> String {
    "lon".to_string()
}
fn default_state() -> String {
    "state".to_string()
}
fn default_incident() -> String {
    "incident_id".to_string()
}
fn default_action() -> String {
    "action".to_string()
}
