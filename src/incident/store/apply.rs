//! Applying the correlator's snapshots: open, grow, auto-resolve and auto-reopen incidents.

use super::txn::{record_transition, Txn};
use super::{IncidentStore, Own, Record};
use crate::incident::lifecycle::{Action, CORRELATOR_ACTOR};
use crate::model::{Incident, IncidentSnapshot, IncidentStatus};

impl IncidentStore {
    /// Upserts a correlator snapshot and returns the incident as stored.
    ///
    /// - A new id opens an incident (`open`).
    /// - A known id takes the snapshot's kind, severity, location, departments and evidence;
    ///   its lifecycle status is kept, `opened_at` stays the first one seen, and `updated_at`
    ///   never moves backwards (an operator action may be later than the evidence). An incident
    ///   an operator merged others into also keeps showing their evidence.
    /// - `cleared_at` (or `merged_into`: absorbed by another incident) on a live incident
    ///   resolves it (`auto_resolve` by `correlator`, recorded in the history).
    /// - More evidence than before, without `cleared_at`/`merged_into`, reopens a resolved or
    ///   closed one (`auto_reopen`), unless an operator merged it into another incident: then the
    ///   evidence shows up in the survivor instead.
    ///
    /// On a durable store a failed disk write is logged and the change still applies in memory:
    /// the pipeline must not stop because the disk is full.
    pub fn apply_snapshot(&self, snap: IncidentSnapshot) -> Incident {
        let mut inner = self.inner.lock();
        let mut txn = Txn::new(&mut inner);
        let id = snap.id.clone();
        let existing = txn.get(&id).cloned();
        let existed = existing.is_some();
        let mut rec = existing.unwrap_or_else(|| new_record(&snap));
        let grew = snap.evidence.len() > rec.own.evidence.len();
        let inc = &mut rec.incident;
        inc.kind = snap.kind;
        inc.location = snap.location;
        inc.updated_at = inc.updated_at.max(snap.updated_at);
        // An operator's merge wins over a later correlator merge: the survivor is already chosen.
        if inc.merged_into.is_none() {
            inc.merged_into.clone_from(&snap.merged_into);
        }
        rec.own = Own {
            severity: snap.severity,
            departments: snap.departments,
            evidence: snap.evidence,
            confidence: snap.confidence,
        };
        let still_live = snap.cleared_at.is_none() && snap.merged_into.is_none();
        let reopenable = matches!(
            rec.incident.status,
            IncidentStatus::Resolved | IncidentStatus::Closed
        );
        if reopenable && grew && still_live && rec.incident.merged_into.is_none() {
            let at = rec.incident.updated_at;
            record_transition(
                &mut rec,
                Action::AutoReopen,
                IncidentStatus::Open,
                CORRELATOR_ACTOR,
                Some("new evidence after resolution"),
                None,
                at,
            );
        }
        // A merged incident lives on in the absorbing one, so it ends here like a cleared one.
        let ended = match (snap.cleared_at, &snap.merged_into) {
            (Some(at), _) => Some((at, "evidence cleared".to_string(), None)),
            (None, Some(into)) => Some((
                snap.updated_at,
                format!("merged into {into}"),
                Some(into.clone()),
            )),
            (None, None) => None,
        };
        if let Some((at, reason, related)) = ended {
            // The correlator's own merge is not refused for being a merge (unlike an operator
            // action on a merged incident), so ask the table directly.
            if let Some(to) = Action::AutoResolve.target(rec.incident.status) {
                rec.incident.updated_at = rec.incident.updated_at.max(at);
                record_transition(
                    &mut rec,
                    Action::AutoResolve,
                    to,
                    CORRELATOR_ACTOR,
                    Some(&reason),
                    related.as_deref(),
                    at,
                );
            }
        }
        if let Some(m) = &self.metrics {
            let kind = [rec.incident.kind.as_str()];
            if existed {
                m.incident_updates_total.inc(kind);
            } else {
                m.incidents_opened_total.inc(kind);
            }
        }
        let fallback = rec.incident.clone();
        txn.insert(rec);
        txn.refresh(&id);
        // This incident was touched first, so it comes first; survivors follow.
        match txn.commit(self, false) {
            Ok(changed) => changed.into_iter().next().unwrap_or(fallback),
            Err(e) => {
                tracing::error!(error = %e, incident = %id, "incident snapshot not applied");
                fallback
            }
        }
    }
}

fn new_record(snap: &IncidentSnapshot) -> Record {
    Record {
        incident: Incident {
            id: snap.id.clone(),
            kind: snap.kind.clone(),
            severity: snap.severity,
            status: IncidentStatus::Open,
            location: snap.location,
            departments: snap.departments.clone(),
            opened_at: snap.opened_at,
            detected_at: snap.detected_at,
            updated_at: snap.updated_at,
            evidence: snap.evidence.clone(),
            confidence: snap.confidence,
            merged_into: None,
        },
        history: Vec::new(),
        own: Own {
            severity: snap.severity,
            departments: snap.departments.clone(),
            evidence: Vec::new(),
            confidence: snap.confidence,
        },
        absorbed: Vec::new(),
    }
}
