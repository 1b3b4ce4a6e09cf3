//! `silence`: the device stopped reporting (for this detector's metric, or any metric with `*`).
//!
//! - Judged in `on_watermark`: once the watermark reaches last_seen + `after_secs` (s; default
//!   `factor` × the profile's `interval_secs`, factor default 3) with no reading in between, it
//!   is Raised with ts = last_seen + after_secs *exactly* and value = after_secs (the silent
//!   seconds at that instant), so the result never depends on how often watermarks come.
//! - Cleared at the next reading, ts = that reading's ts, value = the whole silent time (s).
//! - If a reading arrives after a silence no watermark revealed (coarse watermarks), `observe`
//!   returns the Raised (same ts and value as above) and the Cleared is handed out by the next
//!   `on_watermark`: the same anomalies in the same order, whatever the watermark cadence.
//! - Only readings with a finite value count as signs of life: a device sending only NaN is as
//!   useless as a silent one. A reading at or before last_seen changes nothing.
//! - A device never seen has no last_seen and never raises here (the register check reports
//!   never-seen devices). One anomaly per silence episode. If neither `after_secs` nor a
//!   positive `interval_secs` is known, the detector never raises.
//! - Score 1.0.

use serde::{Deserialize, Serialize};

use super::common::{metric_matches, positive, secs, secs_between, secs_to_ms, Emit, Problems};
use super::{Detector, DetectorContext};
use crate::model::{Anomaly, EventTime, Phase, Reading};

fn d_factor() -> f64 {
    3.0
}

/// Config of the `silence` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    /// Seconds without a reading that make a silence. Default: `factor` × the profile interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_secs: Option<f64>,
    /// Reporting intervals without a reading that make a silence, when `after_secs` is unset.
    /// Default 3.
    #[serde(default = "d_factor")]
    pub factor: f64,
}

impl SilenceConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        if let Some(a) = self.after_secs {
            positive(p, "after_secs", a);
        }
        positive(p, "factor", self.factor);
    }
}

pub(crate) struct Silence {
    emit: Emit,
    /// The silence threshold in ms, `None` when it cannot be known.
    after_ms: Option<i64>,
    last_seen: Option<EventTime>,
    raised: bool,
    queued: Vec<Anomaly>,
}

impl Silence {
    pub(crate) fn new(cfg: &SilenceConfig, ctx: &DetectorContext) -> Self {
        let after = cfg.after_secs.unwrap_or(cfg.factor * ctx.interval_secs);
        let after_ms = (after.is_finite() && after > 0.0).then(|| secs_to_ms(after).max(1));
        Silence {
            emit: Emit::new(ctx, "silence"),
            after_ms,
            last_seen: None,
            raised: false,
            queued: Vec::new(),
        }
    }

    fn raised_at(&self, last: EventTime, after_ms: i64) -> Anomaly {
        let after = after_ms as f64 / 1000.0;
        let interval = self.emit.ctx().interval_secs;
        let expected = if interval > 0.0 && interval.is_finite() {
            format!(" (expected every {})", secs(interval))
        } else {
            String::new()
        };
        let reason = format!("no reading for {}{expected}; last at {last}", secs(after));
        let metric = self.emit.ctx().metric.clone();
        self.emit.make(
            &metric,
            EventTime(last.0.saturating_add(after_ms)),
            after,
            1.0,
            Phase::Raised,
            reason,
        )
    }

    fn cleared_at(&self, last: EventTime, r: &Reading) -> Anomaly {
        let silent = secs_between(last, r.ts);
        let reason = format!("reporting again after {} of silence", secs(silent));
        let metric = self.emit.ctx().metric.clone();
        self.emit
            .make(&metric, r.ts, silent, 0.0, Phase::Cleared, reason)
    }
}

impl Detector for Silence {
    fn observe(&mut self, r: &Reading) -> Option<Anomaly> {
        if !r.value.is_finite() || !metric_matches(&self.emit.ctx().metric, &r.metric) {
            return None;
        }
        let Some(last) = self.last_seen else {
            self.last_seen = Some(r.ts);
            return None;
        };
        if r.ts <= last {
            return None;
        }
        self.last_seen = Some(r.ts);
        if self.raised {
            self.raised = false;
            return Some(self.cleared_at(last, r));
        }
        let after_ms = self.after_ms?;
        if r.ts.0.saturating_sub(last.0) < after_ms {
            return None;
        }
        // A silence no watermark saw: report it now, its end at the next watermark.
        let cleared = self.cleared_at(last, r);
        self.queued.push(cleared);
        Some(self.raised_at(last, after_ms))
    }

    fn on_watermark(&mut self, watermark: EventTime) -> Vec<Anomaly> {
        let mut out = std::mem::take(&mut self.queued);
        if let (Some(last), Some(after_ms), false) = (self.last_seen, self.after_ms, self.raised) {
            if watermark.0 >= last.0.saturating_add(after_ms) {
                self.raised = true;
                out.push(self.raised_at(last, after_ms));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, ctx, reading};
    use super::super::{build, DetectorConfig};
    use super::*;

    fn det(after_secs: Option<f64>) -> Box<dyn Detector> {
        build(
            &DetectorConfig::Silence(SilenceConfig {
                after_secs,
                factor: 3.0,
            }),
            &ctx(),
        )
    }

    /// Readings (second offsets) with a watermark every `wm_step` seconds of event time, the
    /// watermark trailing the newest reading by 2 s; returns everything emitted, in order.
    fn run(readings: &[f64], wm_step: f64, until: f64) -> Vec<Anomaly> {
        let mut d = det(Some(60.0));
        let mut out = Vec::new();
        let mut next_wm = wm_step;
        let mut ri = 0;
        while next_wm <= until {
            while ri < readings.len() && readings[ri] <= next_wm + 2.0 {
                out.extend(d.observe(&reading(readings[ri], 400.0)));
                ri += 1;
            }
            out.extend(d.on_watermark(at(next_wm)));
            next_wm += wm_step;
        }
        out
    }

    #[test]
    fn raise_ts_is_last_seen_plus_after_whatever_the_watermark_cadence() {
        // Reports every 5 s until 100 s, silent until 400 s, then every 5 s again.
        let mut ts: Vec<f64> = (0..=20).map(|i| i as f64 * 5.0).collect();
        ts.extend((0..60).map(|i| 400.0 + i as f64 * 5.0));
        let fine = run(&ts, 1.0, 600.0);
        assert_eq!(fine.len(), 2, "{fine:?}");
        assert_eq!(fine[0].phase, Phase::Raised);
        assert_eq!(fine[0].ts, at(160.0), "last seen 100 s + 60 s");
        assert_eq!(fine[0].value, 60.0);
        assert_eq!(fine[0].score, 1.0);
        assert_eq!(fine[0].metric, "pressure_kpa");
        assert_eq!(fine[1].phase, Phase::Cleared);
        assert_eq!(fine[1].ts, at(400.0));
        assert_eq!(fine[1].value, 300.0);
        for step in [7.0, 45.0, 130.0, 600.0] {
            assert_eq!(run(&ts, step, 600.0), fine, "watermark every {step} s");
        }
    }

    #[test]
    fn never_seen_short_gaps_and_once_per_episode() {
        let mut d = det(Some(60.0));
        assert!(
            d.on_watermark(at(10_000.0)).is_empty(),
            "never seen: the register reports it"
        );
        assert!(d.observe(&reading(0.0, 1.0)).is_none());
        assert!(
            d.observe(&reading(59.0, 1.0)).is_none(),
            "59 s is not silence"
        );
        assert!(d.on_watermark(at(118.0)).is_empty());
        assert_eq!(d.on_watermark(at(119.0)).len(), 1);
        assert!(
            d.on_watermark(at(500.0)).is_empty(),
            "one Raised per episode"
        );
        assert!(d.on_watermark(at(5000.0)).is_empty());
    }

    #[test]
    fn nan_readings_and_duplicates_are_not_signs_of_life() {
        let mut d = det(None); // 3 × 5 s
        assert!(d.observe(&reading(0.0, 1.0)).is_none());
        assert!(d.observe(&reading(10.0, f64::NAN)).is_none());
        assert!(d.observe(&reading(0.0, 1.0)).is_none());
        let out = d.on_watermark(at(20.0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts, at(15.0));
        let cleared = d.observe(&reading(21.0, 2.0));
        assert!(cleared.is_some_and(|a| a.phase == Phase::Cleared && a.value == 21.0));
    }

    #[test]
    fn unknown_interval_never_raises_and_validate() {
        let ctx0 = DetectorContext {
            interval_secs: 0.0,
            ..ctx()
        };
        let mut d = build(
            &DetectorConfig::Silence(SilenceConfig {
                after_secs: None,
                factor: 3.0,
            }),
            &ctx0,
        );
        assert!(d.observe(&reading(0.0, 1.0)).is_none());
        assert!(d.on_watermark(at(1e6)).is_empty());
        let mut p = Vec::new();
        SilenceConfig {
            after_secs: Some(-5.0),
            factor: 0.0,
        }
        .validate(&mut p);
        assert_eq!(p.len(), 2);
    }
}
