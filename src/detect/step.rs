//! `step`: a sudden, sustained drop (or rise) against a robust rolling baseline, e.g. a water
//! main burst showing as a pressure fall.
//!
//! - Baseline = median of the readings of the last `baseline_secs` (s) judged normal, once at
//!   least `min_baseline_samples` are there. A reading `change_pct` % or more below (`down`) or
//!   above (`up`) it starts a *pending* step; the baseline is then frozen (and the pending
//!   readings kept out of it), so a sustained drop never becomes the new normal during the alarm.
//! - Raised at the reading that completes `min_duration_secs` (s) of readings all past the change,
//!   under the shared gap rule (see `common`). A single-sample dip cannot raise unless
//!   `min_duration_secs` is 0; a pending step that ends early gives its readings back to the
//!   baseline (the median shrugs them off).
//! - Cleared at the first reading back within `change_pct / 2` % of the frozen baseline (on the
//!   side of the change: an overshoot the other way also ends the drop). If `max_alarm_secs` (s)
//!   is set and the alarm lasts that long, the new level is accepted: Cleared with a
//!   "re-baselined" reason, and the readings of the last `baseline_secs` become the baseline.
//! - A baseline within 1e-9 of 0 has no meaningful percentage: nothing is judged against it.
//! - Score = min(1, 0.5 × change / `change_pct`): 0.5 at the trigger, 1.0 at twice it.

use serde::{Deserialize, Serialize};

use super::common::{
    max_gap_ms, non_negative, pct, positive, problem, ratio_score, secs, secs_between, secs_to_ms,
    Direction, Emit, Problems, Streak, ValueDetector,
};
use super::window::RollingWindow;
use super::DetectorContext;
use crate::model::{Anomaly, EventTime, Reading};

fn d_baseline_secs() -> f64 {
    1800.0
}
fn d_min_duration_secs() -> f64 {
    30.0
}
fn d_min_baseline_samples() -> usize {
    10
}

/// Config of the `step` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// `down` (a drop, the default) or `up` (a rise).
    #[serde(default = "Direction::down")]
    pub direction: Direction,
    /// Window (s) of normal readings whose median is the baseline. Default 1800.
    #[serde(default = "d_baseline_secs")]
    pub baseline_secs: f64,
    /// Change against the baseline (percent of it) that makes a step. Required, > 0.
    pub change_pct: f64,
    /// How long (s, event time) the change must hold before it is raised. Default 30.
    #[serde(default = "d_min_duration_secs")]
    pub min_duration_secs: f64,
    /// Readings the baseline needs before anything is judged. Default 10.
    #[serde(default = "d_min_baseline_samples")]
    pub min_baseline_samples: usize,
    /// After this long (s) in alarm the new level becomes the baseline. Default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alarm_secs: Option<f64>,
}

impl StepConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        if self.direction == Direction::Both {
            problem(p, "direction", "must be `down` or `up`, got `both`".into());
        }
        positive(p, "baseline_secs", self.baseline_secs);
        positive(p, "change_pct", self.change_pct);
        non_negative(p, "min_duration_secs", self.min_duration_secs);
        if self.min_baseline_samples == 0 {
            problem(p, "min_baseline_samples", "must be >= 1, got 0".into());
        }
        if let Some(m) = self.max_alarm_secs {
            positive(p, "max_alarm_secs", m);
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    Pending {
        base: f64,
        streak: Streak,
        held: Vec<(EventTime, f64)>,
    },
    Raised {
        base: f64,
        since: EventTime,
        recent: RollingWindow,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    cfg: StepConfig,
    emit: Emit,
    max_gap_ms: i64,
    baseline: RollingWindow,
    state: State,
}

impl Step {
    pub(crate) fn new(cfg: &StepConfig, ctx: &DetectorContext) -> Self {
        Step {
            cfg: cfg.clone(),
            emit: Emit::new(ctx, "step"),
            max_gap_ms: max_gap_ms(ctx, cfg.min_duration_secs),
            baseline: RollingWindow::new(Some(secs_to_ms(cfg.baseline_secs)), None),
            state: State::Idle,
        }
    }

    /// Change (%) of `v` against `base` in the watched direction (negative: the other way).
    fn change_pct(&self, v: f64, base: f64) -> f64 {
        let dev = (v - base) / base.abs() * 100.0;
        if self.cfg.direction == Direction::Down {
            -dev
        } else {
            dev
        }
    }

    fn word(&self) -> &'static str {
        if self.cfg.direction == Direction::Down {
            "below"
        } else {
            "above"
        }
    }

    fn raise(
        &mut self,
        r: &Reading,
        base: f64,
        change: f64,
        held: f64,
        pending: &[(EventTime, f64)],
    ) -> Anomaly {
        let mut recent = RollingWindow::new(Some(secs_to_ms(self.cfg.baseline_secs)), None);
        for &(ts, v) in pending {
            recent.push(ts, v);
        }
        self.state = State::Raised {
            base,
            since: r.ts,
            recent,
        };
        let reason = format!(
            "{} {}, {}% {} the rolling baseline of {} for {}",
            r.metric,
            self.emit.val(r.value),
            pct(change),
            self.word(),
            self.emit.val(base),
            secs(held)
        );
        self.emit
            .raised(r, ratio_score(change, self.cfg.change_pct), reason)
    }
}

impl ValueDetector for Step {
    fn on_value(&mut self, r: &Reading) -> Option<Anomaly> {
        let v = r.value;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => {
                self.baseline.evict(r.ts);
                let base = self.baseline.median().filter(|b| b.abs() > 1e-9);
                if let Some(base) =
                    base.filter(|_| self.baseline.len() >= self.cfg.min_baseline_samples)
                {
                    let change = self.change_pct(v, base);
                    if change >= self.cfg.change_pct {
                        let mut streak = Streak::default();
                        let held = streak.hold(r.ts, self.max_gap_ms);
                        if held >= self.cfg.min_duration_secs {
                            return Some(self.raise(r, base, change, held, &[(r.ts, v)]));
                        }
                        self.state = State::Pending {
                            base,
                            streak,
                            held: vec![(r.ts, v)],
                        };
                        return None;
                    }
                }
                self.baseline.push(r.ts, v);
                None
            }
            State::Pending {
                base,
                mut streak,
                mut held,
            } => {
                let change = self.change_pct(v, base);
                if change >= self.cfg.change_pct {
                    let secs_held = streak.hold(r.ts, self.max_gap_ms);
                    held.push((r.ts, v));
                    // Bounded like the baseline window (a pending step restarted by gaps can last).
                    let cutoff = r.ts.0.saturating_sub(secs_to_ms(self.cfg.baseline_secs));
                    held.retain(|(ts, _)| ts.0 >= cutoff);
                    if secs_held >= self.cfg.min_duration_secs {
                        return Some(self.raise(r, base, change, secs_held, &held));
                    }
                    self.state = State::Pending { base, streak, held };
                    return None;
                }
                // Not a step after all: the dip was data like any other.
                for (ts, x) in held {
                    self.baseline.push(ts, x);
                }
                self.baseline.push(r.ts, v);
                None
            }
            State::Raised {
                base,
                since,
                mut recent,
            } => {
                let change = self.change_pct(v, base);
                if change <= self.cfg.change_pct / 2.0 {
                    self.baseline.push(r.ts, v);
                    let reason = format!(
                        "{} {} back within {}% of the baseline of {} after {}",
                        r.metric,
                        self.emit.val(v),
                        pct(self.cfg.change_pct / 2.0),
                        self.emit.val(base),
                        secs(secs_between(since, r.ts))
                    );
                    return Some(self.emit.cleared(r, reason));
                }
                recent.push(r.ts, v);
                let lasted = secs_between(since, r.ts);
                if self.cfg.max_alarm_secs.is_some_and(|m| lasted >= m) {
                    self.baseline = recent;
                    let new_base = self.baseline.median().unwrap_or(v);
                    let reason = format!(
                        "{} re-baselined after {} in alarm: {} accepted as the new level (was {})",
                        r.metric,
                        secs(lasted),
                        self.emit.val(new_base),
                        self.emit.val(base)
                    );
                    return Some(self.emit.cleared(r, reason));
                }
                self.state = State::Raised {
                    base,
                    since,
                    recent,
                };
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, ctx, feed, noise, phases, series};
    use super::super::{build, DetectorConfig};
    use super::*;
    use crate::detect::Detector;
    use crate::model::Phase;

    fn cfg() -> StepConfig {
        StepConfig {
            direction: Direction::Down,
            baseline_secs: 600.0,
            change_pct: 20.0,
            min_duration_secs: 30.0,
            min_baseline_samples: 10,
            max_alarm_secs: None,
        }
    }

    fn det(c: StepConfig) -> Box<dyn Detector> {
        build(&DetectorConfig::Step(c), &ctx())
    }

    #[test]
    fn a_sustained_drop_raises_with_a_frozen_baseline_and_clears_on_recovery() {
        let mut d = det(cfg());
        let mut vals = vec![372.0; 60]; // 0..295 s
        vals.extend([231.0; 200]); // 300..1295 s: longer than the baseline window
        vals.extend([370.0; 5]);
        let out = feed(d.as_mut(), &series(0.0, 5.0, &vals));
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared], "{out:?}");
        assert_eq!(out[0].ts, at(330.0), "300 s + 30 s");
        assert_eq!(
            out[0].reason,
            "pressure_kpa 231.0 kPa, 38% below the rolling baseline of 372.0 kPa for 30 s"
        );
        assert!((out[0].score - (0.5f64 * 37.903 / 20.0).min(1.0)).abs() < 1e-3);
        assert_eq!(
            out[1].ts,
            at(1300.0),
            "the frozen 372 kPa baseline, not 231, is the reference"
        );
    }

    #[test]
    fn a_single_sample_dip_and_noise_do_not_raise() {
        let mut d = det(cfg());
        let mut vals = noise(3, 3000, 400.0, 5.0);
        vals[500] = 10.0;
        vals[1500] = 50.0;
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &vals)).is_empty());
    }

    #[test]
    fn rise_direction_and_warm_up() {
        let mut d = det(StepConfig {
            direction: Direction::Up,
            ..cfg()
        });
        // Only 3 baseline readings: not enough to judge, so the new level is learned instead.
        let mut vals = vec![100.0; 3];
        vals.extend([200.0; 30]);
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &vals)).is_empty());
        let mut d = det(StepConfig {
            direction: Direction::Up,
            ..cfg()
        });
        let mut vals = vec![100.0; 20];
        vals.extend([200.0; 20]);
        let out = feed(d.as_mut(), &series(0.0, 5.0, &vals));
        assert_eq!(phases(&out), vec![Phase::Raised]);
        assert!(out[0].reason.contains("above the rolling baseline"));
    }

    #[test]
    fn gaps_restart_the_pending_duration() {
        let mut d = det(cfg());
        let mut pts = series(0.0, 5.0, &[400.0; 20]); // 0..95 s
        pts.extend([(100.0, 200.0), (160.0, 200.0)]); // 60 s apart: the gap is not "held"
        assert!(feed(d.as_mut(), &pts).is_empty());
        let out = feed(d.as_mut(), &series(170.0, 10.0, &[200.0; 4]));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts, at(190.0), "held from 160 s");
    }

    #[test]
    fn nan_duplicates_and_constant_input() {
        let mut d = det(cfg());
        let mut pts = series(0.0, 5.0, &[400.0; 20]);
        pts.extend([
            (100.0, f64::NAN),
            (100.0, 200.0),
            (100.0, 200.0),
            (105.0, f64::NEG_INFINITY),
        ]);
        pts.extend(series(110.0, 5.0, &[200.0; 6]));
        let out = feed(d.as_mut(), &pts);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].ts,
            at(130.0),
            "pending from 100 s, NaN and the duplicate ignored"
        );
        assert!(
            out[0].reason.contains("baseline of 400.0 kPa"),
            "NaN never reached the median"
        );
        let mut d = det(cfg());
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &[400.0; 500])).is_empty());
    }

    #[test]
    fn max_alarm_rebaselines() {
        let mut d = det(StepConfig {
            max_alarm_secs: Some(120.0),
            ..cfg()
        });
        let mut vals = vec![400.0; 20]; // 0..95
        vals.extend([250.0; 60]); // 100..395
        let out = feed(d.as_mut(), &series(0.0, 5.0, &vals));
        assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared]);
        assert_eq!(out[1].ts, at(250.0), "raised at 130 s + 120 s");
        assert!(out[1].reason.contains("re-baselined"), "{}", out[1].reason);
        // 250 is now normal; a further 20 % drop is a new step.
        let out = feed(d.as_mut(), &series(400.0, 5.0, &[190.0; 8]));
        assert_eq!(phases(&out), vec![Phase::Raised]);
        assert!(
            out[0].reason.contains("baseline of 250.0 kPa"),
            "{}",
            out[0].reason
        );
    }

    #[test]
    fn validate_rejects_both_and_negatives() {
        let mut p = Vec::new();
        StepConfig {
            direction: Direction::Both,
            change_pct: -5.0,
            min_duration_secs: -1.0,
            ..cfg()
        }
        .validate(&mut p);
        let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["direction", "change_pct", "min_duration_secs"]);
    }
}
