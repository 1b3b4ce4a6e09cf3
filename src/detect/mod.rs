//! Pure per-device detectors: one instance per (device, pipeline signal), fed that device's
//! readings in event-time order, judging only from event time (never the wall clock).
//!
//! No timely, no tokio: `dataflow/` wraps these in operators. Adding a detector = a file here, a
//! variant in [`DetectorConfig`], an arm in [`build`] (and in `type_name`/`validate`).
//!
//! # Contract
//! - Deterministic: the same readings (and watermarks) in the same order give the same anomalies.
//! - Each detector emits [`Phase::Raised`](crate::model::Phase) when its condition is established
//!   (ts = the event time it was established, e.g. the reading completing `min_duration_secs`) and
//!   `Cleared` when it ends (score 0); `event` emits only `Raised`. Scores are in [0, 1];
//!   `detector` is the type name below; `signal`, `device_id` come from the [`DetectorContext`];
//!   `metric` is the reading's metric (the context's pattern for `silence`).
//! - Input guard (all but `silence`/`event`, which filter for themselves): readings of other
//!   metrics, NaN/±inf values, and readings not strictly after the previous one of the same metric
//!   (duplicate ts, out of order) are ignored before touching any state. `ctx.metric` may be `*`
//!   or `prefix.*`: each matching metric then gets its own state.
//! - Durations (`min_duration_secs`) count event time from the first reading meeting the condition
//!   to the latest; a gap between consecutive readings longer than 3 × `ctx.interval_secs`
//!   restarts the count (if the interval is unknown: longer than `min_duration_secs`), so a gap
//!   alone never passes for "held". `build` on a config that failed `validate` never panics, but
//!   may never fire.
//!
//! # Detectors (YAML: `type: <name>` plus the fields; units in the field names)
//!
//! | type | what | parameters (default) |
//! |---|---|---|
//! | `threshold` | value past a fixed level | `above`, `below` (one required), `hysteresis` metric units (0), `min_duration_secs` (0) |
//! | `step` | sudden sustained drop/rise vs a rolling median, baseline frozen during the alarm | `direction` down\|up (down), `baseline_secs` (1800), `change_pct` (required), `min_duration_secs` (30), `min_baseline_samples` (10), `max_alarm_secs` (none) |
//! | `rate_of_change` | value moving too fast | `max_rate_per_min` metric units/min (required), `direction` up\|down\|both (both), `min_duration_secs` (0) |
//! | `spike` | one reading far from a robust baseline | `window_secs` or `window_samples` (60 samples), `method` mad\|ewma (mad), `threshold` z (6), `direction` (both), `min_samples` (20), `min_scale` metric units (0.1 % of baseline) |
//! | `seasonal` | unusual for the time of day/week | `period` day\|week (day), `bucket_mins` (60), `deviation_pct` and/or `z` (one required; both = AND), `direction` (both), `min_days` (3), `ewma_alpha` per day (0.2), `utc_offset_mins` (0), `min_duration_secs` (0), `min_scale` |
//! | `cusum` | level shift or slow drift | `k` σ (0.5), `h` σ (12), `direction` (both), `warmup_samples` (120), `max_alarm_secs` (none), `min_scale` |
//! | `flatline` | value frozen (stuck sensor) | `tolerance` metric units (0), `min_duration_secs` (required) |
//! | `silence` | no reading (judged on watermarks) | `after_secs` (`factor` × profile interval), `factor` (3) |
//! | `out_of_range` | physically impossible value | `min`, `max` (profile valid range), `min_samples` consecutive (1) |
//! | `event` | camera event as evidence | `min_confidence` 0..1 (0), `cooldown_secs` (0) |
//!
//! Example pipeline entry:
//! ```yaml
//! type: step
//! direction: down
//! change_pct: 25
//! baseline_secs: 1800
//! min_duration_secs: 30
//! ```
//! Each detector's module ([`threshold`], [`step`], [`rate_of_change`], [`spike`], [`seasonal`],
//! [`cusum`], [`flatline`], [`silence`], [`out_of_range`], [`event`]) documents its exact rules,
//! score formula and edge-case choices; the config structs are re-exported here.

mod common;
pub mod cusum;
pub mod event;
pub mod flatline;
pub mod out_of_range;
pub mod rate_of_change;
pub mod seasonal;
pub mod silence;
pub mod spike;
pub mod step;
#[cfg(test)]
mod testkit;
pub mod threshold;
mod window;

use serde::{Deserialize, Serialize};

pub use common::Direction;
pub use cusum::CusumConfig;
pub use event::EventConfig;
pub use flatline::FlatlineConfig;
pub use out_of_range::OutOfRangeConfig;
pub use rate_of_change::RateOfChangeConfig;
pub use seasonal::{Period, SeasonalConfig};
pub use silence::SilenceConfig;
pub use spike::{SpikeConfig, SpikeMethod};
pub use step::StepConfig;
pub use threshold::ThresholdConfig;

use crate::model::{Anomaly, EventTime, Reading};
use common::Guarded;

/// A per-device, per-signal detector.
///
/// ```
/// use citybrain::detect::Detector;
/// use citybrain::model::{Anomaly, Reading};
/// struct Never;
/// impl Detector for Never {
///     fn observe(&mut self, _r: &Reading) -> Option<Anomaly> { None }
/// }
/// ```
pub trait Detector: Send {
    /// Judges one reading (readings arrive in event-time order, duplicates already removed).
    fn observe(&mut self, reading: &Reading) -> Option<Anomaly>;
    /// Called when event time has advanced to `watermark` (no reading before it will come):
    /// used for conditions judged by the absence of data, such as silence.
    fn on_watermark(&mut self, _watermark: EventTime) -> Vec<Anomaly> {
        Vec::new()
    }
    /// Graded evidence that the reading last passed to [`Detector::observe`] is anomalous, for
    /// every reading rather than only at a raise: in [0, 1), 0.5 at the detector's trigger level
    /// and rising towards 1 without saturating (`r / (1 + r)` of the trigger ratio `r`, e.g.
    /// |z| / `threshold`), so strong evidence keeps its order; [`trigger_ratio`] inverts it.
    /// `None` when that reading was not graded (warm-up, ignored by the input guard) or the
    /// detector does not grade readings (the default). Implemented by `spike` and `seasonal`.
    fn score(&self) -> Option<f64> {
        None
    }
}

/// The trigger ratio `r` behind a graded [`Detector::score`] `s = r / (1 + r)`: `s / (1 - s)`,
/// +inf at 1 (NaN counts as no evidence).
pub fn trigger_ratio(score: f64) -> f64 {
    if score.is_nan() || score <= 0.0 {
        0.0
    } else if score >= 1.0 {
        f64::INFINITY
    } else {
        score / (1.0 - score)
    }
}

/// What a detector instance knows about the stream it watches, from the pipeline and profile.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorContext {
    /// Device watched.
    pub device_id: String,
    /// Metric watched (canonical name), or `*` for every metric of the device.
    pub metric: String,
    /// Pipeline signal name the anomalies carry.
    pub signal: String,
    /// Valid range of the metric from the device profile, if it declares one.
    pub valid_range: Option<(f64, f64)>,
    /// Canonical unit of the metric (`kPa`, `ug/m3`, `km/h`), for reasons; empty if unknown.
    pub unit: String,
    /// Expected reporting interval of the device in seconds, from the profile.
    pub interval_secs: f64,
}

/// One detector of a pipeline, tagged by `type` (see the table in the module doc).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectorConfig {
    /// Value past a fixed level.
    Threshold(ThresholdConfig),
    /// Sudden sustained change against a rolling median.
    Step(StepConfig),
    /// Value changing too fast.
    RateOfChange(RateOfChangeConfig),
    /// One reading far from a robust baseline.
    Spike(SpikeConfig),
    /// Unusual for the time of day or week.
    Seasonal(SeasonalConfig),
    /// Level shift or slow drift (CUSUM).
    Cusum(CusumConfig),
    /// Value frozen.
    Flatline(FlatlineConfig),
    /// No readings.
    Silence(SilenceConfig),
    /// Physically impossible value.
    OutOfRange(OutOfRangeConfig),
    /// Camera event as evidence.
    Event(EventConfig),
}

impl DetectorConfig {
    /// The type name (`threshold`, `rate_of_change`, ...), also `Anomaly::detector`.
    pub fn type_name(&self) -> &'static str {
        match self {
            DetectorConfig::Threshold(_) => "threshold",
            DetectorConfig::Step(_) => "step",
            DetectorConfig::RateOfChange(_) => "rate_of_change",
            DetectorConfig::Spike(_) => "spike",
            DetectorConfig::Seasonal(_) => "seasonal",
            DetectorConfig::Cusum(_) => "cusum",
            DetectorConfig::Flatline(_) => "flatline",
            DetectorConfig::Silence(_) => "silence",
            DetectorConfig::OutOfRange(_) => "out_of_range",
            DetectorConfig::Event(_) => "event",
        }
    }

    /// Every problem with the values, as (field path relative to the detector, message), e.g.
    /// `("min_duration_secs", "must be >= 0, got -3")`. Empty when the config is usable.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        match self {
            DetectorConfig::Threshold(c) => c.validate(&mut p),
            DetectorConfig::Step(c) => c.validate(&mut p),
            DetectorConfig::RateOfChange(c) => c.validate(&mut p),
            DetectorConfig::Spike(c) => c.validate(&mut p),
            DetectorConfig::Seasonal(c) => c.validate(&mut p),
            DetectorConfig::Cusum(c) => c.validate(&mut p),
            DetectorConfig::Flatline(c) => c.validate(&mut p),
            DetectorConfig::Silence(c) => c.validate(&mut p),
            DetectorConfig::OutOfRange(c) => c.validate(&mut p),
            DetectorConfig::Event(c) => c.validate(&mut p),
        }
        p
    }
}

/// A fresh detector for one (device, signal) stream. Never panics, even on an invalid config
/// (validate first: an invalid one may simply never fire).
pub fn build(config: &DetectorConfig, ctx: &DetectorContext) -> Box<dyn Detector> {
    match config {
        DetectorConfig::Threshold(c) => Guarded::boxed(ctx, threshold::Threshold::new(c, ctx)),
        DetectorConfig::Step(c) => Guarded::boxed(ctx, step::Step::new(c, ctx)),
        DetectorConfig::RateOfChange(c) => {
            Guarded::boxed(ctx, rate_of_change::RateOfChange::new(c, ctx))
        }
        DetectorConfig::Spike(c) => Guarded::boxed(ctx, spike::Spike::new(c, ctx)),
        DetectorConfig::Seasonal(c) => Guarded::boxed(ctx, seasonal::Seasonal::new(c, ctx)),
        DetectorConfig::Cusum(c) => Guarded::boxed(ctx, cusum::Cusum::new(c, ctx)),
        DetectorConfig::Flatline(c) => Guarded::boxed(ctx, flatline::Flatline::new(c, ctx)),
        DetectorConfig::OutOfRange(c) => Guarded::boxed(ctx, out_of_range::OutOfRange::new(c, ctx)),
        DetectorConfig::Silence(c) => Box::new(silence::Silence::new(c, ctx)),
        DetectorConfig::Event(c) => Box::new(event::Event::new(c, ctx)),
    }
}

#[cfg(test)]
mod tests;
