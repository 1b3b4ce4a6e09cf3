//! Rebuilding the dispatcher from its log after a restart: cases, crew reservations and answer
//! deadlines come back, so nothing is dispatched twice and pending answers still time out.

use std::collections::BTreeSet;

use super::machine::Case;
use super::{DispatchRecord, DispatchStatus, Dispatcher, IncidentView};

impl Dispatcher {
    /// Rebuilds cases, reservations and deadlines from a dispatch log (after a restart).
    /// `incident` looks up the incidents that have cases.
    pub fn restore(
        &mut self,
        records: Vec<DispatchRecord>,
        incident: impl Fn(&str) -> Option<IncidentView>,
    ) {
        let timeout_secs = self.config.answer_timeout_secs as f64;
        for record in records {
            let d = match record {
                DispatchRecord::Escalation(e) => {
                    self.escalations = self.escalations.max(e.seq);
                    continue;
                }
                DispatchRecord::Dispatch(d) => d,
            };
            let key = (d.incident_id.clone(), d.department.clone());
            let case = self.cases.entry(key).or_insert_with(|| Case {
                mode: d.mode,
                requested_by: d.requested_by.clone(),
                skills: d.skills.clone(),
                attempts: 0,
                current: None,
                tried: BTreeSet::new(),
                waiting: false,
                done: false,
            });
            if d.attempt >= case.attempts {
                case.attempts = d.attempt;
                case.current = Some(d.dispatch_id.clone());
                case.waiting = matches!(
                    d.status,
                    DispatchStatus::Declined | DispatchStatus::TimedOut
                );
                case.done = matches!(
                    d.status,
                    DispatchStatus::Resolved | DispatchStatus::Cancelled
                );
            }
            if matches!(
                d.status,
                DispatchStatus::Declined | DispatchStatus::TimedOut
            ) {
                case.tried.insert(d.crew_id.clone());
            }
            if d.status.is_live() {
                self.crews.reserve(&d.crew_id, &d.dispatch_id);
            }
            if d.status == DispatchStatus::Sent {
                self.deadlines
                    .arm(&d.dispatch_id, d.sent_at.plus_secs(timeout_secs));
            }
            self.dispatches.insert(d.dispatch_id.clone(), d);
        }
        for (incident_id, _) in self.cases.keys() {
            if let Some(view) = incident(incident_id) {
                self.incidents.insert(incident_id.clone(), view);
            }
        }
    }
}
