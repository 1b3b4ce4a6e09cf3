//! `seasonal`: a value unusual *for its time of day* (or time of week), so the morning traffic
//! peak or the evening pressure dip is normal while the same value at 14:00 is not.
//!
//! - The period (`day` or `week`) is cut into buckets of `bucket_mins` minutes of local time
//!   (UTC + `utc_offset_mins`; a fixed offset, no DST rules). Each bucket learns, across days, an
//!   EWMA (weight `ewma_alpha` per day) of the bucket's daily mean and of its daily mean square,
//!   hence a baseline mean and σ covering both the spread within the bucket and day-to-day
//!   variation. An occurrence of a bucket (e.g. today 14:00–15:00) is folded in when the bucket
//!   is next visited, so today's readings are always judged against earlier days only.
//! - A bucket judges only once it has learned `min_days` occurrences (days for `period: day`,
//!   weeks for `period: week`).
//! - Condition: deviation ≥ `deviation_pct` % of the baseline and/or |z| ≥ `z` (σ units), in the
//!   watched `direction`; when both are set, both must hold (a material *and* unusual change).
//!   σ is floored at `min_scale` (metric units) or 0.1 % of |baseline|. A baseline of 0 has no
//!   percentage: the `deviation_pct` criterion then never holds.
//! - Raised at the reading that completes `min_duration_secs` (s, shared gap rule, see `common`);
//!   Cleared at the first reading no longer anomalous.
//! - Anomalous readings are learned clamped to the edge of the normal band, so an incident
//!   barely teaches the baseline but a lasting change is still learned, slowly.
//! - Score = min(1, 0.5 × r), r the smaller of deviation/`deviation_pct` and |z|/`z` (the ones set).
//!   Per-reading grade ([`super::Detector::score`]): r / (1 + r) in the watched direction.

use serde::{Deserialize, Serialize};

use super::common::{
    graded_score, max_gap_ms, non_negative, num, pct, positive, problem, ratio_score, secs,
    side_word, Direction, Emit, Problems, Streak, ValueDetector,
};
use super::window::floored_scale;
use super::DetectorContext;
use crate::model::{Anomaly, Reading};

/// The cycle the seasonal baseline repeats over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Buckets by time of day.
    Day,
    /// Buckets by day of week and time of day.
    Week,
}

fn d_period() -> Period {
    Period::Day
}
fn d_bucket_mins() -> u32 {
    60
}
fn d_min_days() -> u32 {
    3
}
fn d_ewma_alpha() -> f64 {
    0.2
}

/// Config of the `seasonal` detector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeasonalConfig {
    /// `day` (default) or `week`.
    #[serde(default = "d_period")]
    pub period: Period,
    /// Bucket width in minutes; must divide 1440. Default 60.
    #[serde(default = "d_bucket_mins")]
    pub bucket_mins: u32,
    /// Deviation from the bucket's baseline, in percent of it, that is anomalous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation_pct: Option<f64>,
    /// Deviation in σ units of the bucket that is anomalous. At least one of the two is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    /// `up`, `down` or `both` (default).
    #[serde(default = "Direction::both")]
    pub direction: Direction,
    /// Learned occurrences (days, or weeks for `period: week`) a bucket needs before it judges.
    /// Default 3.
    #[serde(default = "d_min_days")]
    pub min_days: u32,
    /// Weight of each new day in the bucket's EWMA, in (0, 1]. Default 0.2 (≈ the last 9 days).
    #[serde(default = "d_ewma_alpha")]
    pub ewma_alpha: f64,
    /// Offset of the city's local time from UTC in minutes (Hangzhou: 480). Default 0.
    #[serde(default)]
    pub utc_offset_mins: i32,
    /// How long (s, event time) the deviation must hold before it is raised. Default 0.
    #[serde(default)]
    pub min_duration_secs: f64,
    /// Smallest σ (metric units) used for z; default 0.1 % of |baseline|.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_scale: Option<f64>,
}

impl SeasonalConfig {
    pub(crate) fn validate(&self, p: &mut Problems) {
        if self.bucket_mins == 0 || 1440 % self.bucket_mins != 0 {
            problem(
                p,
                "bucket_mins",
                format!("must divide 1440 (a day), got {}", self.bucket_mins),
            );
        }
        if self.deviation_pct.is_none() && self.z.is_none() {
            problem(
                p,
                "deviation_pct",
                "at least one of `deviation_pct` or `z` is required".into(),
            );
        }
        if let Some(d) = self.deviation_pct {
            positive(p, "deviation_pct", d);
        }
        if let Some(z) = self.z {
            positive(p, "z", z);
        }
        if self.min_days == 0 {
            problem(p, "min_days", "must be >= 1, got 0".into());
        }
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            problem(
                p,
                "ewma_alpha",
                format!("must be in (0, 1], got {}", self.ewma_alpha),
            );
        }
        if self.utc_offset_mins.abs() > 1080 {
            problem(
                p,
                "utc_offset_mins",
                format!("must be within ±1080, got {}", self.utc_offset_mins),
            );
        }
        non_negative(p, "min_duration_secs", self.min_duration_secs);
        if let Some(s) = self.min_scale {
            positive(p, "min_scale", s);
        }
    }
}

/// One bucket's running occurrence (e.g. today 14:00–15:00).
#[derive(Debug, Clone, Copy)]
struct Occurrence {
    index: i64,
    n: u32,
    sum: f64,
    sum_sq: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    mean: f64,
    mean_sq: f64,
    days: u32,
    current: Option<Occurrence>,
}

impl Bucket {
    /// Folds the running occurrence into the EWMA if `index` starts a new one.
    fn roll(&mut self, index: i64, alpha: f64) {
        let Some(o) = self.current.filter(|o| o.index != index) else {
            return;
        };
        self.current = None;
        if o.n == 0 {
            return;
        }
        let (m, m2) = (o.sum / o.n as f64, o.sum_sq / o.n as f64);
        if self.days == 0 {
            (self.mean, self.mean_sq) = (m, m2);
        } else {
            self.mean += alpha * (m - self.mean);
            self.mean_sq += alpha * (m2 - self.mean_sq);
        }
        self.days = self.days.saturating_add(1);
    }

    fn learn(&mut self, index: i64, x: f64) {
        let o = self.current.get_or_insert(Occurrence {
            index,
            n: 0,
            sum: 0.0,
            sum_sq: 0.0,
        });
        let (sum, sum_sq) = (o.sum + x, o.sum_sq + x * x);
        // An absurd (finite) value can overflow the sums: skip it rather than poison them.
        if sum.is_finite() && sum_sq.is_finite() {
            (o.n, o.sum, o.sum_sq) = (o.n.saturating_add(1), sum, sum_sq);
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Seasonal {
    cfg: SeasonalConfig,
    emit: Emit,
    max_gap_ms: i64,
    bucket_ms: i64,
    per_day: i64,
    buckets: Vec<Bucket>,
    streak: Streak,
    raised: bool,
    /// Graded score of the last reading (see [`ValueDetector::score`]); `None` while learning.
    last_score: Option<f64>,
}

impl Seasonal {
    pub(crate) fn new(cfg: &SeasonalConfig, ctx: &DetectorContext) -> Self {
        let mins = if cfg.bucket_mins > 0 && 1440 % cfg.bucket_mins == 0 {
            cfg.bucket_mins
        } else {
            60
        };
        let per_day = i64::from(1440 / mins);
        let slots = if cfg.period == Period::Week {
            per_day * 7
        } else {
            per_day
        };
        Seasonal {
            cfg: cfg.clone(),
            emit: Emit::new(ctx, "seasonal"),
            max_gap_ms: max_gap_ms(ctx, cfg.min_duration_secs),
            bucket_ms: i64::from(mins) * 60_000,
            per_day,
            buckets: vec![Bucket::default(); slots as usize],
            streak: Streak::default(),
            raised: false,
            last_score: None,
        }
    }

    /// "14:00", or "Mon 14:00" for weekly buckets (local time).
    fn label(&self, slot: usize) -> String {
        let slot = slot as i64;
        let mins = (slot % self.per_day) * (self.bucket_ms / 60_000);
        let hhmm = format!("{:02}:{:02}", mins / 60, mins % 60);
        if self.cfg.period == Period::Day {
            return hhmm;
        }
        // Local day 0 (1970-01-01) was a Thursday.
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let day = DAYS
            .get(((slot / self.per_day + 3) % 7) as usize)
            .copied()
            .unwrap_or("?");
        format!("{day} {hhmm}")
    }
}

/// A bucket's verdict on one value.
struct Verdict {
    mean: f64,
    sd: f64,
    dev: f64,
    z: f64,
    pct: f64,
    anomalous: bool,
    ratio: f64,
    half_band: f64,
}

impl Seasonal {
    fn judge(&self, b: &Bucket, v: f64) -> Option<Verdict> {
        if b.days < self.cfg.min_days {
            return None;
        }
        let mean = b.mean;
        let sd = floored_scale(
            (b.mean_sq - mean * mean).max(0.0).sqrt(),
            mean,
            self.cfg.min_scale,
        );
        let dev = v - mean;
        let z = dev / sd;
        let pct = if mean.abs() > 1e-9 {
            dev.abs() / mean.abs() * 100.0
        } else {
            0.0
        };
        let mut anomalous = self.cfg.direction.admits(dev);
        let (mut ratio, mut half_band) = (f64::INFINITY, 0.0f64);
        if let Some(p) = self.cfg.deviation_pct {
            anomalous &= mean.abs() > 1e-9 && pct >= p;
            ratio = ratio.min(pct / p);
            half_band = half_band.max(p / 100.0 * mean.abs());
        }
        if let Some(zt) = self.cfg.z {
            anomalous &= z.abs() >= zt;
            ratio = ratio.min(z.abs() / zt);
            half_band = half_band.max(zt * sd);
        }
        Some(Verdict {
            mean,
            sd,
            dev,
            z,
            pct,
            anomalous,
            ratio,
            half_band,
        })
    }
}

impl ValueDetector for Seasonal {
    fn score(&self) -> Option<f64> {
        self.last_score
    }

    fn on_value(&mut self, r: &Reading) -> Option<Anomaly> {
        let v = r.value;
        let local_ms =
            r.ts.0
                .saturating_add(i64::from(self.cfg.utc_offset_mins) * 60_000);
        let index = local_ms.div_euclid(self.bucket_ms);
        let slot = index.rem_euclid(self.buckets.len().max(1) as i64) as usize;
        let mut bucket = *self.buckets.get(slot)?;
        bucket.roll(index, self.cfg.ewma_alpha);
        let verdict = self.judge(&bucket, v);
        self.last_score = verdict.as_ref().map(|j| {
            if self.cfg.direction.admits(j.dev) {
                graded_score(j.ratio)
            } else {
                0.0
            }
        });
        let learned = match &verdict {
            Some(j) if j.anomalous => v.clamp(j.mean - j.half_band, j.mean + j.half_band),
            _ => v,
        };
        bucket.learn(index, learned);
        if let Some(b) = self.buckets.get_mut(slot) {
            *b = bucket;
        }
        let label = self.label(slot);
        let Some(j) = verdict.filter(|j| j.anomalous) else {
            self.streak.reset();
            if !self.raised {
                return None;
            }
            self.raised = false;
            let reason = format!(
                "{} {} back to normal for {label}",
                r.metric,
                self.emit.val(v)
            );
            return Some(self.emit.cleared(r, reason));
        };
        let held = self.streak.hold(r.ts, self.max_gap_ms);
        if self.raised || held < self.cfg.min_duration_secs {
            return None;
        }
        self.raised = true;
        let mut reason = format!(
            "{} {}, {}% {} the {label} baseline of {} (z {:+.1}, σ {}, {} days learned)",
            r.metric,
            self.emit.val(v),
            pct(j.pct),
            side_word(j.dev),
            self.emit.val(j.mean),
            j.z,
            num(j.sd),
            bucket.days
        );
        if self.cfg.min_duration_secs > 0.0 {
            reason.push_str(&format!(" for {}", secs(held)));
        }
        Some(self.emit.raised(r, ratio_score(j.ratio, 1.0), reason))
    }
}

#[cfg(test)]
mod tests;
