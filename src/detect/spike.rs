//! `spike`: one reading far from a robust rolling baseline (a spike up or a dip down), judged by
//! a z-score. Unlike `step` it needs no duration: a single huge outlier raises.
//!
//! - Baseline over the last `window_secs` (s) or the last `window_samples` readings (set one;
//!   neither: 60 samples), judged *before* the reading is added to it:
//!   - `method: mad` (default): center = median, scale = 1.4826 × MAD (σ for normal noise).
//!   - `method: ewma`: center = exponentially weighted mean, scale = √(EW variance), with
//!     α = 2 / (window_samples + 1) per reading, or α = 1 − e^(−Δt / window_secs) per reading for
//!     a time window (Δt since the previous reading); α is at least 1/n for the first n readings
//!     so the warm-up is a plain mean. A spike is learned clamped to center ± threshold × scale,
//!     so one outlier cannot drag the mean.
//! - z = (value − center) / scale. Scale floor: a constant input has MAD 0, so the scale is at
//!   least `min_scale` (metric units) or, when unset, 0.1 % of |center| (and never below 1e-6);
//!   z is therefore always finite.
//! - Raised when |z| > `threshold` (default 6) in the watched `direction` (default `both`), once
//!   the baseline holds `min_samples` readings (default 20); Cleared at the next reading that is
//!   not a spike. After a gap longer than `window_secs`, a time window (either method) starts
//!   over and warms up again: nothing is judged against stale data. A count window ignores gaps.
//! - Score = min(1, 0.5 × |z| / `threshold`). Per-reading grade ([`super::Detector::score`]):
//!   |z|/`threshold` graded as r / (1 + r) in the watched direction (0 the other way).

use serde::{Deserialize, Serialize};

use super::common::{
    graded_score, num, positive, problem, ratio_score, secs_between, secs_to_ms, Direction, Emit,
    Problems, ValueDetector,
};
use super::window::{floored_scale, RollingWindow, MAD_TO_SIGMA};
use super::DetectorContext;
use crate::model::{Anomaly, EventTime, Reading};

/// How the spike detector estimates its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeMethod {
    /// Rolling median and median absolute deviation (robust; the default).
    Mad,
    /// Exponentially weighted mean and variance (cheaper, smoother).
    Ewma,
}

fn d_method() -> SpikeMethod {
    SpikeMethod::Mad
}
fn d_threshold() -> f64 {
    6.0
}
fn d_min_samples() -> usize {
    20
}

/// Default count window when neither `window_secs` nor `window_samples` is set.
const DEFAULT_WINDOW_SAMPLES: usize = 60;

/// Config of the `spike` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeConfig {
    /// Baseline window in seconds of event time (set this or `window_samples`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<f64>,
    /// Baseline window in readings. Default 60 when `window_secs` is not set either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_samples: Option<usize>,
    /// `mad` (default) or `ewma`.
    #[serde(default = "d_method")]
    pub method: SpikeMethod,
    /// Robust z-score (in scale units) beyond which a reading is a spike. Default 6.
    #[serde(default = "d_threshold")]
    pub threshold: f64,
    /// `up`, `down` or `both` (default).
    #[serde(default = "Direction::both")]
    pub direction: Direction,
    /// Readings in the baseline before anything is judged (warm-up). Default 20.
    #[serde(default = "d_min_samples")]
    pub min_samples: usize,
    /// Smallest scale (metric units) used for z; default 0.1 % of |baseline|.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_scale: Option<f64>,
}

impl SpikeConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        if self.window_secs.is_some() && self.window_samples.is_some() {
            problem(
                p,
                "window_samples",
                "set only one of `window_secs` or `window_samples`".into(),
            );
        }
        if let Some(w) = self.window_secs {
            positive(p, "window_secs", w);
        }
        if let Some(n) = self.window_samples {
            if n < 2 {
                problem(p, "window_samples", format!("must be >= 2, got {n}"));
            } else if self.min_samples > n {
                problem(
                    p,
                    "min_samples",
                    format!("must be <= window_samples ({n}), got {}", self.min_samples),
                );
            }
        }
        positive(p, "threshold", self.threshold);
        if self.min_samples == 0 {
            problem(p, "min_samples", "must be >= 1, got 0".into());
        }
        if let Some(s) = self.min_scale {
            positive(p, "min_scale", s);
        }
    }
}

#[derive(Debug, Clone)]
enum Baseline {
    Mad(RollingWindow),
    Ewma {
        n: usize,
        mean: f64,
        var: f64,
        last: Option<EventTime>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Spike {
    cfg: SpikeConfig,
    emit: Emit,
    baseline: Baseline,
    raised: bool,
    /// Graded score of the last reading (see [`ValueDetector::score`]); `None` in warm-up.
    last_score: Option<f64>,
}

impl Spike {
    pub(crate) fn new(cfg: &SpikeConfig, ctx: &DetectorContext) -> Self {
        let samples = match (cfg.window_secs, cfg.window_samples) {
            (Some(_), None) => None,
            (_, n) => Some(n.unwrap_or(DEFAULT_WINDOW_SAMPLES)),
        };
        let baseline = match cfg.method {
            SpikeMethod::Mad => {
                let age = if samples.is_none() {
                    cfg.window_secs.map(secs_to_ms)
                } else {
                    None
                };
                Baseline::Mad(RollingWindow::new(age, samples))
            }
            SpikeMethod::Ewma => Baseline::Ewma {
                n: 0,
                mean: 0.0,
                var: 0.0,
                last: None,
            },
        };
        let cfg = SpikeConfig {
            window_samples: samples,
            ..cfg.clone()
        };
        Spike {
            cfg,
            emit: Emit::new(ctx, "spike"),
            baseline,
            raised: false,
            last_score: None,
        }
    }

    /// (center, floored scale, samples) of the baseline at `ts`, before the reading is added.
    fn stats(&mut self, ts: EventTime) -> Option<(f64, f64, usize)> {
        match &mut self.baseline {
            Baseline::Mad(w) => {
                w.evict(ts);
                let med = w.median()?;
                let mad = w.mad(med)?;
                Some((
                    med,
                    floored_scale(MAD_TO_SIGMA * mad, med, self.cfg.min_scale),
                    w.len(),
                ))
            }
            Baseline::Ewma { n, mean, var, last } => {
                // A time window older than itself holds nothing: start over.
                let time_window = (self.cfg.window_secs, self.cfg.window_samples, *last);
                if let (Some(tau), None, Some(prev)) = time_window {
                    if secs_between(prev, ts) > tau {
                        (*n, *mean, *var) = (0, 0.0, 0.0);
                    }
                }
                (*n > 0).then(|| {
                    (
                        *mean,
                        floored_scale(var.sqrt(), *mean, self.cfg.min_scale),
                        *n,
                    )
                })
            }
        }
    }

    fn learn(&mut self, ts: EventTime, x: f64) {
        match &mut self.baseline {
            Baseline::Mad(w) => w.push(ts, x),
            Baseline::Ewma { n, mean, var, last } => {
                let alpha = match (self.cfg.window_samples, self.cfg.window_secs, *last) {
                    (Some(k), _, _) => 2.0 / (k as f64 + 1.0),
                    (None, Some(tau), Some(prev)) => 1.0 - (-secs_between(prev, ts) / tau).exp(),
                    _ => 1.0,
                };
                let a = alpha.max(1.0 / n.saturating_add(1) as f64).clamp(0.0, 1.0);
                let diff = x - *mean;
                let incr = a * diff;
                let (new_mean, new_var) = (*mean + incr, (1.0 - a) * (*var + diff * incr));
                // An absurd (finite) value can overflow the sums: skip it rather than poison them.
                if new_mean.is_finite() && new_var.is_finite() {
                    (*n, *mean, *var) = (n.saturating_add(1), new_mean, new_var);
                }
                *last = Some(ts);
            }
        }
    }
}

impl ValueDetector for Spike {
    fn score(&self) -> Option<f64> {
        self.last_score
    }

    fn on_value(&mut self, r: &Reading) -> Option<Anomaly> {
        let v = r.value;
        let judged = self.stats(r.ts).filter(|s| s.2 >= self.cfg.min_samples);
        let Some((center, scale, n)) = judged else {
            self.learn(r.ts, v);
            self.last_score = None;
            return None;
        };
        let z = (v - center) / scale;
        let thr = self.cfg.threshold;
        let admitted = self.cfg.direction.admits(z);
        self.last_score = Some(if admitted { graded_score(z / thr) } else { 0.0 });
        let spike = z.abs() > thr && admitted;
        let learned = match self.baseline {
            Baseline::Ewma { .. } => v.clamp(center - thr * scale, center + thr * scale),
            Baseline::Mad(_) => v,
        };
        self.learn(r.ts, learned);
        if spike == self.raised {
            return None;
        }
        self.raised = spike;
        if !spike {
            let reason = format!("{} {} back to z {:+.1}", r.metric, self.emit.val(v), z);
            return Some(self.emit.cleared(r, reason));
        }
        let (what, spread) = match self.cfg.method {
            SpikeMethod::Mad => ("robust z", "the median"),
            SpikeMethod::Ewma => ("z", "the EWMA mean"),
        };
        let reason = format!(
            "{} {}, {what} {z:+.1} against {spread} of {} (scale {}, {n} samples)",
            r.metric,
            self.emit.val(v),
            self.emit.val(center),
            num(scale)
        );
        Some(self.emit.raised(r, ratio_score(z, thr), reason))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, ctx, feed, noise, phases, series};
    use super::super::{build, DetectorConfig};
    use super::*;
    use crate::detect::Detector;
    use crate::model::Phase;

    fn cfg(method: SpikeMethod) -> SpikeConfig {
        SpikeConfig {
            window_secs: None,
            window_samples: Some(60),
            method,
            threshold: 6.0,
            direction: Direction::Both,
            min_samples: 20,
            min_scale: None,
        }
    }

    fn det(c: SpikeConfig) -> Box<dyn Detector> {
        build(&DetectorConfig::Spike(c), &ctx())
    }

    #[test]
    fn a_single_huge_outlier_raises_then_clears_for_both_methods() {
        for method in [SpikeMethod::Mad, SpikeMethod::Ewma] {
            let mut d = det(cfg(method));
            let mut vals = noise(11, 200, 400.0, 2.0);
            vals[100] = 520.0;
            let out = feed(d.as_mut(), &series(0.0, 5.0, &vals));
            assert_eq!(
                phases(&out),
                vec![Phase::Raised, Phase::Cleared],
                "{method:?}: {out:?}"
            );
            assert_eq!(out[0].ts, at(500.0));
            assert_eq!(out[0].value, 520.0);
            assert_eq!(out[0].score, 1.0, "z ≈ 60 ≫ 2 × 6");
            assert_eq!(out[1].ts, at(505.0));
        }
    }

    #[test]
    fn normal_noise_does_not_raise() {
        for method in [SpikeMethod::Mad, SpikeMethod::Ewma] {
            let mut d = det(cfg(method));
            let out = feed(d.as_mut(), &series(0.0, 5.0, &noise(5, 3000, 400.0, 2.0)));
            assert!(out.is_empty(), "{method:?}: {out:?}");
        }
    }

    #[test]
    fn constant_input_uses_the_scale_floor() {
        let mut d = det(cfg(SpikeMethod::Mad));
        let mut vals = vec![400.0; 50];
        vals.extend([401.0, 400.0, 410.0]); // floor 0.4 kPa: z 2.5 (quiet), then z 25
        let out = feed(d.as_mut(), &series(0.0, 5.0, &vals));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].ts, at(260.0));
        assert!(
            out[0].score.is_finite() && out[0].reason.contains("z +25.0"),
            "{}",
            out[0].reason
        );
        let mut d = det(SpikeConfig {
            min_scale: Some(5.0),
            ..cfg(SpikeMethod::Mad)
        });
        assert!(
            feed(d.as_mut(), &series(0.0, 5.0, &vals)).is_empty(),
            "10 kPa = z 2 with 5 kPa floor"
        );
    }

    #[test]
    fn warm_up_direction_nan_and_duplicates() {
        let mut d = det(cfg(SpikeMethod::Mad));
        let mut vals = vec![400.0; 10];
        vals.push(900.0); // only 10 samples: not judged
        assert!(feed(d.as_mut(), &series(0.0, 5.0, &vals)).is_empty());
        let mut d = det(SpikeConfig {
            direction: Direction::Up,
            ..cfg(SpikeMethod::Ewma)
        });
        let mut pts = series(0.0, 5.0, &noise(2, 40, 400.0, 1.0));
        pts.extend([
            (200.0, f64::NAN),
            (205.0, 100.0),
            (210.0, 400.0),
            (210.0, 900.0),
        ]);
        assert!(
            feed(d.as_mut(), &pts).is_empty(),
            "a dip with direction up, NaN, a duplicate ts"
        );
        let out = feed(d.as_mut(), &[(215.0, 400.5), (220.0, 900.0)]);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].reason.contains("against the EWMA mean of"),
            "{}",
            out[0].reason
        );
    }

    #[test]
    fn a_time_window_warms_up_again_after_a_long_gap() {
        let c = SpikeConfig {
            window_secs: Some(300.0),
            window_samples: None,
            ..cfg(SpikeMethod::Mad)
        };
        let mut d = det(c.clone());
        let mut pts = series(0.0, 5.0, &noise(4, 60, 400.0, 1.0));
        pts.push((2000.0, 800.0)); // the window is empty after the gap: learned, not judged
        assert!(feed(d.as_mut(), &pts).is_empty());
        let mut pts = series(0.0, 5.0, &noise(4, 60, 400.0, 1.0));
        pts.push((300.0, 800.0));
        let mut d = det(c.clone());
        assert_eq!(feed(d.as_mut(), &pts).len(), 1);
        // EWMA over a time window: the same, and the readings after the gap are not spikes
        // against the single value learned after it.
        let mut d = det(SpikeConfig {
            method: SpikeMethod::Ewma,
            ..c
        });
        let mut pts = series(0.0, 5.0, &noise(4, 60, 400.0, 1.0));
        pts.extend(series(2000.0, 5.0, &noise(5, 60, 800.0, 1.0)));
        assert!(feed(d.as_mut(), &pts).is_empty());
    }

    #[test]
    fn validate_catches_conflicting_windows() {
        let mut p = Vec::new();
        SpikeConfig {
            window_secs: Some(60.0),
            threshold: -1.0,
            ..cfg(SpikeMethod::Mad)
        }
        .validate(&mut p);
        let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["window_samples", "threshold"]);
    }
}
