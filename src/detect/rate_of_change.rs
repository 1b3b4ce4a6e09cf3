//! `rate_of_change`: the value moves faster than `max_rate_per_min` (metric units per minute),
//! e.g. pressure falling 20 kPa/min, a temperature climbing implausibly fast.
//!
//! - The rate is judged per interval between consecutive readings: (Δvalue / Δt) × 60.
//!   Duplicate timestamps never reach it (Δt would be 0), and an interval longer than the shared
//!   gap limit (3 reporting intervals, see `common`) is not judged at all: the slope over a hole
//!   says nothing about how fast the change really was.
//! - Raised at the reading ending the interval that completes `min_duration_secs` (s) of
//!   back-to-back steep intervals *of the same sign*, counted from the start of the first one (0:
//!   the first steep interval raises), so a spike up then down is not a sustained rate. Cleared at
//!   the end of the first judged interval that is not steep (or steep the other way).
//! - `direction`: `up`, `down` or `both` (default).
//! - Score = min(1, 0.5 × |rate| / `max_rate_per_min`).

use serde::{Deserialize, Serialize};

use super::common::{
    max_gap_ms, non_negative, num, positive, ratio_score, secs, Direction, Emit, Problems, Streak,
    ValueDetector,
};
use super::DetectorContext;
use crate::model::{Anomaly, EventTime, Reading};

/// Config of the `rate_of_change` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateOfChangeConfig {
    /// Largest normal rate, in metric units per minute (absolute). Required, > 0.
    pub max_rate_per_min: f64,
    /// `up`, `down` or `both` (default).
    #[serde(default = "Direction::both")]
    pub direction: Direction,
    /// How long (s, event time) the rate must stay too steep before it is raised. Default 0.
    #[serde(default)]
    pub min_duration_secs: f64,
}

impl RateOfChangeConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        positive(p, "max_rate_per_min", self.max_rate_per_min);
        non_negative(p, "min_duration_secs", self.min_duration_secs);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RateOfChange {
    cfg: RateOfChangeConfig,
    emit: Emit,
    max_gap_ms: i64,
    prev: Option<(EventTime, f64)>,
    streak: Streak,
    /// Sign of the steep streak in progress (or raised): true = rising.
    rising: Option<bool>,
    raised: bool,
}

impl RateOfChange {
    pub(crate) fn new(cfg: &RateOfChangeConfig, ctx: &DetectorContext) -> Self {
        RateOfChange {
            cfg: cfg.clone(),
            emit: Emit::new(ctx, "rate_of_change"),
            max_gap_ms: max_gap_ms(ctx, cfg.min_duration_secs),
            prev: None,
            streak: Streak::default(),
            rising: None,
            raised: false,
        }
    }
}

impl ValueDetector for RateOfChange {
    fn on_value(&mut self, r: &Reading) -> Option<Anomaly> {
        let (pt, pv) = self.prev.replace((r.ts, r.value))?;
        let dt_ms = r.ts.0.saturating_sub(pt.0);
        if dt_ms <= 0 || dt_ms > self.max_gap_ms {
            self.streak.reset();
            self.rising = self.rising.filter(|_| self.raised);
            return None;
        }
        let rate = (r.value - pv) / (dt_ms as f64 / 1000.0) * 60.0;
        let steep = rate.abs() > self.cfg.max_rate_per_min && self.cfg.direction.admits(rate);
        let same_way = self.rising.is_none_or(|up| up == (rate > 0.0));
        if steep && !same_way && !self.raised {
            self.streak.reset(); // a reversal starts a new streak
        }
        let steep = steep && (same_way || !self.raised);
        let unit = match self.emit.unit() {
            "" => "units/min".to_string(),
            u => format!("{u}/min"),
        };
        if !steep {
            self.streak.reset();
            self.rising = None;
            if !self.raised {
                return None;
            }
            self.raised = false;
            let reason = format!("{} rate back to {} {unit}", r.metric, num(rate));
            return Some(self.emit.cleared(r, reason));
        }
        self.rising = Some(rate > 0.0);
        let held = self.streak.hold_interval(pt, r.ts);
        if self.raised || held < self.cfg.min_duration_secs {
            return None;
        }
        self.raised = true;
        let word = if rate < 0.0 { "falling" } else { "rising" };
        let reason = format!(
            "{} {word} {} {unit} (limit {} {unit}) for {}, now {}",
            r.metric,
            num(rate.abs()),
            num(self.cfg.max_rate_per_min),
            secs(held),
            self.emit.val(r.value)
        );
        Some(
            self.emit
                .raised(r, ratio_score(rate, self.cfg.max_rate_per_min), reason),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, ctx, feed, noise, phases, series};
    use super::super::{build, DetectorConfig};
    use super::*;
    use crate::detect::Detector;
    use crate::model::Phase;

    fn det(rate: f64, direction: Direction, dur: f64) -> Box<dyn Detector> {
        let cfg = RateOfChangeConfig {
            max_rate_per_min: rate,
            direction,
            min_duration_secs: dur,
        };
        build(&DetectorConfig::RateOfChange(cfg), &ctx())
    }

    #[test]
    fn a_fast_fall_raises_after_the_duration_and_clears() {
        let mut d = det(10.0, Direction::Down, 20.0);
        // -2 kPa per 5 s = -24 kPa/min from 10 s to 40 s.
        let vals = [
            400.0, 400.0, 400.0, 398.0, 396.0, 394.0, 392.0, 390.0, 388.0, 388.0,
        ];
        let out = feed(d.as_mut(), &series(0.0, 5.0, &vals));
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared], "{out:?}");
        assert_eq!(out[0].ts, at(30.0), "steep from 10 s, held 20 s at 30 s");
        assert!((out[0].score - 1.0).abs() < 1e-9, "24/10 × 0.5 capped at 1");
        assert!(out[0]
            .reason
            .contains("falling 24.00 kPa/min (limit 10.00 kPa/min)"));
        assert_eq!(out[1].ts, at(45.0));
    }

    #[test]
    fn direction_filters_and_noise_is_quiet() {
        let mut d = det(10.0, Direction::Down, 0.0);
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &[400.0, 410.0, 420.0])).is_empty());
        let mut d = det(10.0, Direction::Both, 0.0);
        // σ 0.1 kPa per 5 s sample: rates of σ 1.7 kPa/min, far below 10.
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &noise(1, 5000, 400.0, 0.1))).is_empty());
    }

    #[test]
    fn a_single_outlier_needs_the_duration() {
        let mut d = det(10.0, Direction::Both, 10.0);
        let out = feed(
            d.as_mut(),
            &series(0.0, 5.0, &[400.0, 400.0, 500.0, 400.0, 400.0]),
        );
        assert!(
            out.is_empty(),
            "up then down: the steep streak never lasts 10 s"
        );
        let mut d = det(10.0, Direction::Both, 0.0);
        let out = feed(
            d.as_mut(),
            &series(0.0, 5.0, &[400.0, 400.0, 500.0, 400.0, 400.0]),
        );
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared]);
    }

    #[test]
    fn gaps_duplicates_nan_and_constant_input() {
        let mut d = det(10.0, Direction::Both, 0.0);
        // 100 kPa over a 60 s hole is not judged; the duplicate ts and NaN are ignored.
        let pts = [
            (0.0, 400.0),
            (60.0, 300.0),
            (60.0, 100.0),
            (65.0, f64::NAN),
            (65.0, 300.0),
        ];
        assert!(feed(d.as_mut(), &pts).is_empty());
        let out = feed(d.as_mut(), &[(70.0, 250.0)]);
        assert_eq!(out.len(), 1, "judged against 300 kPa at 65 s: -600 kPa/min");
        let mut d = det(0.1, Direction::Both, 0.0);
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &[400.0; 100])).is_empty());
    }

    #[test]
    fn validate_needs_a_positive_rate() {
        let mut p = Vec::new();
        RateOfChangeConfig {
            max_rate_per_min: 0.0,
            direction: Direction::Up,
            min_duration_secs: -1.0,
        }
        .validate(&mut p);
        assert_eq!(p.len(), 2);
    }
}
