//! Escalation: the record operators see when a case moves on from a crew (declined, no answer)
//! or finds no crew at all, and the answer deadlines that trigger the "no answer" case.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::EventTime;

/// Why a case escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// The crew declined.
    Declined,
    /// The crew did not answer within `answer_timeout_secs`.
    NoAnswer,
    /// No crew of the department was available (none at all, or all tried).
    NoCrewAvailable,
}

impl EscalationReason {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::Declined => "declined",
            EscalationReason::NoAnswer => "no_answer",
            EscalationReason::NoCrewAvailable => "no_crew_available",
        }
    }
}

/// One escalation, for operators (`GET /api/v1/escalations`) and webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Escalation {
    /// Sequence number (unique, increasing).
    pub seq: u64,
    /// Incident.
    pub incident_id: String,
    /// Department of the case.
    pub department: String,
    /// When (dispatcher clock).
    pub at: EventTime,
    /// Why.
    pub reason: EscalationReason,
    /// The crew the case moved on from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_crew: Option<String>,
    /// Its dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_dispatch: Option<String>,
    /// The crew sent next; `None` when nobody is left (the case waits for a crew to become
    /// available, or for an operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_crew: Option<String>,
    /// Its dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_dispatch: Option<String>,
    /// One sentence for the operator.
    pub message: String,
}

impl Escalation {
    /// Escalation `seq` of case (`incident`, `department`) at `at`, from (crew, dispatch) to
    /// (crew, dispatch); the message is worded from them.
    pub fn new(
        seq: u64,
        (incident, department): &(String, String),
        at: EventTime,
        reason: EscalationReason,
        from: Option<(String, String)>,
        to: Option<(String, String)>,
    ) -> Escalation {
        let (from_crew, from_dispatch) = from.unzip();
        let (to_crew, to_dispatch) = to.unzip();
        let message =
            Escalation::describe(reason, department, from_crew.as_deref(), to_crew.as_deref());
        Escalation {
            seq,
            incident_id: incident.clone(),
            department: department.clone(),
            at,
            reason,
            from_crew,
            from_dispatch,
            to_crew,
            to_dispatch,
            message,
        }
    }

    /// The operator sentence for an escalation.
    pub fn describe(
        reason: EscalationReason,
        department: &str,
        from_crew: Option<&str>,
        to_crew: Option<&str>,
    ) -> String {
        let what = match (reason, from_crew) {
            (EscalationReason::Declined, Some(c)) => format!("crew {c} declined"),
            (EscalationReason::NoAnswer, Some(c)) => format!("crew {c} did not answer"),
            _ => format!("no {department} crew was available"),
        };
        match to_crew {
            Some(next) => format!("{what}; dispatched {next}"),
            None => format!("{what}; no other {department} crew available, waiting"),
        }
    }
}

/// Answer deadlines of the dispatches waiting for an answer, soonest first.
#[derive(Debug, Clone, Default)]
pub struct Deadlines {
    set: BTreeSet<(EventTime, String)>,
}

impl Deadlines {
    /// `dispatch_id` must be answered by `at`.
    pub fn arm(&mut self, dispatch_id: &str, at: EventTime) {
        self.set.insert((at, dispatch_id.to_string()));
    }

    /// `dispatch_id` was answered (or ended): no deadline any more.
    pub fn disarm(&mut self, dispatch_id: &str) {
        self.set.retain(|(_, id)| id != dispatch_id);
    }

    /// The soonest deadline.
    pub fn next(&self) -> Option<EventTime> {
        self.set.first().map(|(at, _)| *at)
    }

    /// Removes and returns the dispatches whose deadline is at or before `now`, soonest first.
    pub fn expired(&mut self, now: EventTime) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((at, _)) = self.set.first() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.set.pop_first() {
                out.push(id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_expire_in_order_and_disarm() {
        let mut d = Deadlines::default();
        d.arm("b", EventTime(20));
        d.arm("a", EventTime(10));
        d.arm("c", EventTime(30));
        d.disarm("c");
        assert_eq!(d.next(), Some(EventTime(10)));
        assert!(d.expired(EventTime(9)).is_empty());
        assert_eq!(
            d.expired(EventTime(20)),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(d.next(), None);
    }

    #[test]
    fn descriptions_name_both_crews() {
        let s = Escalation::describe(
            EscalationReason::NoAnswer,
            "water",
            Some("W-01"),
            Some("W-02"),
        );
        assert_eq!(s, "crew W-01 did not answer; dispatched W-02");
        let s = Escalation::describe(EscalationReason::NoCrewAvailable, "traffic", None, None);
        assert!(s.starts_with("no traffic crew was available"), "{s}");
    }
}
