//! `flatline`: the value is frozen (a stuck sensor or a firmware repeating its last sample).
//!
//! - A run starts at a reading (the anchor); later readings within `tolerance` (metric units,
//!   default 0 = bit-identical values) of the *anchor* continue it. Comparing to the anchor, not
//!   to the previous reading, means a slow creep in sub-tolerance steps is movement, not a
//!   freeze.
//! - Raised at the reading that makes the run last `min_duration_secs` (s, event time), under the
//!   shared gap rule (see `common`): after a gap longer than 3 reporting intervals the run
//!   restarts, since nobody saw the value meanwhile. Cleared at the first reading that moves
//!   beyond `tolerance`; it anchors the next run.
//! - NaN readings are ignored (they neither break nor extend a run).
//! - Score 1.0: a value identical for the whole duration is certain, not a matter of degree.

use serde::{Deserialize, Serialize};

use super::common::{
    max_gap_ms, non_negative, positive, secs, Emit, Problems, Streak, ValueDetector,
};
use super::DetectorContext;
use crate::model::{Anomaly, Reading};

/// Config of the `flatline` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlatlineConfig {
    /// Largest change (metric units) from the run's first value that still counts as frozen.
    /// Default 0.
    #[serde(default)]
    pub tolerance: f64,
    /// How long (s, event time) the value must stay frozen before it is raised. Required, > 0.
    pub min_duration_secs: f64,
}

impl FlatlineConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        non_negative(p, "tolerance", self.tolerance);
        positive(p, "min_duration_secs", self.min_duration_secs);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Flatline {
    cfg: FlatlineConfig,
    emit: Emit,
    max_gap_ms: i64,
    anchor: Option<f64>,
    streak: Streak,
    raised: bool,
}

impl Flatline {
    pub(crate) fn new(cfg: &FlatlineConfig, ctx: &DetectorContext) -> Self {
        Flatline {
            cfg: cfg.clone(),
            emit: Emit::new(ctx, "flatline"),
            max_gap_ms: max_gap_ms(ctx, cfg.min_duration_secs),
            anchor: None,
            streak: Streak::default(),
            raised: false,
        }
    }
}

impl ValueDetector for Flatline {
    fn on_value(&mut self, r: &Reading) -> Option<Anomaly> {
        let v = r.value;
        let frozen = self
            .anchor
            .is_some_and(|a| (v - a).abs() <= self.cfg.tolerance);
        if !frozen {
            self.anchor = Some(v);
            self.streak.reset();
            self.streak.hold(r.ts, self.max_gap_ms);
            if !self.raised {
                return None;
            }
            self.raised = false;
            let reason = format!("{} moving again: {}", r.metric, self.emit.val(v));
            return Some(self.emit.cleared(r, reason));
        }
        let held = self.streak.hold(r.ts, self.max_gap_ms);
        if self.raised || held < self.cfg.min_duration_secs {
            return None;
        }
        self.raised = true;
        let tol = if self.cfg.tolerance > 0.0 {
            format!(" (within {})", self.emit.val(self.cfg.tolerance))
        } else {
            String::new()
        };
        let reason = format!(
            "{} frozen at {}{tol} for {}",
            r.metric,
            self.emit.val(v),
            secs(held)
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

    fn det(tolerance: f64, dur: f64) -> Box<dyn Detector> {
        build(
            &DetectorConfig::Flatline(FlatlineConfig {
                tolerance,
                min_duration_secs: dur,
            }),
            &ctx(),
        )
    }

    #[test]
    fn a_frozen_value_raises_after_the_duration_and_clears_when_it_moves() {
        let mut d = det(0.0, 60.0);
        let mut vals = noise(1, 20, 400.0, 2.0);
        vals.extend([412.3; 20]); // from 100 s
        vals.push(405.0);
        let out = feed(d.as_mut(), &series(0.0, 5.0, &vals));
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared], "{out:?}");
        assert_eq!(out[0].ts, at(160.0));
        assert_eq!(out[0].reason, "pressure_kpa frozen at 412.3 kPa for 60 s");
        assert_eq!(out[1].ts, at(200.0));
    }

    #[test]
    fn noise_and_slow_creep_are_movement() {
        let mut d = det(0.5, 60.0);
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &noise(2, 2000, 400.0, 2.0))).is_empty());
        let creep: Vec<f64> = (0..100).map(|i| 400.0 + 0.2 * i as f64).collect();
        assert!(feed(d.as_mut(), &series(10_000.0, 5.0, &creep)).is_empty());
    }

    #[test]
    fn gaps_restart_the_run_and_nan_or_duplicates_do_not_count() {
        let mut d = det(0.0, 60.0);
        let out = feed(d.as_mut(), &[(0.0, 400.0), (30.0, 400.0), (100.0, 400.0)]);
        assert!(out.is_empty(), "a 70 s hole is not 'frozen for 60 s'");
        let pts = [
            (105.0, f64::NAN),
            (110.0, 400.0),
            (110.0, 999.0),
            (160.0, 400.0),
        ];
        let out = feed(d.as_mut(), &pts);
        assert!(
            out.is_empty(),
            "gap 110..160 s exceeds 15 s: run restarts at 160 s"
        );
        let pts: Vec<(f64, f64)> = (1..=12).map(|i| (160.0 + 5.0 * i as f64, 400.0)).collect();
        let out = feed(d.as_mut(), &pts);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts, at(220.0));
    }

    #[test]
    fn validate_needs_a_duration() {
        let mut p = Vec::new();
        FlatlineConfig {
            tolerance: -1.0,
            min_duration_secs: 0.0,
        }
        .validate(&mut p);
        assert_eq!(p.len(), 2);
    }
}
