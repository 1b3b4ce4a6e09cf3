//! `threshold`: a value above `above` or below `below` (metric units), held for
//! `min_duration_secs` of event time.
//!
//! - Raised at the reading that completes `min_duration_secs` (0: the first one past the level).
//!   Levels are strict: a value equal to `above` is not above it.
//! - `hysteresis` (metric units, default 0): once raised on `above`, clears only when the value is
//!   back to `above - hysteresis` or lower (on `below`: `below + hysteresis` or higher), so a value
//!   hovering at the level does not flap.
//! - The duration follows the shared gap rule (see `common`): a gap longer than 3 reporting
//!   intervals restarts it, so the readings themselves must show the condition held.
//! - Score = min(1, 0.5 + |value − level| / |level|): 0.5 just past the level, 1.0 at 50 % beyond
//!   it; for a level of 0 the exceedance is taken in metric units.

use serde::{Deserialize, Serialize};

use super::common::{
    finite, max_gap_ms, non_negative, pct, problem, secs, unit_score, Emit, Problems, Streak,
    ValueDetector,
};
use super::DetectorContext;
use crate::model::{Anomaly, Reading};

/// Config of the `threshold` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// Raise while the value is strictly above this level (metric units). At least one of
    /// `above`/`below` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Raise while the value is strictly below this level (metric units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// How far back past the level (metric units) the value must come to clear. Default 0.
    #[serde(default)]
    pub hysteresis: f64,
    /// How long (s, event time) the condition must hold before it is raised. Default 0.
    #[serde(default)]
    pub min_duration_secs: f64,
}

impl ThresholdConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        if self.above.is_none() && self.below.is_none() {
            problem(
                p,
                "above",
                "at least one of `above` or `below` is required".into(),
            );
        }
        if let Some(a) = self.above {
            finite(p, "above", a);
        }
        if let Some(b) = self.below {
            finite(p, "below", b);
        }
        non_negative(p, "hysteresis", self.hysteresis);
        non_negative(p, "min_duration_secs", self.min_duration_secs);
        if let (Some(a), Some(b)) = (self.above, self.below) {
            if b >= a {
                problem(
                    p,
                    "below",
                    format!("must be less than `above` ({a}), got {b}"),
                );
            } else if self.hysteresis * 2.0 >= a - b {
                problem(
                    p,
                    "hysteresis",
                    format!(
                        "must be less than half the band {b}..{a}, got {}",
                        self.hysteresis
                    ),
                );
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Above,
    Below,
}

#[derive(Debug, Clone)]
pub(crate) struct Threshold {
    cfg: ThresholdConfig,
    emit: Emit,
    max_gap_ms: i64,
    streak: Streak,
    pending: Option<Side>,
    raised: Option<Side>,
}

impl Threshold {
    pub(crate) fn new(cfg: &ThresholdConfig, ctx: &DetectorContext) -> Self {
        Threshold {
            cfg: cfg.clone(),
            emit: Emit::new(ctx, "threshold"),
            max_gap_ms: max_gap_ms(ctx, cfg.min_duration_secs),
            streak: Streak::default(),
            pending: None,
            raised: None,
        }
    }

    fn level(&self, side: Side) -> f64 {
        match side {
            Side::Above => self.cfg.above.unwrap_or(f64::INFINITY),
            Side::Below => self.cfg.below.unwrap_or(f64::NEG_INFINITY),
        }
    }
}

impl ValueDetector for Threshold {
    fn on_value(&mut self, r: &Reading) -> Option<Anomaly> {
        let v = r.value;
        let h = self.cfg.hysteresis;
        if let Some(side) = self.raised {
            let level = self.level(side);
            let (released, back_to, word) = match side {
                Side::Above => (v <= level - h, level - h, "below"),
                Side::Below => (v >= level + h, level + h, "above"),
            };
            if !released {
                return None;
            }
            self.raised = None;
            self.streak.reset();
            let m = &r.metric;
            let reason = format!(
                "{m} {} back {word} {}",
                self.emit.val(v),
                self.emit.val(back_to)
            );
            return Some(self.emit.cleared(r, reason));
        }
        let side = if self.cfg.above.is_some_and(|a| v > a) {
            Some(Side::Above)
        } else if self.cfg.below.is_some_and(|b| v < b) {
            Some(Side::Below)
        } else {
            None
        };
        let Some(side) = side else {
            self.pending = None;
            self.streak.reset();
            return None;
        };
        if self.pending != Some(side) {
            self.streak.reset();
            self.pending = Some(side);
        }
        let held = self.streak.hold(r.ts, self.max_gap_ms);
        if held < self.cfg.min_duration_secs {
            return None;
        }
        self.pending = None;
        self.raised = Some(side);
        let level = self.level(side);
        let excess = (v - level).abs();
        let rel = if level != 0.0 {
            excess / level.abs()
        } else {
            excess
        };
        let word = if side == Side::Above {
            "above"
        } else {
            "below"
        };
        let mut reason = format!(
            "{} {} {word} {}",
            r.metric,
            self.emit.val(v),
            self.emit.val(level)
        );
        if self.cfg.min_duration_secs > 0.0 {
            reason.push_str(&format!(" for {}", secs(held)));
        }
        if rel.is_finite() && level != 0.0 {
            reason.push_str(&format!(" ({}% past the level)", pct(rel * 100.0)));
        }
        Some(self.emit.raised(r, unit_score(0.5 + rel), reason))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, ctx, feed, noise, phases, series};
    use super::super::{build, DetectorConfig};
    use super::*;
    use crate::detect::Detector;
    use crate::model::Phase;

    fn det(above: Option<f64>, below: Option<f64>, hyst: f64, dur: f64) -> Box<dyn Detector> {
        let cfg = ThresholdConfig {
            above,
            below,
            hysteresis: hyst,
            min_duration_secs: dur,
        };
        build(&DetectorConfig::Threshold(cfg), &ctx())
    }

    #[test]
    fn raises_after_the_duration_and_clears_with_hysteresis() {
        let mut d = det(Some(500.0), None, 10.0, 20.0);
        let pts = series(
            0.0,
            5.0,
            &[400.0, 510.0, 520.0, 530.0, 540.0, 550.0, 495.0, 489.0],
        );
        let out = feed(d.as_mut(), &pts);
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared]);
        assert_eq!(
            out[0].ts,
            at(25.0),
            "raised at the reading completing 20 s (5 s..25 s)"
        );
        assert_eq!(out[0].value, 550.0);
        assert!(
            (out[0].score - 0.6).abs() < 1e-9,
            "0.5 + 50/500, got {}",
            out[0].score
        );
        assert_eq!(out[0].detector, "threshold");
        assert_eq!(out[0].signal, "pressure_drop");
        assert!(
            out[0].reason.contains("550.0 kPa above 500.0 kPa for 20 s"),
            "{}",
            out[0].reason
        );
        assert_eq!(
            out[1].ts,
            at(35.0),
            "495 is inside the hysteresis band, 489 clears"
        );
        assert_eq!(out[1].score, 0.0);
    }

    #[test]
    fn below_level_and_zero_duration_raise_at_once() {
        let mut d = det(None, Some(250.0), 0.0, 0.0);
        let out = feed(d.as_mut(), &[(0.0, 300.0), (5.0, 240.0), (10.0, 260.0)]);
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared]);
        assert_eq!(out[0].ts, at(5.0));
    }

    #[test]
    fn normal_noise_and_a_single_outlier_do_not_raise_with_a_duration() {
        let mut d = det(Some(450.0), Some(350.0), 5.0, 30.0);
        let mut vals = noise(7, 2000, 400.0, 8.0);
        vals[1000] = 900.0;
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &vals)).is_empty());
    }

    #[test]
    fn a_gap_longer_than_three_intervals_restarts_the_duration() {
        let mut d = det(Some(500.0), None, 0.0, 30.0);
        // 0 s and 60 s are both above, but nothing was seen in between (interval 5 s).
        let out = feed(d.as_mut(), &[(0.0, 600.0), (60.0, 600.0), (70.0, 600.0)]);
        assert!(out.is_empty(), "{out:?}");
        let out = feed(d.as_mut(), &[(80.0, 600.0), (90.0, 600.0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts, at(90.0), "held from 60 s, confirmed every 10 s");
    }

    #[test]
    fn nan_and_duplicate_timestamps_are_ignored() {
        let mut d = det(Some(500.0), None, 0.0, 10.0);
        let pts = [
            (0.0, 600.0),
            (0.0, 600.0),
            (5.0, f64::NAN),
            (5.0, f64::INFINITY),
        ];
        assert!(feed(d.as_mut(), &pts).is_empty());
        // A NaN does not break or extend the streak; a duplicate ts does not extend it either.
        let out = feed(d.as_mut(), &[(10.0, 600.0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts, at(10.0));
    }

    #[test]
    fn constant_input_at_the_level_never_raises() {
        let mut d = det(Some(500.0), None, 0.0, 0.0);
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &[500.0; 100])).is_empty());
    }

    #[test]
    fn validate_catches_bad_levels() {
        let mut p = Vec::new();
        let cfg = ThresholdConfig {
            above: Some(100.0),
            below: Some(200.0),
            hysteresis: -1.0,
            min_duration_secs: -3.0,
        };
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["hysteresis", "min_duration_secs", "below"]);
        assert_eq!(p[1].1, "must be >= 0, got -3");
        let mut p = Vec::new();
        ThresholdConfig {
            above: None,
            below: None,
            hysteresis: 0.0,
            min_duration_secs: 0.0,
        }
        .validate(&mut p);
        assert_eq!(p.len(), 1);
    }
}
