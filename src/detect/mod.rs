//! Pure per-device detectors: one instance per (device, pipeline signal), fed that device's
//! readings in event-time order, judging only from event time (never the wall clock).
//!
//! No timely, no tokio: `dataflow/` wraps these in operators. Adding a detector = a file here, a
//! variant in [`DetectorConfig`], an arm in [`build`].

use crate::model::{Anomaly, EventTime, Reading};

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
