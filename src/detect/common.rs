//! Shared plumbing for the detectors: the input guard every value detector sits behind, anomaly
//! construction, the "held for a duration" streak with its gap rule, directions, number
//! formatting for reasons, and config-validation helpers.
//!
//! Choices made here apply to every value detector (see the table in [`super`]):
//! - **Input guard** ([`Guarded`]): readings whose metric does not match the context's metric are
//!   ignored; NaN/±inf values are ignored before they reach any state; a reading whose ts is not
//!   strictly after the previous accepted reading of the same metric (duplicate timestamp or out of
//!   order) is ignored, because it cannot be placed in time.
//! - **Metric patterns**: `*` matches every metric, `prefix.*` every metric under `prefix.`,
//!   anything else is an exact name. With a pattern, each matching metric gets its own detector
//!   state (cloned from a fresh prototype), so e.g. `pm10` never pollutes the `pm2_5` baseline.
//! - **Gap rule** ([`Streak`], [`max_gap_ms`]): a condition is "held" from the first reading that
//!   met it to the latest one, but a gap between consecutive readings longer than
//!   [`GAP_FACTOR`] × the device's `interval_secs` (the device missed two reports: nobody saw
//!   what happened meanwhile) restarts the streak at the reading after the gap. If the profile
//!   gives no interval, a gap longer than the detector's `min_duration_secs` restarts it, so a gap
//!   alone can never satisfy a duration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Detector, DetectorContext};
use crate::model::{Anomaly, EventTime, Phase, Reading};

/// Consecutive readings further apart than this many reporting intervals break a streak.
pub(crate) const GAP_FACTOR: f64 = 3.0;

/// Which way a change must go to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Rises only.
    Up,
    /// Falls only.
    Down,
    /// Either way.
    Both,
}

impl Direction {
    /// Whether a signed deviation `dev` (value minus reference) goes the watched way.
    pub(crate) fn admits(self, dev: f64) -> bool {
        match self {
            Direction::Up => dev > 0.0,
            Direction::Down => dev < 0.0,
            Direction::Both => dev != 0.0,
        }
    }

    pub(crate) fn both() -> Self {
        Direction::Both
    }

    pub(crate) fn down() -> Self {
        Direction::Down
    }
}

/// "above"/"below" for a signed deviation, for reasons.
pub(crate) fn side_word(dev: f64) -> &'static str {
    if dev < 0.0 {
        "below"
    } else {
        "above"
    }
}

/// Whether `metric` is watched by the context's metric `pattern` (`*`, `prefix.*` or exact).
pub(crate) fn metric_matches(pattern: &str, metric: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => metric
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == metric,
    }
}

/// The longest gap (ms) between consecutive readings that still counts as continuous.
pub(crate) fn max_gap_ms(ctx: &DetectorContext, min_duration_secs: f64) -> i64 {
    if ctx.interval_secs.is_finite() && ctx.interval_secs > 0.0 {
        secs_to_ms(GAP_FACTOR * ctx.interval_secs)
    } else if min_duration_secs > 0.0 {
        secs_to_ms(min_duration_secs)
    } else {
        i64::MAX
    }
}

/// Seconds to milliseconds, saturating (float-to-int casts saturate; NaN gives 0).
pub(crate) fn secs_to_ms(secs: f64) -> i64 {
    (secs * 1000.0).round() as i64
}

/// Milliseconds between two event times, in seconds.
pub(crate) fn secs_between(from: EventTime, to: EventTime) -> f64 {
    to.0.saturating_sub(from.0) as f64 / 1000.0
}

/// A condition held over consecutive readings, broken by a long gap (see the module doc).
#[derive(Debug, Clone, Default)]
pub(crate) struct Streak {
    since: Option<EventTime>,
    last: Option<EventTime>,
}

impl Streak {
    /// The condition holds at `ts`; returns for how long (s) it has held continuously.
    pub(crate) fn hold(&mut self, ts: EventTime, max_gap_ms: i64) -> f64 {
        match (self.since, self.last) {
            (Some(since), Some(last)) if ts.0.saturating_sub(last.0) <= max_gap_ms => {
                self.last = Some(ts);
                secs_between(since, ts)
            }
            _ => {
                self.since = Some(ts);
                self.last = Some(ts);
                0.0
            }
        }
    }

    /// Like [`Streak::hold`] for conditions judged over an interval: a new streak starts at the
    /// interval's start `from` rather than at `ts`.
    pub(crate) fn hold_interval(&mut self, from: EventTime, ts: EventTime) -> f64 {
        let since = *self.since.get_or_insert(from);
        self.last = Some(ts);
        secs_between(since, ts)
    }

    /// The condition no longer holds.
    pub(crate) fn reset(&mut self) {
        self.since = None;
        self.last = None;
    }
}

/// Builds the anomalies of one detector instance (device, signal, unit from the context).
#[derive(Debug, Clone)]
pub(crate) struct Emit {
    ctx: DetectorContext,
    detector: &'static str,
}

impl Emit {
    pub(crate) fn new(ctx: &DetectorContext, detector: &'static str) -> Self {
        Emit {
            ctx: ctx.clone(),
            detector,
        }
    }

    /// A value with the context's unit, for reasons: `231.0 kPa`.
    pub(crate) fn val(&self, v: f64) -> String {
        if self.ctx.unit.is_empty() {
            num(v)
        } else {
            format!("{} {}", num(v), self.ctx.unit)
        }
    }

    /// The context's unit (may be empty).
    pub(crate) fn unit(&self) -> &str {
        &self.ctx.unit
    }

    pub(crate) fn ctx(&self) -> &DetectorContext {
        &self.ctx
    }

    /// Raised at the reading `r` (its ts and value).
    pub(crate) fn raised(&self, r: &Reading, score: f64, reason: String) -> Anomaly {
        self.make(&r.metric, r.ts, r.value, score, Phase::Raised, reason)
    }

    /// Cleared at the reading `r`; a cleared anomaly carries no evidence, so score 0.
    pub(crate) fn cleared(&self, r: &Reading, reason: String) -> Anomaly {
        self.make(&r.metric, r.ts, r.value, 0.0, Phase::Cleared, reason)
    }

    pub(crate) fn make(
        &self,
        metric: &str,
        ts: EventTime,
        value: f64,
        score: f64,
        phase: Phase,
        reason: String,
    ) -> Anomaly {
        Anomaly {
            device_id: self.ctx.device_id.clone(),
            metric: metric.to_string(),
            signal: self.ctx.signal.clone(),
            detector: self.detector.to_string(),
            ts,
            value,
            score: unit_score(score),
            phase,
            reason,
            arrival: None,
        }
    }
}

/// Clamps a score into [0, 1] (NaN gives 0).
pub(crate) fn unit_score(score: f64) -> f64 {
    if score.is_nan() {
        0.0
    } else {
        score.clamp(0.0, 1.0)
    }
}

/// The usual score shape: 0.5 when the measure is at its trigger level, 1.0 at twice it.
pub(crate) fn ratio_score(measure: f64, trigger: f64) -> f64 {
    if trigger > 0.0 {
        unit_score(0.5 * measure.abs() / trigger)
    } else {
        1.0
    }
}

/// A number for reasons: 1 decimal from 100 up, 2 from 1 up, 3 below.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A percentage for reasons (no `%` sign): `38`, `7.5`.
pub(crate) fn pct(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A duration for reasons: `30 s`, `2.5 s`.
pub(crate) fn secs(s: f64) -> String {
    if (s - s.round()).abs() < 1e-9 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// A value detector: judges readings already checked by [`Guarded`] (finite value, matching
/// metric, ts strictly after the previous one of the same metric).
pub(crate) trait ValueDetector: Send {
    fn on_value(&mut self, r: &Reading) -> Option<Anomaly>;
    /// See [`Detector::score`]: the grade of the reading last passed to `on_value`.
    fn score(&self) -> Option<f64> {
        None
    }
}

/// The graded score of a trigger ratio `r` (measure / trigger): `r / (1 + r)`, 0.5 at the
/// trigger, below 1 for any finite `r` (see [`Detector::score`]); NaN gives 0.
pub(crate) fn graded_score(ratio: f64) -> f64 {
    let r = ratio.abs();
    if r.is_nan() {
        0.0
    } else if r.is_infinite() {
        1.0
    } else {
        r / (1.0 + r)
    }
}

/// The input guard around a value detector; one state per matching metric (module doc).
pub(crate) struct Guarded<D> {
    pattern: String,
    proto: D,
    lanes: BTreeMap<String, (EventTime, D)>,
    /// Score of the last observed reading (`None` if the guard dropped it).
    last_score: Option<f64>,
}

impl<D: ValueDetector + Clone + 'static> Guarded<D> {
    pub(crate) fn boxed(ctx: &DetectorContext, proto: D) -> Box<dyn Detector> {
        Box::new(Guarded {
            pattern: ctx.metric.clone(),
            proto,
            lanes: BTreeMap::new(),
            last_score: None,
        })
    }
}

impl<D: ValueDetector + Clone> Detector for Guarded<D> {
    fn observe(&mut self, r: &Reading) -> Option<Anomaly> {
        self.last_score = None;
        if !r.value.is_finite() || !metric_matches(&self.pattern, &r.metric) {
            return None;
        }
        match self.lanes.get_mut(&r.metric) {
            Some((last, det)) => {
                if r.ts <= *last {
                    return None;
                }
                *last = r.ts;
                let out = det.on_value(r);
                self.last_score = det.score();
                out
            }
            None => {
                let mut det = self.proto.clone();
                let out = det.on_value(r);
                self.last_score = det.score();
                self.lanes.insert(r.metric.clone(), (r.ts, det));
                out
            }
        }
    }

    fn score(&self) -> Option<f64> {
        self.last_score
    }
}

/// (field path relative to the detector, message) pairs, as [`super::DetectorConfig::validate`]
/// returns them.
pub(crate) type Problems = Vec<(String, String)>;

pub(crate) fn problem(p: &mut Problems, field: &str, message: String) {
    p.push((field.to_string(), message));
}

/// `v` must be finite and >= 0.
pub(crate) fn non_negative(p: &mut Problems, field: &str, v: f64) {
    if !v.is_finite() || v < 0.0 {
        problem(p, field, format!("must be >= 0, got {v}"));
    }
}

/// `v` must be finite and > 0.
pub(crate) fn positive(p: &mut Problems, field: &str, v: f64) {
    if !v.is_finite() || v <= 0.0 {
        problem(p, field, format!("must be > 0, got {v}"));
    }
}

/// `v` must be finite.
pub(crate) fn finite(p: &mut Problems, field: &str, v: f64) {
    if !v.is_finite() {
        problem(p, field, format!("must be a finite number, got {v}"));
    }
}
