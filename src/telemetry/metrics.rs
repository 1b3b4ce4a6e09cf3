//! The one place every Prometheus metric name is defined.
//!
//! Labels are closed, low-cardinality sets (profile, reason, signal, phase, kind, status, stage,
//! route template, status code). A device id is never a label: per-device data belongs in the
//! time-series store, not in Prometheus (STYLE.md convention 12).

use prometheus::{Registry, TextEncoder};

use super::handles::{Counter, CounterVec, Gauge, GaugeVec, HistogramVec};
use super::latency::Responder;

/// Every metric name exported, for tests and documentation.
pub const METRIC_NAMES: &[&str] = &[
    "citybrain_messages_total",
    "citybrain_bytes_total",
    "citybrain_readings_total",
    "citybrain_dead_letters_total",
    "citybrain_duplicates_total",
    "citybrain_late_total",
    "citybrain_future_total",
    "citybrain_anomalies_total",
    "citybrain_incidents_opened_total",
    "citybrain_incident_updates_total",
    "citybrain_incidents",
    "citybrain_ingest_queue_depth",
    "citybrain_dataflow_output_queue_depth",
    "citybrain_dataflow_watermark_lag_seconds",
    "citybrain_dataflow_latency_seconds",
    "citybrain_mqtt_connected",
    "citybrain_mqtt_reconnects_total",
    "citybrain_mqtt_shed_qos0_total",
    "citybrain_api_requests_total",
    "citybrain_influx_points_written_total",
    "citybrain_influx_write_errors_total",
    "citybrain_influx_batches_spooled_total",
    "citybrain_influx_spool_bytes",
    "citybrain_influx_up",
    "citybrain_influx_dropped_points_total",
    "citybrain_dispatches_total",
    "citybrain_dispatch_escalations_total",
    "citybrain_dispatch_latency_seconds",
    "citybrain_ack_latency_seconds",
    "citybrain_webhook_deliveries_total",
    "citybrain_webhook_dropped_total",
];

/// Why the InfluxDB sink dropped points (closed set, all exported from the start).
const INFLUX_DROP_REASONS: &[&str] = &[
    "queue_full",
    "spool_full",
    "spool_error",
    "rejected",
    "invalid",
    "stopped",
];

/// Content type of [`Metrics::encode`] (Prometheus text exposition format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Dead-letter reason classes known at build time (decoding's `no_profile`, `malformed`,
/// `bad_timestamp`, `device_mismatch`; the gate's `late`, `future`), exported at zero from the
/// start so a dashboard's `rate()` shows 0 rather than "no data" before the first one.
const DEAD_LETTER_REASONS: &[&str] = &[
    "no_profile",
    "malformed",
    "bad_timestamp",
    "device_mismatch",
    "late",
    "future",
];

/// Arrival → anomaly / incident buckets, in seconds. A reading is judged only once the
/// event-time watermark has passed it, i.e. after `allowed_lateness_secs` (300 s by default) of
/// newer data, so live latencies sit just above that hold: the fine steps between 300 and 420 s
/// resolve the default; the small ones cover `allowed_lateness_secs: 0` and replay-like bursts.
const PIPELINE_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 240.0, 300.0, 310.0, 330.0,
    360.0, 420.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// Incident → dispatch / acknowledgement buckets, in seconds: an automatic dispatch within a
/// second, an operator within minutes, a forgotten incident within hours.
const RESPONSE_BUCKETS: &[f64] = &[
    0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
    43200.0,
];

/// All of citybrain's metrics, registered in their own registry (not the global default one, so
/// tests can build as many as they like). Cheap to share in an `Arc`; every handle is lock-free.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// MQTT messages received, by device profile (`unknown` when no profile matched).
    pub messages_total: CounterVec<1>,
    /// Payload bytes received, by device profile.
    pub bytes_total: CounterVec<1>,
    /// Readings decoded, by device profile.
    pub readings_total: CounterVec<1>,
    /// Messages or readings set aside, by reason class (`malformed`, `late`, `no_profile`, ...).
    pub dead_letters_total: CounterVec<1>,
    /// Readings dropped as duplicates (same device, metric, time and sequence).
    pub duplicates_total: Counter,
    /// Readings older than the watermark allows.
    pub late_total: Counter,
    /// Readings too far ahead of the wall clock to trust.
    pub future_total: Counter,
    /// Anomalies emitted, by pipeline signal and phase (`raised` / `cleared`).
    pub anomalies_total: CounterVec<2>,
    /// Incidents opened, by kind.
    pub incidents_opened_total: CounterVec<1>,
    /// Incident snapshots applied to existing incidents, by kind.
    pub incident_updates_total: CounterVec<1>,
    /// Incidents currently held, by kind and lifecycle status (set by the incident store).
    pub incidents: GaugeVec<2>,
    /// Messages waiting between the MQTT source and the dataflow.
    pub ingest_queue_depth: Gauge,
    /// Dataflow outputs (anomalies, snapshots, rejections) waiting for the thread that applies
    /// them to the store; that channel is unbounded, so this is the one to watch.
    pub dataflow_output_queue_depth: Gauge,
    /// Wall clock minus the dataflow's event-time watermark, in seconds.
    pub dataflow_watermark_lag_seconds: Gauge,
    /// Arrival wall clock to output, by stage (`anomaly` | `incident`), in seconds; live only
    /// (see [`super::PipelineLatency`] for exactly what is measured).
    pub dataflow_latency_seconds: HistogramVec<1>,
    /// 1 while the MQTT connection is up, 0 otherwise.
    pub mqtt_connected: Gauge,
    /// MQTT reconnect attempts.
    pub mqtt_reconnects_total: Counter,
    /// QoS 0 messages shed because the dataflow was overloaded.
    pub mqtt_shed_qos0_total: Counter,
    /// API requests, by route template (`/api/v1/incidents/{id}`) and status code.
    pub api_requests_total: CounterVec<2>,
    /// Points the InfluxDB server acknowledged.
    pub influx_points_written_total: Counter,
    /// Failed InfluxDB write requests (each retried later, or dropped if rejected as malformed).
    pub influx_write_errors_total: Counter,
    /// Batches written to the InfluxDB spool instead of the server.
    pub influx_batches_spooled_total: Counter,
    /// Size of the InfluxDB spool on disk, in bytes (0 when everything has been delivered).
    pub influx_spool_bytes: Gauge,
    /// 1 while the last InfluxDB write succeeded, 0 after a failed one.
    pub influx_up: Gauge,
    /// Points the InfluxDB sink gave up on, by reason (`queue_full`, `spool_full`, `spool_error`,
    /// `rejected`, `invalid`, `stopped`).
    pub influx_dropped_points_total: CounterVec<1>,
    /// Crew dispatches sent, by mode (`automatic`, `operator_confirmed`).
    pub dispatches_total: CounterVec<1>,
    /// Dispatch escalations, by reason (`declined`, `no_answer`, `no_crew_available`).
    pub dispatch_escalations_total: CounterVec<1>,
    /// Incident raised (`detected_at`) → first crew of a department's case sent, by mode.
    pub dispatch_latency_seconds: HistogramVec<1>,
    /// Incident raised (`detected_at`) → first response: an operator's ack or a crew's
    /// acceptance, by `by` (`operator` | `crew`).
    pub ack_latency_seconds: HistogramVec<1>,
    /// Webhook POST attempts, by webhook name (from config) and outcome.
    pub webhook_deliveries_total: CounterVec<2>,
    /// Webhook events given up on, by webhook name and reason.
    pub webhook_dropped_total: CounterVec<2>,
}

impl Metrics {
    /// Creates and registers every metric. Never panics: a registration problem is logged and the
    /// metric keeps working unexported.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let m = Metrics {
            messages_total: CounterVec::new(
                &r,
                "citybrain_messages_total",
                "MQTT messages received, by device profile.",
                ["profile"],
            ),
            bytes_total: CounterVec::new(
                &r,
                "citybrain_bytes_total",
                "MQTT payload bytes received, by device profile.",
                ["profile"],
            ),
            readings_total: CounterVec::new(
                &r,
                "citybrain_readings_total",
                "Readings decoded, by device profile.",
                ["profile"],
            ),
            dead_letters_total: CounterVec::new(
                &r,
                "citybrain_dead_letters_total",
                "Messages or readings set aside as dead letters, by reason class.",
                ["reason"],
            ),
            duplicates_total: Counter::new(
                &r,
                "citybrain_duplicates_total",
                "Readings dropped as duplicates.",
            ),
            late_total: Counter::new(
                &r,
                "citybrain_late_total",
                "Readings behind the event-time watermark.",
            ),
            future_total: Counter::new(
                &r,
                "citybrain_future_total",
                "Readings too far ahead of the wall clock.",
            ),
            anomalies_total: CounterVec::new(
                &r,
                "citybrain_anomalies_total",
                "Anomalies emitted, by signal and phase.",
                ["signal", "phase"],
            ),
            incidents_opened_total: CounterVec::new(
                &r,
                "citybrain_incidents_opened_total",
                "Incidents opened, by kind.",
                ["kind"],
            ),
            incident_updates_total: CounterVec::new(
                &r,
                "citybrain_incident_updates_total",
                "Snapshots applied to existing incidents, by kind.",
                ["kind"],
            ),
            incidents: GaugeVec::new(
                &r,
                "citybrain_incidents",
                "Incidents held, by kind and lifecycle status.",
                ["kind", "status"],
            ),
            ingest_queue_depth: Gauge::new(
                &r,
                "citybrain_ingest_queue_depth",
                "Messages queued between the MQTT source and the dataflow.",
            ),
            dataflow_output_queue_depth: Gauge::new(
                &r,
                "citybrain_dataflow_output_queue_depth",
                "Dataflow outputs waiting to be applied to the incident store.",
            ),
            dataflow_watermark_lag_seconds: Gauge::new(
                &r,
                "citybrain_dataflow_watermark_lag_seconds",
                "Wall clock minus the event-time watermark, in seconds.",
            ),
            dataflow_latency_seconds: HistogramVec::new(
                &r,
                "citybrain_dataflow_latency_seconds",
                "Reading arrival (wall clock) to anomaly emitted or incident applied, by stage; live only.",
                ["stage"],
                PIPELINE_BUCKETS,
            ),
            mqtt_connected: Gauge::new(
                &r,
                "citybrain_mqtt_connected",
                "1 while connected to the MQTT broker, else 0.",
            ),
            mqtt_reconnects_total: Counter::new(
                &r,
                "citybrain_mqtt_reconnects_total",
                "MQTT reconnect attempts.",
            ),
            mqtt_shed_qos0_total: Counter::new(
                &r,
                "citybrain_mqtt_shed_qos0_total",
                "QoS 0 messages shed under overload.",
            ),
            api_requests_total: CounterVec::new(
                &r,
                "citybrain_api_requests_total",
                "API requests, by route template and HTTP status code.",
                ["route", "code"],
            ),
            influx_points_written_total: Counter::new(
                &r,
                "citybrain_influx_points_written_total",
                "Points acknowledged by the InfluxDB server.",
            ),
            influx_write_errors_total: Counter::new(
                &r,
                "citybrain_influx_write_errors_total",
                "Failed InfluxDB write requests.",
            ),
            influx_batches_spooled_total: Counter::new(
                &r,
                "citybrain_influx_batches_spooled_total",
                "Batches spooled to disk while InfluxDB was unreachable or behind.",
            ),
            influx_spool_bytes: Gauge::new(
                &r,
                "citybrain_influx_spool_bytes",
                "Bytes waiting in the InfluxDB spool.",
            ),
            influx_up: Gauge::new(
                &r,
                "citybrain_influx_up",
                "1 while the last InfluxDB write succeeded, else 0.",
            ),
            influx_dropped_points_total: CounterVec::new(
                &r,
                "citybrain_influx_dropped_points_total",
                "Points the InfluxDB sink gave up on, by reason.",
                ["reason"],
            ),
            dispatches_total: CounterVec::new(
                &r,
                "citybrain_dispatches_total",
                "Crew dispatches sent (first crews and escalations), by mode.",
                ["mode"],
            ),
            dispatch_escalations_total: CounterVec::new(
                &r,
                "citybrain_dispatch_escalations_total",
                "Dispatch escalations (declined, no answer, no crew available), by reason.",
                ["reason"],
            ),
            dispatch_latency_seconds: HistogramVec::new(
                &r,
                "citybrain_dispatch_latency_seconds",
                "Incident raised (detected_at) to the first crew of each department sent, by mode.",
                ["mode"],
                RESPONSE_BUCKETS,
            ),
            ack_latency_seconds: HistogramVec::new(
                &r,
                "citybrain_ack_latency_seconds",
                "Incident raised (detected_at) to first acknowledgement, by operator or crew.",
                ["by"],
                RESPONSE_BUCKETS,
            ),
            webhook_deliveries_total: CounterVec::new(
                &r,
                "citybrain_webhook_deliveries_total",
                "Webhook POST attempts, by webhook and outcome (delivered, failed, refused).",
                ["webhook", "outcome"],
            ),
            webhook_dropped_total: CounterVec::new(
                &r,
                "citybrain_webhook_dropped_total",
                "Webhook events dropped, by webhook and reason (queue_full, gave_up, refused, lagged).",
                ["webhook", "reason"],
            ),
            registry: r,
        };
        // Both stages are a closed set: export them from the start so dashboards see zeros
        // instead of "no data" before the first incident.
        for stage in ["anomaly", "incident"] {
            m.dataflow_latency_seconds.count([stage]);
        }
        for reason in INFLUX_DROP_REASONS {
            m.influx_dropped_points_total.get([reason]);
        }
        for mode in ["automatic", "operator_confirmed"] {
            m.dispatches_total.get([mode]);
            m.dispatch_latency_seconds.count([mode]);
        }
        for by in [Responder::Operator, Responder::Crew] {
            m.ack_latency_seconds.count([by.as_str()]);
        }
        for reason in DEAD_LETTER_REASONS {
            m.dead_letters_total.get([reason]);
        }
        for reason in ["declined", "no_answer", "no_crew_available"] {
            m.dispatch_escalations_total.get([reason]);
        }
        m
    }

    /// The registry, for callers that want to add process or runtime collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        match TextEncoder::new().encode_to_string(&self.registry.gather()) {
            Ok(text) => text,
            Err(err) => {
                // Only possible with a broken metric family; an empty scrape beats a 500 loop.
                tracing::error!(error = %err, "metrics encoding failed");
                String::new()
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
