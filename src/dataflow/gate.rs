//! The input gate: event-time watermark, and the late / future / duplicate verdict for every
//! reading before it enters the dataflow.
//!
//! The watermark is driven by the data, not the wall clock: `max accepted event time − allowed
//! lateness`. That makes the verdicts depend only on the order readings arrive in, never on how
//! fast they arrive, so a recording replayed at any speed, or published live, gives the same
//! result. A device whose clock runs years ahead must not drag event time forward for everyone:
//! a reading more than `max_future_secs` ahead of its own arrival time is rejected before it can
//! move the watermark.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{EventTime, Reading};

/// Event-time settings of the dataflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataflowConfig {
    /// Timely worker threads (results do not depend on it).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How far behind the newest event time a reading may arrive and still be used (seconds).
    /// Covers device clock skew plus batch upload delay; larger = more complete, later alarms.
    #[serde(default = "default_lateness")]
    pub allowed_lateness_secs: f64,
    /// A reading stamped more than this far after its own arrival time is rejected (seconds).
    #[serde(default = "default_future")]
    pub max_future_secs: f64,
}

fn default_workers() -> usize {
    2
}
fn default_lateness() -> f64 {
    300.0
}
fn default_future() -> f64 {
    600.0
}

impl Default for DataflowConfig {
    fn default() -> Self {
        DataflowConfig {
            workers: default_workers(),
            allowed_lateness_secs: default_lateness(),
            max_future_secs: default_future(),
        }
    }
}

impl DataflowConfig {
    /// `(field, message)` for every invalid value.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.workers == 0 || self.workers > 64 {
            out.push((
                "workers".into(),
                format!("must be 1..=64, got {}", self.workers),
            ));
        }
        if !(self.allowed_lateness_secs >= 0.0 && self.allowed_lateness_secs.is_finite()) {
            out.push((
                "allowed_lateness_secs".into(),
                format!("must be >= 0, got {}", self.allowed_lateness_secs),
            ));
        }
        if !(self.max_future_secs >= 0.0 && self.max_future_secs.is_finite()) {
            out.push((
                "max_future_secs".into(),
                format!("must be >= 0, got {}", self.max_future_secs),
            ));
        }
        out
    }
}

/// What the gate decided about one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Goes into the dataflow.
    Accept,
    /// Older than the watermark: its window has been judged already.
    Late,
    /// Stamped too far after its arrival (device clock ahead).
    Future,
    /// Same device, metric and event time as a reading already accepted (QoS 1 redelivery,
    /// repeated upload `seq`).
    Duplicate,
}

impl Verdict {
    /// Reason class for dead letters and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::Accept => "accepted",
            Verdict::Late => "late",
            Verdict::Future => "future",
            Verdict::Duplicate => "duplicate",
        }
    }
}

/// Watermark tracker and dedup memory.
#[derive(Debug, Clone)]
pub struct InputGate {
    lateness_ms: i64,
    future_ms: i64,
    max_ts: Option<i64>,
    /// Accepted (ts, device, metric) at or after the watermark; older keys cannot recur
    /// without being late, so they are pruned.
    seen: BTreeSet<(i64, String, String)>,
}

impl InputGate {
    /// A gate with the config's lateness and future bounds.
    pub fn new(cfg: &DataflowConfig) -> InputGate {
        InputGate {
            lateness_ms: (cfg.allowed_lateness_secs * 1000.0) as i64,
            future_ms: (cfg.max_future_secs * 1000.0) as i64,
            max_ts: None,
            seen: BTreeSet::new(),
        }
    }

    /// Current watermark: no reading before it will be accepted any more.
    pub fn watermark(&self) -> Option<EventTime> {
        self.max_ts
            .map(|m| EventTime(m.saturating_sub(self.lateness_ms)))
    }

    /// Newest accepted event time.
    pub fn max_event_time(&self) -> Option<EventTime> {
        self.max_ts.map(EventTime)
    }

    /// Judges one reading and, when accepted, advances the watermark.
    pub fn classify(&mut self, r: &Reading) -> Verdict {
        let ts = r.ts.0;
        if ts > r.arrival.0.saturating_add(self.future_ms) {
            return Verdict::Future;
        }
        if let Some(w) = self.watermark() {
            if ts < w.0 {
                return Verdict::Late;
            }
        }
        let key = (ts, r.device_id.clone(), r.metric.clone());
        if !self.seen.insert(key) {
            return Verdict::Duplicate;
        }
        if self.max_ts.is_none_or(|m| ts > m) {
            self.max_ts = Some(ts);
            if let Some(w) = self.watermark() {
                // Keys older than the watermark can only come back as late readings.
                self.seen = self.seen.split_off(&(w.0, String::new(), String::new()));
            }
        }
        Verdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(device: &str, ts_s: i64, arrival_s: i64) -> Reading {
        Reading {
            device_id: device.into(),
            profile: "p".into(),
            metric: "m".into(),
            ts: EventTime(ts_s * 1000),
            value: 1.0,
            seq: None,
            arrival: EventTime(arrival_s * 1000),
        }
    }

    fn gate(lateness: f64) -> InputGate {
        InputGate::new(&DataflowConfig {
            workers: 1,
            allowed_lateness_secs: lateness,
            max_future_secs: 600.0,
        })
    }

    #[test]
    fn late_readings_beyond_lateness_are_rejected_within_are_kept() {
        let mut g = gate(60.0);
        assert_eq!(g.classify(&reading("a", 1000, 1000)), Verdict::Accept);
        assert_eq!(
            g.classify(&reading("b", 950, 1001)),
            Verdict::Accept,
            "50 s late is fine"
        );
        assert_eq!(
            g.classify(&reading("b", 939, 1001)),
            Verdict::Late,
            "61 s late is not"
        );
        assert_eq!(g.watermark(), Some(EventTime(940_000)));
    }

    #[test]
    fn duplicates_are_detected_and_do_not_move_anything() {
        let mut g = gate(60.0);
        assert_eq!(g.classify(&reading("a", 1000, 1000)), Verdict::Accept);
        assert_eq!(g.classify(&reading("a", 1000, 1002)), Verdict::Duplicate);
        assert_eq!(
            g.classify(&reading("b", 1000, 1002)),
            Verdict::Accept,
            "other device"
        );
    }

    #[test]
    fn a_clock_years_ahead_cannot_drag_the_watermark() {
        let mut g = gate(60.0);
        assert_eq!(g.classify(&reading("a", 1000, 1000)), Verdict::Accept);
        let rogue = reading("rogue", 1000 + 3 * 365 * 86400, 1001);
        assert_eq!(g.classify(&rogue), Verdict::Future);
        assert_eq!(g.watermark(), Some(EventTime(940_000)));
        assert_eq!(g.classify(&reading("b", 1001, 1002)), Verdict::Accept);
    }
}
