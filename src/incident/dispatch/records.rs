//! Dispatch records: what was sent to which crew and how it was answered, the message on the
//! wire, and [`DispatchLog`], where records are kept (in memory now; meant to be backed by the
//! durable incident store's `put`/`scan`).

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{DispatchMode, Escalation};
use crate::incident::IncidentStore;
use crate::model::{EventTime, Location, Severity};

/// Where a dispatch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    /// Published; waiting for the crew's answer.
    Sent,
    /// The crew took the job.
    Accepted,
    /// The crew is at the incident.
    OnScene,
    /// The crew finished (or the incident was resolved while it held the job).
    Resolved,
    /// The crew refused; the case escalated.
    Declined,
    /// No answer in time; the case escalated.
    TimedOut,
    /// The incident ended before the crew answered.
    Cancelled,
}

impl DispatchStatus {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchStatus::Sent => "sent",
            DispatchStatus::Accepted => "accepted",
            DispatchStatus::OnScene => "on_scene",
            DispatchStatus::Resolved => "resolved",
            DispatchStatus::Declined => "declined",
            DispatchStatus::TimedOut => "timed_out",
            DispatchStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            DispatchStatus::Sent,
            DispatchStatus::Accepted,
            DispatchStatus::OnScene,
            DispatchStatus::Resolved,
            DispatchStatus::Declined,
            DispatchStatus::TimedOut,
            DispatchStatus::Cancelled,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// Whether the crew still holds the job.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            DispatchStatus::Sent | DispatchStatus::Accepted | DispatchStatus::OnScene
        )
    }
}

/// The API name of a severity.
pub(crate) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// The evidence in a form a crew can read on a tablet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceSummary {
    /// One sentence (`Water main burst (critical): pressure_drop at PG-0311; water_on_road at
    /// TC-0042.`).
    pub summary: String,
    /// Devices behind the evidence, sorted.
    pub devices: Vec<String>,
}

/// What is published on `city/crews/{crew_id}/dispatch` (QoS 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DispatchMessage {
    /// Dispatch id; the crew's answers on the API name it.
    pub dispatch_id: String,
    /// Incident id; the crew's answers on `city/crews/{crew_id}/ack` name it.
    pub incident_id: String,
    /// Crew addressed.
    pub crew_id: String,
    /// Incident kind.
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Where to go.
    pub location: Location,
    /// What the sensors saw.
    pub evidence: EvidenceSummary,
    /// Department the crew is sent for.
    pub department: String,
    /// When the dispatch was made.
    pub ts: EventTime,
}

impl DispatchMessage {
    /// The MQTT topic it goes to.
    pub fn topic(&self) -> String {
        format!("city/crews/{}/dispatch", self.crew_id)
    }
}

/// One dispatch and its answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dispatch {
    /// `{incident_id}.{department}.{attempt}`: deterministic, so the same events give the same
    /// ids.
    pub dispatch_id: String,
    /// Incident.
    pub incident_id: String,
    /// Department of the case.
    pub department: String,
    /// Crew sent.
    pub crew_id: String,
    /// 1 for the case's first crew, +1 per escalation.
    pub attempt: u32,
    /// Policy mode that led to it.
    pub mode: DispatchMode,
    /// `policy` for automatic dispatch, else the operator's token name.
    pub requested_by: String,
    /// Skills the case asked for (the policy's; see [`super::DispatchPolicy::skills`]).
    #[serde(default)]
    pub skills: Vec<String>,
    /// Distance from the crew to the incident when sent, in metres.
    pub distance_m: f64,
    /// Where it stands.
    pub status: DispatchStatus,
    /// When it was sent (dispatcher clock).
    pub sent_at: EventTime,
    /// Latest change.
    pub updated_at: EventTime,
    /// The message published.
    pub message: DispatchMessage,
}

/// What the dispatch log holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DispatchRecord {
    /// A dispatch (replaces the previous record with its id).
    Dispatch(Dispatch),
    /// An escalation (never changes once written).
    Escalation(Escalation),
}

impl DispatchRecord {
    /// The record's key: the dispatch id, or `escalation/{seq:020}` (sorts by sequence).
    pub fn key(&self) -> String {
        match self {
            DispatchRecord::Dispatch(d) => format!("dispatch/{}", d.dispatch_id),
            DispatchRecord::Escalation(e) => format!("escalation/{:020}", e.seq),
        }
    }
}

/// Why the dispatch log failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchLogError {
    /// The backing store refused the write or read.
    #[error("dispatch log: {0}")]
    Storage(String),
}

/// Where dispatch records are kept: `put` replaces by [`DispatchRecord::key`], `scan` returns
/// every record (in no promised order: readers sort). [`IncidentStore`] implements it on its
/// dispatch table (durable when the store is), [`MemoryDispatchLog`] in memory for tests.
pub trait DispatchLog: Send + Sync + std::fmt::Debug {
    /// Writes (or replaces) one record; on a durable log it is on disk when this returns.
    fn put(&self, record: &DispatchRecord) -> Result<(), DispatchLogError>;
    /// Every record.
    fn scan(&self) -> Result<Vec<DispatchRecord>, DispatchLogError>;
    /// Whether `put` may wait for the disk (then callers keep it off async workers).
    fn may_block(&self) -> bool {
        false
    }
}

impl DispatchLog for IncidentStore {
    fn put(&self, record: &DispatchRecord) -> Result<(), DispatchLogError> {
        self.put_dispatch(&record.key(), record)
            .map_err(|e| DispatchLogError::Storage(e.to_string()))
    }

    fn scan(&self) -> Result<Vec<DispatchRecord>, DispatchLogError> {
        let records = self
            .load_dispatches::<DispatchRecord>()
            .map_err(|e| DispatchLogError::Storage(e.to_string()))?;
        Ok(records.into_iter().map(|(_, r)| r).collect())
    }

    fn may_block(&self) -> bool {
        self.is_durable()
    }
}

/// A [`DispatchLog`] in memory (lost on restart), in the order first written.
#[derive(Debug, Default)]
pub struct MemoryDispatchLog {
    inner: Mutex<(Vec<DispatchRecord>, HashMap<String, usize>)>,
}

impl DispatchLog for MemoryDispatchLog {
    fn put(&self, record: &DispatchRecord) -> Result<(), DispatchLogError> {
        let mut guard = self.inner.lock();
        let (records, index) = &mut *guard;
        match index.get(&record.key()) {
            Some(&i) => records[i] = record.clone(),
            None => {
                index.insert(record.key(), records.len());
                records.push(record.clone());
            }
        }
        Ok(())
    }

    fn scan(&self) -> Result<Vec<DispatchRecord>, DispatchLogError> {
        Ok(self.inner.lock().0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::dispatch::EscalationReason;

    fn escalation(seq: u64) -> DispatchRecord {
        DispatchRecord::Escalation(Escalation {
            seq,
            incident_id: "i".into(),
            department: "water".into(),
            at: EventTime(seq as i64),
            reason: EscalationReason::NoAnswer,
            from_crew: None,
            from_dispatch: None,
            to_crew: None,
            to_dispatch: None,
            message: "m".into(),
        })
    }

    #[test]
    fn memory_log_replaces_by_key_and_keeps_first_write_order() {
        let log = MemoryDispatchLog::default();
        log.put(&escalation(2)).expect("put");
        log.put(&escalation(1)).expect("put");
        log.put(&escalation(2)).expect("put");
        let keys: Vec<String> = log.scan().expect("scan").iter().map(|r| r.key()).collect();
        assert_eq!(
            keys,
            vec![
                "escalation/00000000000000000002".to_string(),
                "escalation/00000000000000000001".to_string()
            ]
        );
    }

    #[test]
    fn statuses_round_trip_their_api_names() {
        for s in [
            "sent",
            "accepted",
            "on_scene",
            "resolved",
            "declined",
            "timed_out",
            "cancelled",
        ] {
            let parsed = DispatchStatus::parse(s).expect("known");
            assert_eq!(parsed.as_str(), s);
            assert_eq!(
                serde_json::to_string(&parsed).expect("json"),
                format!("\"{s}\"")
            );
        }
        assert!(DispatchStatus::parse("lost").is_none());
        assert!(DispatchStatus::Accepted.is_live() && !DispatchStatus::TimedOut.is_live());
    }
}
