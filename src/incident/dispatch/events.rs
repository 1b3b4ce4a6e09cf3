//! What goes into the dispatcher (incident views, crew answers) and what comes out of it
//! (effects for the async loop), plus the evidence summary a crew reads on its tablet.

use std::collections::BTreeSet;

use super::records::severity_name;
use super::{DispatchMessage, DispatchRecord, EvidenceSummary};
use crate::model::{CrewAction, Incident, Location, Severity};

/// What the dispatcher needs to know about an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentView {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Whether the incident is over (resolved, closed or merged into another one).
    pub closed: bool,
    /// Where.
    pub location: Location,
    /// Departments involved.
    pub departments: Vec<String>,
    /// (signal, device) per piece of evidence, in event-time order.
    pub evidence: Vec<(String, String)>,
    /// Whether an active silence covers all of its evidence.
    pub suppressed: bool,
}

impl IncidentView {
    /// The view of a stored incident.
    pub fn of(incident: &Incident, suppressed: bool) -> IncidentView {
        // By name, so lifecycle states added later ("closed") count without touching this.
        let over = matches!(incident.status.as_str(), "resolved" | "closed");
        IncidentView {
            id: incident.id.clone(),
            kind: incident.kind.clone(),
            severity: incident.severity,
            closed: over || incident.merged_into.is_some(),
            location: incident.location,
            departments: incident.departments.clone(),
            evidence: incident
                .evidence
                .iter()
                .map(|e| (e.signal.clone(), e.device_id.clone()))
                .collect(),
            suppressed,
        }
    }
}

/// A crew's answer, from MQTT or the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The dispatch answered (API), or `None` to find it from `incident_id` and `crew_id` (MQTT).
    pub dispatch_id: Option<String>,
    /// Incident named by an MQTT answer.
    pub incident_id: Option<String>,
    /// The crew answering (MQTT: from the topic; API: the crew token's name), or `None` when
    /// an operator enters the answer for any crew.
    pub crew_id: Option<String>,
    /// The answer.
    pub action: CrewAction,
    /// Name recorded on the incident's lifecycle.
    pub actor: String,
}

/// A lifecycle change the incident store should make.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleChange {
    /// Incident.
    pub incident_id: String,
    /// `Accept` → dispatched, `OnScene` → on scene, `Resolved` → resolved.
    pub action: CrewAction,
    /// Actor for the history.
    pub actor: String,
    /// Reason for the history.
    pub reason: String,
}

/// What the async loop must do after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Publish on `city/crews/{crew_id}/dispatch` (QoS 1).
    Publish(DispatchMessage),
    /// Write to the dispatch log and tell the operators.
    Record(DispatchRecord),
    /// Move the incident along its lifecycle.
    Lifecycle(LifecycleChange),
}

/// A sentence and the device list a crew can read at a glance.
pub(super) fn summarize(view: &IncidentView) -> EvidenceSummary {
    const MAX_SIGNALS: usize = 3;
    let mut by_signal: Vec<(&str, Vec<&str>)> = Vec::new();
    for (signal, device) in &view.evidence {
        match by_signal.iter_mut().find(|(s, _)| s == signal) {
            Some((_, devices)) if !devices.contains(&device.as_str()) => devices.push(device),
            Some(_) => {}
            None => by_signal.push((signal, vec![device])),
        }
    }
    let mut parts: Vec<String> = by_signal
        .iter()
        .take(MAX_SIGNALS)
        .map(|(s, d)| format!("{s} at {}", d.join(", ")))
        .collect();
    if by_signal.len() > MAX_SIGNALS {
        parts.push(format!("{} more signals", by_signal.len() - MAX_SIGNALS));
    }
    let mut title = view.kind.replace('_', " ");
    if let Some(first) = title.get(..1) {
        title = first.to_uppercase() + &title[1..];
    }
    let summary = if parts.is_empty() {
        format!("{title} ({}).", severity_name(view.severity))
    } else {
        format!(
            "{title} ({}): {}.",
            severity_name(view.severity),
            parts.join("; ")
        )
    };
    let devices: BTreeSet<&str> = view.evidence.iter().map(|(_, d)| d.as_str()).collect();
    EvidenceSummary {
        summary,
        devices: devices.into_iter().map(str::to_string).collect(),
    }
}
