//! The detector bank: every detector instance of one worker, keyed by device, created on the
//! device's first reading from the pipeline signals that apply to its profile and metric.
//!
//! Pure (no timely): the dataflow operator drives it, and the oracle test drives the very same
//! bank from a plain loop to prove the dataflow adds nothing and loses nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::pipeline::{PipelineSet, SignalConfig};
use crate::config::profile::ProfileSet;
use crate::detect::{self, Detector, DetectorConfig, DetectorContext};
use crate::model::{Anomaly, EventTime, Reading};

/// `metric: "*"` on a signal.
const ANY_METRIC: &str = "*";

/// One detector instance and the context it was built with.
struct Instance {
    ctx: DetectorContext,
    profile: String,
    detector: Box<dyn Detector>,
}

/// Detector instances of one worker.
pub struct DetectorBank {
    pipelines: Arc<PipelineSet>,
    profiles: Arc<ProfileSet>,
    /// device → (signal, metric key) → instance; BTreeMaps so watermark sweeps run in a fixed
    /// order.
    devices: BTreeMap<String, BTreeMap<(String, String), Instance>>,
    /// (profile, metric) → signals that apply and the valid range, computed once per pair.
    routes: HashMap<(String, String), Arc<Route>>,
}

/// Where readings of one (profile, metric) go.
struct Route {
    signals: Vec<String>,
    valid_range: Option<(f64, f64)>,
}

impl DetectorBank {
    /// An empty bank over a pipeline set and the device profiles.
    pub fn new(pipelines: Arc<PipelineSet>, profiles: Arc<ProfileSet>) -> DetectorBank {
        DetectorBank {
            pipelines,
            profiles,
            devices: BTreeMap::new(),
            routes: HashMap::new(),
        }
    }

    /// Number of live detector instances.
    pub fn instances(&self) -> usize {
        self.devices.values().map(BTreeMap::len).sum()
    }

    fn applies(signal: &SignalConfig, profile: &str, metric: &str) -> bool {
        let profile_ok = signal.profiles.iter().any(|p| p == "*" || p == profile);
        let metric_ok = signal.metric == metric
            || (signal.metric == ANY_METRIC
                && (matches!(signal.detector, DetectorConfig::Silence(_))
                    || !metric.starts_with("event.")));
        profile_ok && metric_ok
    }

    fn route(&mut self, profile: &str, metric: &str) -> Arc<Route> {
        let key = (profile.to_string(), metric.to_string());
        if let Some(r) = self.routes.get(&key) {
            return r.clone();
        }
        let signals: Vec<String> = self
            .pipelines
            .signals
            .values()
            .filter(|s| Self::applies(s, profile, metric))
            .map(|s| s.name.clone())
            .collect();
        let valid_range = self
            .profiles
            .metric_info(profile, metric)
            .and_then(|i| i.valid_range);
        let r = Arc::new(Route {
            signals,
            valid_range,
        });
        self.routes.insert(key, r.clone());
        r
    }

    /// Feeds one reading (readings must come in event-time order). Conditions judged by the
    /// absence of data are first brought up to the reading's time, so a silence that ended
    /// with this reading is reported whatever the watermark granularity.
    ///
    /// A value outside the profile's valid range is a faulty device talking, not the city: it
    /// reaches only the detectors that judge device health (`out_of_range`, `silence`), so a
    /// station reporting PM2.5 = 9999 raises a device fault, not a pollution episode.
    pub fn observe(&mut self, r: &Reading, out: &mut Vec<Anomaly>) {
        let route = self.route(&r.profile, &r.metric);
        if route.signals.is_empty() {
            return;
        }
        let plausible = route
            .valid_range
            .is_none_or(|(lo, hi)| r.value >= lo && r.value <= hi);
        let interval = self
            .profiles
            .interval_secs(&r.profile)
            .filter(|v| *v > 0.0)
            .unwrap_or(60.0);
        let device = self.devices.entry(r.device_id.clone()).or_default();
        for name in &route.signals {
            let Some(signal) = self.pipelines.signals.get(name) else {
                continue;
            };
            let health = matches!(
                signal.detector,
                DetectorConfig::OutOfRange(_) | DetectorConfig::Silence(_)
            );
            if !plausible && !health {
                continue;
            }
            let whole_device = signal.metric == ANY_METRIC
                && matches!(signal.detector, DetectorConfig::Silence(_));
            let metric_key = if whole_device {
                ANY_METRIC.to_string()
            } else {
                r.metric.clone()
            };
            let inst = device
                .entry((name.clone(), metric_key.clone()))
                .or_insert_with(|| {
                    let ctx = context(&self.profiles, r, name, &metric_key, interval);
                    let detector = detect::build(&signal.detector, &ctx);
                    Instance {
                        ctx,
                        profile: r.profile.clone(),
                        detector,
                    }
                });
            out.extend(inst.detector.on_watermark(r.ts));
            if let Some(mut a) = inst.detector.observe(r) {
                // For the arrival → anomaly latency metric only. Not on the anomalies of
                // on_watermark above: the dataflow may emit those at a tick instead, and the
                // oracle tests require both paths to produce equal anomalies.
                a.arrival = Some(r.arrival);
                out.push(a);
            }
        }
    }

    /// Swaps in new definitions. Detectors whose signal definition and context (unit, valid
    /// range, interval) are unchanged keep their state; the others are dropped and rebuilt from
    /// the new definition on the device's next reading.
    pub fn reload(&mut self, pipelines: Arc<PipelineSet>, profiles: Arc<ProfileSet>) {
        let old = std::mem::replace(&mut self.pipelines, pipelines);
        self.profiles = profiles;
        self.routes.clear();
        let (new, profiles) = (&self.pipelines, &self.profiles);
        for device in self.devices.values_mut() {
            device.retain(|(signal, _), inst| {
                let same_signal = matches!(
                    (old.signals.get(signal), new.signals.get(signal)),
                    (Some(a), Some(b)) if a == b
                );
                let interval = profiles
                    .interval_secs(&inst.profile)
                    .filter(|v| *v > 0.0)
                    .unwrap_or(60.0);
                let probe = Reading {
                    device_id: inst.ctx.device_id.clone(),
                    profile: inst.profile.clone(),
                    metric: inst.ctx.metric.clone(),
                    ts: EventTime(0),
                    value: 0.0,
                    seq: None,
                    arrival: EventTime(0),
                };
                let ctx = context(profiles, &probe, signal, &inst.ctx.metric, interval);
                same_signal && ctx == inst.ctx
            });
        }
    }

    /// Event time reached `watermark` for every device of this bank.
    pub fn on_watermark(&mut self, watermark: EventTime, out: &mut Vec<Anomaly>) {
        for device in self.devices.values_mut() {
            for inst in device.values_mut() {
                out.extend(inst.detector.on_watermark(watermark));
            }
        }
    }
}

/// The context a detector for `signal` on `r`'s device and `metric_key` is built with.
fn context(
    profiles: &ProfileSet,
    r: &Reading,
    signal: &str,
    metric_key: &str,
    interval_secs: f64,
) -> DetectorContext {
    let whole_device = metric_key == ANY_METRIC;
    let info = if whole_device {
        None
    } else {
        profiles.metric_info(&r.profile, metric_key)
    };
    DetectorContext {
        device_id: r.device_id.clone(),
        metric: metric_key.to_string(),
        signal: signal.to_string(),
        valid_range: info.as_ref().and_then(|i| i.valid_range),
        unit: info.map(|i| i.unit).unwrap_or_default(),
        interval_secs,
    }
}

/// Sort key that fixes the processing order of readings with equal event time.
pub fn reading_order(a: &Reading, b: &Reading) -> std::cmp::Ordering {
    (a.ts, &a.device_id, &a.metric, a.value.to_bits()).cmp(&(
        b.ts,
        &b.device_id,
        &b.metric,
        b.value.to_bits(),
    ))
}

/// Sort key that fixes the processing order of anomalies with equal event time.
pub fn anomaly_order(a: &Anomaly, b: &Anomaly) -> std::cmp::Ordering {
    (a.ts, &a.device_id, &a.signal, &a.metric, a.phase).cmp(&(
        b.ts,
        &b.device_id,
        &b.signal,
        &b.metric,
        b.phase,
    ))
}
