//! `out_of_range`: values outside what the sensor can physically report (a broken probe, a
//! firmware bug), as opposed to unusual-but-real values (`threshold`, `step`).
//!
//! - `min` / `max` (metric units, inclusive bounds) each default to the device profile's valid
//!   range for the metric (`DetectorContext::valid_range`); with neither configured nor in the
//!   profile, the detector never raises.
//! - Raised at the `min_samples`-th consecutive out-of-range reading (default 1). "Consecutive"
//!   counts readings, not time: a gap does not reset the count, a valid reading does.
//! - Cleared at the first valid reading. NaN readings are ignored (neither valid nor out of
//!   range: they never reach the detector). A duplicate timestamp does not count twice.
//! - Score 1.0: a physically impossible value is certain evidence of a fault.

use serde::{Deserialize, Serialize};

use super::common::{finite, problem, Emit, Problems, ValueDetector};
use super::DetectorContext;
use crate::model::{Anomaly, Reading};

fn d_min_samples() -> u32 {
    1
}

/// Config of the `out_of_range` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfRangeConfig {
    /// Lowest valid value (metric units). Default: the profile's valid range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest valid value (metric units). Default: the profile's valid range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Consecutive out-of-range readings needed to raise. Default 1.
    #[serde(default = "d_min_samples")]
    pub min_samples: u32,
}

impl OutOfRangeConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        if let Some(m) = self.min {
            finite(p, "min", m);
        }
        if let Some(m) = self.max {
            finite(p, "max", m);
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max) {
            if lo > hi {
                problem(p, "min", format!("must be <= `max` ({hi}), got {lo}"));
            }
        }
        if self.min_samples == 0 {
            problem(p, "min_samples", "must be >= 1, got 0".into());
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OutOfRange {
    min: Option<f64>,
    max: Option<f64>,
    min_samples: u32,
    emit: Emit,
    count: u32,
    raised: bool,
}

impl OutOfRange {
    pub(crate) fn new(cfg: &OutOfRangeConfig, ctx: &DetectorContext) -> Self {
        OutOfRange {
            min: cfg.min.or(ctx.valid_range.map(|r| r.0)),
            max: cfg.max.or(ctx.valid_range.map(|r| r.1)),
            min_samples: cfg.min_samples.max(1),
            emit: Emit::new(ctx, "out_of_range"),
            count: 0,
            raised: false,
        }
    }

    fn range(&self) -> String {
        let lo = self
            .min
            .map(|m| self.emit.val(m))
            .unwrap_or_else(|| "-inf".into());
        let hi = self
            .max
            .map(|m| self.emit.val(m))
            .unwrap_or_else(|| "+inf".into());
        format!("{lo} .. {hi}")
    }
}

impl ValueDetector for OutOfRange {
    fn on_value(&mut self, r: &Reading) -> Option<Anomaly> {
        let v = r.value;
        let out = self.min.is_some_and(|m| v < m) || self.max.is_some_and(|m| v > m);
        if !out {
            self.count = 0;
            if !self.raised {
                return None;
            }
            self.raised = false;
            let reason = format!(
                "{} {} back in range {}",
                r.metric,
                self.emit.val(v),
                self.range()
            );
            return Some(self.emit.cleared(r, reason));
        }
        self.count = self.count.saturating_add(1);
        if self.raised || self.count < self.min_samples {
            return None;
        }
        self.raised = true;
        let reason = format!(
            "{} {} outside the valid range {} ({} consecutive readings)",
            r.metric,
            self.emit.val(v),
            self.range(),
            self.count
        );
        Some(self.emit.raised(r, 1.0, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, ctx, feed, noise, phases, series};
    use super::super::{build, DetectorConfig};
    use super::*;
    use crate::detect::Detector;
    use crate::model::Phase;

    fn det(min: Option<f64>, max: Option<f64>, n: u32) -> Box<dyn Detector> {
        build(
            &DetectorConfig::OutOfRange(OutOfRangeConfig {
                min,
                max,
                min_samples: n,
            }),
            &ctx(),
        )
    }

    #[test]
    fn profile_range_is_the_default_and_clears_on_the_first_valid_reading() {
        let mut d = det(None, None, 1); // profile: 0..1000 kPa
        let out = feed(
            d.as_mut(),
            &series(0.0, 5.0, &[400.0, 1000.0, 6553.5, 7000.0, 400.0]),
        );
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared]);
        assert_eq!(
            out[0].ts,
            at(10.0),
            "the bounds are inclusive: 1000 is valid"
        );
        assert_eq!(
            out[0].reason,
            "pressure_kpa 6553.5 kPa outside the valid range 0.0 kPa .. 1000.0 kPa (1 consecutive readings)"
        );
        assert_eq!(out[1].ts, at(20.0));
    }

    #[test]
    fn min_samples_needs_consecutive_readings() {
        let mut d = det(Some(100.0), None, 3);
        let vals = [-1.0, -1.0, 400.0, -1.0, -1.0, f64::NAN, -1.0, -1.0];
        let mut pts = series(0.0, 5.0, &vals);
        pts.insert(4, (15.0, -1.0)); // duplicate ts of the 4th reading
        let out = feed(d.as_mut(), &pts);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].ts, at(30.0), "15, 20 (NaN at 25 skipped), 30");
        let mut d = det(Some(100.0), None, 2);
        let out = feed(d.as_mut(), &[(0.0, -1.0), (86_400.0, -1.0)]);
        assert_eq!(out.len(), 1, "consecutive readings, however far apart");
    }

    #[test]
    fn noise_and_constant_input_inside_the_range_are_quiet() {
        let mut d = det(None, None, 1);
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &noise(1, 1000, 400.0, 50.0))).is_empty());
        let ctx0 = DetectorContext {
            valid_range: None,
            ..ctx()
        };
        let cfg = OutOfRangeConfig {
            min: None,
            max: None,
            min_samples: 1,
        };
        let mut d = build(&DetectorConfig::OutOfRange(cfg), &ctx0);
        assert!(
            feed(d.as_mut(), &[(0.0, -1e300)]).is_empty(),
            "no range known: never raises"
        );
    }

    #[test]
    fn validate_rejects_inverted_range() {
        let mut p = Vec::new();
        OutOfRangeConfig {
            min: Some(5.0),
            max: Some(1.0),
            min_samples: 0,
        }
        .validate(&mut p);
        assert_eq!(p.len(), 2);
    }
}
