//! Telemetry: every Prometheus metric citybrain exports (names, help, labels, buckets) and the
//! tracing setup. Other modules take an `Arc<Metrics>` and call its typed handles; no other module
//! names a metric. See STYLE.md convention 12: no device id is ever a label. What each latency
//! histogram measures is defined in one place, [`latency`] (and `docs/operations.md`).

mod handles;
pub mod latency;
#[cfg(test)]
mod latency_tests;
mod logging;
mod metrics;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod tests;

pub use handles::{Counter, CounterVec, Gauge, GaugeVec, HistogramVec};
pub use latency::{live_latency_secs, wall_now, PipelineLatency, Responder, LIVE_WINDOW_MS};
pub use logging::init_tracing;
pub use metrics::{Metrics, CONTENT_TYPE, METRIC_NAMES};

/// Errors from telemetry setup.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` could not be parsed.
    #[error("invalid log filter {spec:?} in RUST_LOG: {reason}")]
    LogFilter {
        /// The filter as given.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("tracing already initialised: {0}")]
    AlreadyInitialised(String),
}
