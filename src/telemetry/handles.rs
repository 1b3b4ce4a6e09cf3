//! Typed metric handles: thin wrappers over prometheus metrics that fix the label arity at
//! compile time and can never panic.
//!
//! prometheus' `with_label_values` panics when the number of label values is wrong, and its
//! constructors return `Result`. These wrappers take labels as `[&str; N]` (so a wrong arity does
//! not compile) and hold `Option<metric>`: if construction ever failed (only possible with an
//! invalid constant name, which the tests rule out) the handle logs once at startup and then
//! silently does nothing, rather than taking the pipeline down.

use prometheus::{
    Gauge as PGauge, GaugeVec as PGaugeVec, HistogramOpts, HistogramVec as PHistogramVec,
};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Builds a metric, registers it, and degrades to "no metric" / "unregistered" on errors.
fn build<M>(registry: &Registry, name: &str, made: prometheus::Result<M>) -> Option<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    match made {
        Ok(metric) => {
            if let Err(err) = registry.register(Box::new(metric.clone())) {
                // Still usable, just not exported; better than refusing to start.
                tracing::error!(metric = name, error = %err, "metric not registered");
            }
            Some(metric)
        }
        Err(err) => {
            tracing::error!(metric = name, error = %err, "metric could not be created");
            None
        }
    }
}

/// A monotonically increasing count without labels.
#[derive(Clone, Debug)]
pub struct Counter(Option<IntCounter>);

impl Counter {
    pub(super) fn new(registry: &Registry, name: &str, help: &str) -> Self {
        Counter(build(registry, name, IntCounter::new(name, help)))
    }

    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        if let Some(c) = &self.0 {
            c.inc_by(n);
        }
    }

    /// Raises the count to `total` (never lowers it): mirrors a count kept elsewhere, such as
    /// the MQTT source's own atomics. Meant for a single writer; two concurrent callers could
    /// both add the same difference.
    pub fn advance_to(&self, total: u64) {
        let now = self.get();
        if total > now {
            self.inc_by(total - now);
        }
    }

    /// Current value (0 if the metric could not be created); for tests and diagnostics.
    pub fn get(&self) -> u64 {
        self.0.as_ref().map_or(0, IntCounter::get)
    }
}

/// A count partitioned by `N` labels.
#[derive(Clone, Debug)]
pub struct CounterVec<const N: usize>(Option<IntCounterVec>);

impl<const N: usize> CounterVec<N> {
    pub(super) fn new(registry: &Registry, name: &str, help: &str, labels: [&str; N]) -> Self {
        CounterVec(build(
            registry,
            name,
            IntCounterVec::new(Opts::new(name, help), &labels),
        ))
    }

    /// Adds one to the series with these label values.
    pub fn inc(&self, labels: [&str; N]) {
        self.inc_by(labels, 1);
    }

    /// Adds `n` to the series with these label values.
    pub fn inc_by(&self, labels: [&str; N], n: u64) {
        if let Some(Ok(c)) = self
            .0
            .as_ref()
            .map(|v| v.get_metric_with_label_values(&labels))
        {
            c.inc_by(n);
        }
    }

    /// Current value of one series (creates it at 0 if absent); for tests and diagnostics.
    pub fn get(&self, labels: [&str; N]) -> u64 {
        match self
            .0
            .as_ref()
            .map(|v| v.get_metric_with_label_values(&labels))
        {
            Some(Ok(c)) => c.get(),
            _ => 0,
        }
    }
}

/// A value that goes up and down, without labels.
#[derive(Clone, Debug)]
pub struct Gauge(Option<PGauge>);

impl Gauge {
    pub(super) fn new(registry: &Registry, name: &str, help: &str) -> Self {
        Gauge(build(registry, name, PGauge::new(name, help)))
    }

    /// Sets the value.
    pub fn set(&self, value: f64) {
        if let Some(g) = &self.0 {
            g.set(value);
        }
    }

    /// Current value (0 if the metric could not be created).
    pub fn get(&self) -> f64 {
        self.0.as_ref().map_or(0.0, PGauge::get)
    }
}

/// A value that goes up and down, partitioned by `N` labels.
#[derive(Clone, Debug)]
pub struct GaugeVec<const N: usize>(Option<PGaugeVec>);

impl<const N: usize> GaugeVec<N> {
    pub(super) fn new(registry: &Registry, name: &str, help: &str, labels: [&str; N]) -> Self {
        GaugeVec(build(
            registry,
            name,
            PGaugeVec::new(Opts::new(name, help), &labels),
        ))
    }

    /// Sets the series with these label values.
    pub fn set(&self, labels: [&str; N], value: f64) {
        if let Some(Ok(g)) = self
            .0
            .as_ref()
            .map(|v| v.get_metric_with_label_values(&labels))
        {
            g.set(value);
        }
    }

    /// Current value of one series (creates it at 0 if absent).
    pub fn get(&self, labels: [&str; N]) -> f64 {
        match self
            .0
            .as_ref()
            .map(|v| v.get_metric_with_label_values(&labels))
        {
            Some(Ok(g)) => g.get(),
            _ => 0.0,
        }
    }
}

/// A distribution partitioned by `N` labels.
#[derive(Clone, Debug)]
pub struct HistogramVec<const N: usize>(Option<PHistogramVec>);

impl<const N: usize> HistogramVec<N> {
    pub(super) fn new(
        registry: &Registry,
        name: &str,
        help: &str,
        labels: [&str; N],
        buckets: &[f64],
    ) -> Self {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        HistogramVec(build(registry, name, PHistogramVec::new(opts, &labels)))
    }

    /// Records one observation in the series with these label values.
    pub fn observe(&self, labels: [&str; N], value: f64) {
        if let Some(Ok(h)) = self
            .0
            .as_ref()
            .map(|v| v.get_metric_with_label_values(&labels))
        {
            h.observe(value);
        }
    }

    /// Number of observations in one series (creates it empty if absent).
    pub fn count(&self, labels: [&str; N]) -> u64 {
        match self
            .0
            .as_ref()
            .map(|v| v.get_metric_with_label_values(&labels))
        {
            Some(Ok(h)) => h.get_sample_count(),
            _ => 0,
        }
    }
}
