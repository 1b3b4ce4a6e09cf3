//! `event`: camera events (metric `event.<type>`, value = the box's confidence) as evidence.
//!
//! - Raised for each event whose confidence is >= `min_confidence` (default 0), with score =
//!   value = the confidence clamped to [0, 1] (a box reporting 1.3 or -0.2 is clamped, never a
//!   panic; NaN/inf events are dropped).
//! - `cooldown_secs` (s, event time; default 0 = every event): after an anomaly, events of this
//!   detector instance (one device, all matching event types) earlier than its ts +
//!   cooldown_secs are dropped, so a box repeating itself yields one anomaly per cooldown.
//! - Events are point evidence: never Cleared (correlation expires them). Readings whose metric
//!   does not start with `event.` are ignored even under a `*` pattern. Several events at one ts
//!   (two boxes in one frame) are all judged: unlike values, events are not de-duplicated by ts.

use serde::{Deserialize, Serialize};

use super::common::{metric_matches, non_negative, num, problem, secs_to_ms, Emit, Problems};
use super::{Detector, DetectorContext};
use crate::model::{Anomaly, EventTime, Reading};

/// Config of the `event` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// Lowest box confidence, in [0, 1], that counts. Default 0 (every event).
    #[serde(default)]
    pub min_confidence: f64,
    /// Quiet time (s, event time) after an anomaly for this device. Default 0.
    #[serde(default)]
    pub cooldown_secs: f64,
}

impl EventConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        if !(0.0..=1.0).contains(&self.min_confidence) {
            problem(
                p,
                "min_confidence",
                format!("must be in [0, 1], got {}", self.min_confidence),
            );
        }
        non_negative(p, "cooldown_secs", self.cooldown_secs);
    }
}

pub(crate) struct Event {
    cfg: EventConfig,
    emit: Emit,
    cooldown_ms: i64,
    last: Option<EventTime>,
}

impl Event {
    pub(crate) fn new(cfg: &EventConfig, ctx: &DetectorContext) -> Self {
        let cooldown_ms = secs_to_ms(cfg.cooldown_secs).max(0);
        Event {
            cfg: cfg.clone(),
            emit: Emit::new(ctx, "event"),
            cooldown_ms,
            last: None,
        }
    }
}

impl Detector for Event {
    fn observe(&mut self, r: &Reading) -> Option<Anomaly> {
        let kind = r.metric.strip_prefix("event.")?;
        if !r.value.is_finite() || !metric_matches(&self.emit.ctx().metric, &r.metric) {
            return None;
        }
        let c = r.value.clamp(0.0, 1.0);
        if c < self.cfg.min_confidence {
            return None;
        }
        if let Some(last) = self.last {
            if self.cooldown_ms > 0 && r.ts.0 < last.0.saturating_add(self.cooldown_ms) {
                return None;
            }
        }
        self.last = Some(self.last.map_or(r.ts, |l| l.max(r.ts)));
        let reason = format!(
            "camera event {kind}, confidence {} (min {})",
            num(c),
            num(self.cfg.min_confidence)
        );
        let mut a = self.emit.raised(r, c, reason);
        a.value = c;
        Some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, ctx, reading};
    use super::super::{build, DetectorConfig};
    use super::*;
    use crate::model::Phase;

    fn det(min_confidence: f64, cooldown_secs: f64, metric: &str) -> Box<dyn Detector> {
        let ctx = DetectorContext {
            metric: metric.into(),
            unit: String::new(),
            ..ctx()
        };
        build(
            &DetectorConfig::Event(EventConfig {
                min_confidence,
                cooldown_secs,
            }),
            &ctx,
        )
    }

    fn ev(secs: f64, kind: &str, conf: f64) -> Reading {
        Reading {
            metric: format!("event.{kind}"),
            ..reading(secs, conf)
        }
    }

    #[test]
    fn confident_events_raise_with_their_confidence() {
        let mut d = det(0.5, 0.0, "event.accident");
        assert!(
            d.observe(&ev(0.0, "accident", 0.3)).is_none(),
            "below min_confidence"
        );
        let a = d.observe(&ev(1.0, "accident", 0.91));
        let a = a.unwrap_or_else(|| panic!("0.91 >= 0.5 must raise"));
        assert_eq!(
            (a.phase, a.score, a.ts, a.detector.as_str()),
            (Phase::Raised, 0.91, at(1.0), "event")
        );
        assert_eq!(
            a.reason,
            "camera event accident, confidence 0.910 (min 0.500)"
        );
        assert!(
            d.observe(&ev(2.0, "congestion", 0.99)).is_none(),
            "another event type"
        );
        assert!(
            d.observe(&reading(3.0, 0.99)).is_none(),
            "not an event metric"
        );
    }

    #[test]
    fn cooldown_limits_to_one_per_window_and_same_ts_events_count_without_it() {
        let mut d = det(0.0, 60.0, "event.*");
        let got: Vec<bool> = [
            (0.0, "accident"),
            (30.0, "wrong_way"),
            (59.9, "accident"),
            (60.0, "accident"),
        ]
        .iter()
        .map(|&(s, k)| d.observe(&ev(s, k, 0.8)).is_some())
        .collect();
        assert_eq!(got, vec![true, false, false, true]);
        let mut d = det(0.0, 0.0, "*");
        assert!(d.observe(&ev(0.0, "accident", 0.8)).is_some());
        assert!(d.observe(&ev(0.0, "stopped_vehicle", 0.8)).is_some());
    }

    #[test]
    fn out_of_range_confidence_is_clamped_and_nan_dropped() {
        let mut d = det(0.0, 0.0, "event.*");
        let hi = d.observe(&ev(0.0, "accident", 1.7));
        assert!(hi.is_some_and(|a| a.score == 1.0 && a.value == 1.0));
        let lo = d.observe(&ev(1.0, "accident", -3.0));
        assert!(lo.is_some_and(|a| a.score == 0.0 && a.value == 0.0));
        assert!(d.observe(&ev(2.0, "accident", f64::NAN)).is_none());
        let mut d = det(0.5, 0.0, "event.*");
        assert!(d.observe(&ev(2.0, "accident", f64::INFINITY)).is_none());
    }

    #[test]
    fn validate_bounds() {
        let mut p = Vec::new();
        EventConfig {
            min_confidence: 1.5,
            cooldown_secs: -1.0,
        }
        .validate(&mut p);
        assert_eq!(p.len(), 2);
    }
}
