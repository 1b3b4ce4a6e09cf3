//! Incidents: what the correlator concludes (a snapshot) and what operators see (the incident).

use serde::{Deserialize, Serialize};

use super::{EventTime, Location};

/// Incident severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Needs attention this shift.
    Medium,
    /// Needs attention now.
    High,
    /// Life, property or a main service at risk.
    Critical,
}

/// Lifecycle status of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Raised, nobody has looked yet.
    Open,
    /// An operator has seen it.
    Acknowledged,
    /// A crew has been sent.
    Dispatched,
    /// Over (by an operator, a crew, or because the evidence cleared).
    Resolved,
}

impl IncidentStatus {
    /// The name used in the API and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Dispatched => "dispatched",
            IncidentStatus::Resolved => "resolved",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(IncidentStatus::Open),
            "acknowledged" => Some(IncidentStatus::Acknowledged),
            "dispatched" => Some(IncidentStatus::Dispatched),
            "resolved" => Some(IncidentStatus::Resolved),
            _ => None,
        }
    }
}

/// One piece of evidence behind an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Device that produced it.
    pub device_id: String,
    /// Metric (canonical name).
    pub metric: String,
    /// Detector type that fired.
    pub detector: String,
    /// Event time of the evidence.
    pub ts: EventTime,
    /// Value behind it.
    pub value: f64,
    /// Pipeline signal name.
    pub signal: String,
    /// Evidence strength in [0, 1].
    pub score: f64,
    /// Why the detector fired.
    pub reason: String,
}

/// What the correlator knows about an incident at one moment (event time only, no lifecycle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSnapshot {
    /// Deterministic id (same data gives the same id, whatever the speed or worker count).
    pub id: String,
    /// Incident kind (pipeline name, e.g. `water_main_burst`).
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Where.
    pub location: Location,
    /// Departments involved (sorted).
    pub departments: Vec<String>,
    /// Event time of the first evidence.
    pub opened_at: EventTime,
    /// Event time at which the evidence first satisfied the rule (the incident was raised);
    /// `detected_at - opened_at` is how long confirmation took.
    pub detected_at: EventTime,
    /// Event time of the latest evidence or change.
    pub updated_at: EventTime,
    /// Evidence, in event-time order.
    pub evidence: Vec<Evidence>,
    /// Set when the evidence stopped for the pipeline's clear time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<EventTime>,
    /// Set when a higher-priority incident absorbed this one (its evidence moved there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

/// An incident as operators and the API see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Lifecycle status.
    pub status: IncidentStatus,
    /// Where.
    pub location: Location,
    /// Departments involved.
    pub departments: Vec<String>,
    /// Event time of the first evidence.
    pub opened_at: EventTime,
    /// Event time at which the evidence first satisfied the rule.
    pub detected_at: EventTime,
    /// Latest change (evidence event time or operator action time, whichever is later).
    pub updated_at: EventTime,
    /// Evidence in event-time order.
    pub evidence: Vec<Evidence>,
    /// Set when this incident was merged into another one (which now holds its evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}
