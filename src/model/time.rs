//! Event time: milliseconds since the Unix epoch (UTC), taken from device timestamps.
//!
//! Serialized as RFC 3339 with millisecond precision (`2026-11-22T08:15:30.250Z`), which is the
//! shape the API, NDJSON output and recordings promise.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in event time, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime(pub i64);

impl EventTime {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// From whole seconds since the epoch.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() || secs.abs() > 1.0e13 {
            return None;
        }
        Some(EventTime((secs * 1000.0).round() as i64))
    }

    /// Parses RFC 3339 (`2026-11-22T08:15:30.250Z`, `...+08:00`).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|d| EventTime(d.timestamp_millis()))
    }

    /// RFC 3339 in UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(d) => d.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("invalid-time({})", self.0),
        }
    }

    /// This time plus `secs` seconds (saturating).
    pub fn plus_secs(self, secs: f64) -> Self {
        EventTime(self.0.saturating_add((secs * 1000.0) as i64))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventTime::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_millis_and_normalises_offsets() {
        let t = EventTime::parse_rfc3339("2026-11-22T16:15:00.250+08:00").expect("parses");
        assert_eq!(t.to_rfc3339(), "2026-11-22T08:15:00.250Z");
        let json = serde_json::to_string(&t).expect("serializes");
        let back: EventTime = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, t);
    }

    #[test]
    fn rejects_garbage_and_non_finite() {
        assert!(EventTime::parse_rfc3339("yesterday").is_none());
        assert!(EventTime::from_secs_f64(f64::NAN).is_none());
        assert_eq!(EventTime::from_secs_f64(1.5), Some(EventTime(1500)));
    }
}
