//! Latency observations: what exactly the latency histograms measure, in one place.
//!
//! - `citybrain_dataflow_latency_seconds{stage="anomaly"}`: wall clock when the applier thread
//!   takes an anomaly off the dataflow's output, minus the wall-clock arrival of the MQTT
//!   message whose reading made a detector fire ([`crate::model::Anomaly::arrival`]). It
//!   includes decoding, the event-time hold (a reading is judged only once the watermark has
//!   passed it: `allowed_lateness_secs` of newer data) and the output queue. Anomalies raised
//!   by the passing of event time alone (a silence noticed at a watermark) have no arrival and
//!   are not observed.
//! - `citybrain_dataflow_latency_seconds{stage="incident"}`: the same arrival, to the moment the
//!   first incident snapshot holding that anomaly as evidence has been applied to the store
//!   (opened or grown). The correlator emits the snapshots an anomaly causes right after the
//!   anomaly itself, so the anomaly just seen is the only candidate; once matched (or once the
//!   next anomaly comes) it is forgotten, so each anomaly is observed at most once and a later
//!   clear or merge of that incident is never mistaken for it.
//! - Both only when live: in `replay` an arrival is the recording's `t_ms`, not wall clock, so
//!   an observation is skipped when `now - arrival` is negative or over [`LIVE_WINDOW_MS`].
//! - `citybrain_dispatch_latency_seconds{mode}` and `citybrain_ack_latency_seconds{by}`: from the
//!   incident's `detected_at` (the event time its rule was satisfied: the moment it was raised;
//!   `opened_at` is the earlier time of its first evidence) to the dispatcher's or operator's
//!   clock. Device clocks and the server clock agree closely enough live; a negative difference
//!   (a skewed device clock) is skipped, not clamped.

use crate::model::{Anomaly, EventTime, Incident, Phase};

use super::Metrics;

/// An arrival further back than this (1 h) is taken for a replayed recording, not live traffic.
pub const LIVE_WINDOW_MS: i64 = 3_600_000;

/// The server's wall clock as an [`EventTime`].
pub fn wall_now() -> EventTime {
    EventTime(chrono::Utc::now().timestamp_millis())
}

/// Seconds from `arrival` to `now`, when that looks live (0 ..= [`LIVE_WINDOW_MS`]).
pub fn live_latency_secs(arrival: EventTime, now: EventTime) -> Option<f64> {
    let ms = now.0.checked_sub(arrival.0)?;
    (0..=LIVE_WINDOW_MS)
        .contains(&ms)
        .then_some(ms as f64 / 1000.0)
}

/// Who answered an incident first ([`Metrics::observe_ack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responder {
    /// An operator acknowledged it (`open` → `acknowledged`).
    Operator,
    /// A crew accepted a dispatch while it was still `open` (`open` → `dispatched`).
    Crew,
}

impl Responder {
    /// The `by` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Responder::Operator => "operator",
            Responder::Crew => "crew",
        }
    }
}

impl Metrics {
    /// Incident raised at `detected_at` → a department's first crew sent at `sent_at`; `mode`
    /// is `automatic` or `operator_confirmed`. A negative span (clock skew) is skipped.
    pub fn observe_dispatch(&self, mode: &str, detected_at: EventTime, sent_at: EventTime) {
        if let Some(ms) = sent_at.0.checked_sub(detected_at.0).filter(|ms| *ms >= 0) {
            self.dispatch_latency_seconds
                .observe([mode], ms as f64 / 1000.0);
        }
    }

    /// Incident raised at `detected_at` → its first acknowledgement at `at`. A negative span
    /// (clock skew) is skipped.
    pub fn observe_ack(&self, by: Responder, detected_at: EventTime, at: EventTime) {
        if let Some(ms) = at.0.checked_sub(detected_at.0).filter(|ms| *ms >= 0) {
            self.ack_latency_seconds
                .observe([by.as_str()], ms as f64 / 1000.0);
        }
    }
}

/// The anomaly last seen, waiting for the incident snapshot it may cause.
#[derive(Debug, Clone)]
struct Pending {
    device_id: String,
    signal: String,
    metric: String,
    ts: EventTime,
    arrival: EventTime,
}

/// Observes arrival → anomaly and arrival → incident for the thread that applies the
/// dataflow's output in order (see the module doc for what is measured).
#[derive(Debug, Default)]
pub struct PipelineLatency {
    pending: Option<Pending>,
}

impl PipelineLatency {
    /// An anomaly came off the dataflow at `now`.
    pub fn anomaly(&mut self, metrics: &Metrics, a: &Anomaly, now: EventTime) {
        self.pending = None;
        let Some(arrival) = a.arrival else {
            return;
        };
        if let Some(secs) = live_latency_secs(arrival, now) {
            metrics.dataflow_latency_seconds.observe(["anomaly"], secs);
        }
        // Only raised anomalies become evidence.
        if a.phase == Phase::Raised {
            self.pending = Some(Pending {
                device_id: a.device_id.clone(),
                signal: a.signal.clone(),
                metric: a.metric.clone(),
                ts: a.ts,
                arrival,
            });
        }
    }

    /// An incident snapshot was applied at `now`; `incident` is the result as stored.
    pub fn incident(&mut self, metrics: &Metrics, incident: &Incident, now: EventTime) {
        let Some(p) = &self.pending else {
            return;
        };
        let holds = incident.evidence.iter().any(|e| {
            e.ts == p.ts
                && e.device_id == p.device_id
                && e.signal == p.signal
                && e.metric == p.metric
        });
        if !holds {
            return;
        }
        if let Some(secs) = live_latency_secs(p.arrival, now) {
            metrics.dataflow_latency_seconds.observe(["incident"], secs);
        }
        self.pending = None;
    }
}
