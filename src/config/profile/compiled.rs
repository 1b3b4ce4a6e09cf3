//! The compiled form of a profile, what the decoder runs: topic filters as segment lists, field
//! paths as step lists, unit conversions as one [`Linear`] per metric. Built by [`super::compile`].

use std::collections::BTreeMap;

use super::path::{FieldPath, PathSpec};
use super::spec::{Aggregate, DeviceProfile, TimeFormat};
use super::topic::TopicFilter;
use super::MetricInfo;
use crate::ingest::units::Linear;

/// A validated profile, ready for decoding.
#[derive(Debug, Clone)]
pub(crate) struct CompiledProfile {
    pub(crate) spec: DeviceProfile,
    pub(crate) messages: Vec<CompiledMessage>,
    /// Every canonical metric the profile can produce (events only when their types are listed).
    pub(crate) metrics: BTreeMap<String, MetricInfo>,
    /// Event metric templates as (prefix, suffix, info), for types not listed.
    pub(crate) event_templates: Vec<(String, String, MetricInfo)>,
}

/// One compiled message spec.
#[derive(Debug, Clone)]
pub(crate) struct CompiledMessage {
    pub(crate) filter: TopicFilter,
    pub(crate) payload_id: Option<PayloadId>,
    pub(crate) timestamp: Option<TimeSpec>,
    pub(crate) decoder: Decoder,
}

/// Compiled [`PayloadDeviceId`].
#[derive(Debug, Clone)]
pub(crate) enum PayloadId {
    Field(FieldPath),
    SenmlBn { prefix: String, suffix: String },
}

/// Compiled [`TimestampSpec`].
#[derive(Debug, Clone)]
pub(crate) struct TimeSpec {
    pub(crate) path: FieldPath,
    pub(crate) format: TimeFormat,
    pub(crate) utc_offset_secs: Option<i32>,
}

/// Compiled decoder.
#[derive(Debug, Clone)]
pub(crate) enum Decoder {
    Json(Vec<ValueSpec>),
    Event(EventDecoder),
    Senml(Vec<SenmlMetric>),
    Batch(BatchDecoder),
    CrewStatus {
        lat: FieldPath,
        lon: FieldPath,
        state: FieldPath,
    },
    CrewAck {
        incident: FieldPath,
        action: FieldPath,
    },
}

/// A metric read from a JSON path.
#[derive(Debug, Clone)]
pub(crate) struct ValueSpec {
    pub(crate) metric: String,
    pub(crate) path: PathSpec,
    pub(crate) aggregate: Option<Aggregate>,
    /// Item path of the weight (same array as `path`).
    pub(crate) weight: Option<FieldPath>,
    pub(crate) unit_field: Option<FieldPath>,
    /// scale then unit → canonical unit.
    pub(crate) convert: Linear,
    pub(crate) scale: f64,
    pub(crate) canonical_unit: String,
    pub(crate) optional: bool,
}

/// A SenML record name mapped to a metric.
#[derive(Debug, Clone)]
pub(crate) struct SenmlMetric {
    pub(crate) name: String,
    pub(crate) metric: String,
    pub(crate) unit: String,
    pub(crate) convert: Linear,
    pub(crate) scale: f64,
    pub(crate) canonical_unit: String,
}

/// Compiled [`EventSpec`].
#[derive(Debug, Clone)]
pub(crate) struct EventDecoder {
    pub(crate) type_path: FieldPath,
    pub(crate) value_path: FieldPath,
    pub(crate) prefix: String,
    pub(crate) suffix: String,
    pub(crate) allowed: Option<Vec<String>>,
    pub(crate) convert: Linear,
}

/// Compiled [`BatchSpec`].
#[derive(Debug, Clone)]
pub(crate) struct BatchDecoder {
    pub(crate) dt: FieldPath,
    pub(crate) seq: Option<FieldPath>,
    pub(crate) samples: Vec<ValueSpec>,
    pub(crate) extras: Vec<ValueSpec>,
}

/// Whether `s` is a usable canonical metric name (`pm2_5`, `event.accident`).
pub(crate) fn valid_metric_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Whether `s` is an event type that may go into a metric name.
pub(crate) fn valid_event_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_and_event_names() {
        assert!(valid_metric_name("event.accident") && valid_metric_name("pm2_5"));
        assert!(!valid_metric_name("") && !valid_metric_name("PM2.5") && !valid_metric_name("a b"));
        assert!(valid_event_type("water_on_road") && !valid_event_type("x.y"));
        assert!(!valid_event_type(&"a".repeat(65)));
    }
}
