//! The InfluxDB sink: normalised readings, anomalies and incident changes written as points to
//! an InfluxDB v2 write API (InfluxDB 2.x, or VictoriaMetrics which speaks the same protocol).
//! Per-device history lives here, not in Prometheus (STYLE.md convention 12).
//!
//! The pipeline holds an [`InfluxSink`] handle and hands records over with a non-blocking
//! `try_send` into a bounded queue: the pipeline never waits for InfluxDB, and a full queue is
//! counted as dropped, never as back-pressure. A tokio task ([`writer`]) batches the points by
//! size or interval, writes them with the `influxdb2` crate, and spools batches to disk while
//! the server is unreachable, replaying them oldest-first when it is back ([`spool`]). What
//! becomes a point, with which tags and fields, is in [`point`] and `docs/influxdb.md`.
//!
//! ```yaml
//! influx: {url: "http://influx.city.local:8086", org: city, bucket: citybrain,
//!          token: "...", spool_dir: /var/lib/citybrain/influx-spool}
//! ```

mod config;
mod point;
mod spool;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::InfluxConfig;
pub use point::{Encoded, Encoder, IncidentEvent, Record};
pub use spool::{Evicted, Spool, SpoolFile};

use crate::config::registers::Registry;
use crate::model::{Anomaly, Incident, Reading};
use crate::telemetry::Metrics;

/// Errors starting the sink. (Once running it never fails: write errors are retried, spooled
/// and counted in metrics.)
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// The config did not validate; every problem, `field: message`, joined by `; `.
    #[error("invalid influx config: {0}")]
    Config(String),
    /// `start` was called outside a tokio runtime.
    #[error("the influx sink must be started inside a tokio runtime")]
    NoRuntime,
    /// The spool directory or one of its files could not be used.
    #[error("influx spool {}: {source}", path.display())]
    Spool {
        /// File or directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// influxdb2 could not build its HTTP client (TLS setup).
    #[error("influx client: {0}")]
    Client(String),
}

/// The pipeline's handle on the sink. Cheap to clone; every method returns at once.
#[derive(Clone, Debug)]
pub struct InfluxSink {
    tx: mpsc::Sender<Record>,
    metrics: Arc<Metrics>,
}

impl InfluxSink {
    /// Validates `cfg`, opens the spool (picking up batches an earlier run left) and spawns the
    /// writer task on the current tokio runtime. `departments` maps device id to department
    /// (see [`departments`]). The task ends when `shutdown` turns true or every handle is
    /// dropped, after flushing what is pending; await the returned handle to know it is done.
    pub fn start(
        cfg: InfluxConfig,
        departments: HashMap<String, String>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(InfluxSink, JoinHandle<()>), InfluxError> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            let text: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(InfluxError::Config(text.join("; ")));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| InfluxError::NoRuntime)?;
        let spool = Spool::open(&cfg.spool_dir, cfg.max_spool_bytes)?;
        if !spool.is_empty() {
            tracing::info!(
                batches = spool.len(),
                points = spool.points(),
                "influx spool from an earlier run; sending it first"
            );
        }
        let token = cfg.token.as_ref().map_or("", |t| t.expose());
        // The URL was validated above: influxdb2 panics on one it cannot parse.
        let client = influxdb2::ClientBuilder::new(cfg.url.as_str(), cfg.org.as_str(), token)
            .build()
            .map_err(|e| InfluxError::Client(e.to_string()))?;
        let encoder = point::Encoder::new(&cfg.org, &cfg.bucket, departments);
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let w = writer::Writer::new(cfg, client, encoder, rx, spool, metrics.clone());
        let task = runtime.spawn(w.run(shutdown));
        Ok((InfluxSink { tx, metrics }, task))
    }

    /// Hands over the readings of one message.
    pub fn readings(&self, readings: &[Reading]) {
        if !readings.is_empty() {
            self.send(Record::Readings(readings.to_vec()));
        }
    }

    /// Hands over an anomaly.
    pub fn anomaly(&self, anomaly: &Anomaly) {
        self.send(Record::Anomaly(anomaly.clone()));
    }

    /// Hands over an incident as it stands after a change.
    pub fn incident(&self, incident: &Incident) {
        self.send(Record::Incident(IncidentEvent::from(incident)));
    }

    /// Queues a record without waiting; returns false (and counts the points as dropped) when
    /// the queue is full or the writer has stopped.
    pub fn send(&self, record: Record) -> bool {
        let points = record.points() as u64;
        let reason = match self.tx.try_send(record) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Full(_)) => "queue_full",
            Err(mpsc::error::TrySendError::Closed(_)) => "stopped",
        };
        self.metrics
            .influx_dropped_points_total
            .inc_by([reason], points);
        false
    }
}

/// Device id → department, from the device register (for the `department` tag).
pub fn departments(registry: &Registry) -> HashMap<String, String> {
    registry
        .devices
        .values()
        .map(|d| (d.device_id.clone(), d.department.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventTime;

    fn cfg(spool: &std::path::Path) -> InfluxConfig {
        // A port just freed: nothing listens, so every write fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut cfg = InfluxConfig::new(format!("http://127.0.0.1:{port}"), "city", "cb");
        cfg.spool_dir = spool.to_path_buf();
        cfg.flush_interval_ms = 20;
        cfg
    }

    #[test]
    fn start_refuses_bad_config_and_a_missing_runtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Arc::new(Metrics::new());
        let (_tx, rx) = watch::channel(false);
        let mut bad = cfg(dir.path());
        bad.url = "not a url".into();
        bad.batch_size = 0;
        match InfluxSink::start(bad, HashMap::new(), m.clone(), rx.clone()) {
            Err(InfluxError::Config(text)) => {
                assert!(
                    text.contains("url:") && text.contains("batch_size:"),
                    "{text}"
                )
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        let err = InfluxSink::start(cfg(dir.path()), HashMap::new(), m, rx).expect_err("no rt");
        assert!(matches!(err, InfluxError::NoRuntime), "{err}");
    }

    #[tokio::test]
    async fn runs_without_a_shutdown_sender_and_spools_when_the_handles_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Arc::new(Metrics::new());
        let (tx, rx) = watch::channel(false);
        drop(tx);
        let (sink, task) =
            InfluxSink::start(cfg(dir.path()), HashMap::new(), m.clone(), rx).expect("starts");
        let reading = Reading {
            device_id: "PL-1".into(),
            profile: "pressure-logger".into(),
            metric: "pressure_kpa".into(),
            ts: EventTime(1_795_000_000_000),
            value: 1.0,
            seq: None,
            arrival: EventTime(0),
        };
        sink.readings(&[reading.clone(), reading]);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !task.is_finished(),
            "a dropped shutdown sender does not stop the sink"
        );
        assert!(m.influx_batches_spooled_total.get() >= 1);
        drop(sink);
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("ends once every handle is gone")
            .expect("no panic");
        let spool = Spool::open(dir.path(), 1 << 30).expect("spool");
        assert_eq!(spool.points(), 2);
        assert!(m.influx_write_errors_total.get() >= 1);
    }
}
