//! Incidents: what the correlator concludes (a snapshot) and what operators see (the incident).

use serde::{Deserialize, Serialize};
// Schemas for the OpenAPI document (src/api/openapi.rs); EventTime's is implemented there.
use utoipa::ToSchema;

use super::{EventTime, Location};

/// Incident severity, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Raised, nobody has looked yet.
    Open,
    /// An operator has seen it.
    Acknowledged,
    /// A crew has been sent.
    Dispatched,
    /// The crew is at the location (set by the crew, or by an operator on its behalf).
    OnScene,
    /// Over (by an operator, a crew, or because the evidence cleared).
    Resolved,
    /// Reviewed and filed by an operator, or merged into another incident; nothing left to do.
    Closed,
}

impl IncidentStatus {
    /// The name used in the API and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Dispatched => "dispatched",
            IncidentStatus::OnScene => "on_scene",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    /// Every status, in lifecycle order.
    pub const ALL: [IncidentStatus; 6] = [
        IncidentStatus::Open,
        IncidentStatus::Acknowledged,
        IncidentStatus::Dispatched,
        IncidentStatus::OnScene,
        IncidentStatus::Resolved,
        IncidentStatus::Closed,
    ];

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(IncidentStatus::Open),
            "acknowledged" => Some(IncidentStatus::Acknowledged),
            "dispatched" => Some(IncidentStatus::Dispatched),
            "on_scene" => Some(IncidentStatus::OnScene),
            "resolved" => Some(IncidentStatus::Resolved),
            "closed" => Some(IncidentStatus::Closed),
            _ => None,
        }
    }
}

/// One piece of evidence behind an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// Weight given to this evidence: 1 from a healthy device, less from a device that is
    /// faulty (silent, frozen, out of range, battery low) while it reported it.
    #[serde(default = "full_weight")]
    pub weight: f64,
}

fn full_weight() -> f64 {
    1.0
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
    /// Confidence in [0, 1] from the evidence and the health of the devices behind it
    /// (noisy-OR of the weighted evidence scores, strongest per device and signal).
    #[serde(default)]
    pub confidence: f64,
    /// Set when the evidence stopped for the pipeline's clear time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<EventTime>,
    /// Set when a higher-priority incident absorbed this one (its evidence moved there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

/// An incident as operators and the API see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// Confidence in [0, 1] from the evidence and the health of the devices behind it.
    #[serde(default)]
    pub confidence: f64,
    /// Set when this incident was merged into another one (which now holds its evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}
