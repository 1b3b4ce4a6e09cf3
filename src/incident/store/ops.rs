//! Operator and crew actions on the store: acknowledge, dispatch, on scene, resolve, close,
//! reopen and merge. Each is checked against [`crate::incident::lifecycle`], recorded in the
//! audit trail, and committed (to disk first on a durable store) before it returns.

use serde::Serialize;

use super::txn::{record_transition, Txn};
use super::IncidentStore;
use crate::incident::lifecycle::{self, Action, LifecycleError};
use crate::model::{EventTime, Incident};
use crate::telemetry::Responder;

/// What a merge produced: both incidents as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MergeOutcome {
    /// The incident that was merged (now `closed`, `merged_into` the survivor).
    pub merged: Incident,
    /// The survivor, now showing the merged incident's evidence too.
    pub survivor: Incident,
}

impl IncidentStore {
    /// Operator acknowledges: only from `open`.
    pub fn ack(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.act(id, Action::Ack, actor, reason, now, None)
    }

    /// A crew is sent: from `open` or `acknowledged`.
    pub fn dispatch(
        &self,
        id: &str,
        actor: &str,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.act(id, Action::Dispatch, actor, None, now, None)
    }

    /// Like [`IncidentStore::dispatch`], also keeping the dispatch record `record` under
    /// `dispatch_id` in the same atomic commit: after a crash either both are there or neither.
    pub fn dispatch_recorded<T: Serialize>(
        &self,
        id: &str,
        actor: &str,
        now: EventTime,
        dispatch_id: &str,
        record: &T,
    ) -> Result<Incident, LifecycleError> {
        let value = serde_json::to_value(record).map_err(|e| LifecycleError::Storage {
            detail: format!("cannot encode dispatch record {dispatch_id:?}: {e}"),
        })?;
        self.act(
            id,
            Action::Dispatch,
            actor,
            None,
            now,
            Some((dispatch_id, value)),
        )
    }

    /// The crew is at the location: only from `dispatched` (a crew, or an operator for it).
    pub fn on_scene(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.act(id, Action::OnScene, actor, reason, now, None)
    }

    /// Operator or crew resolves: from `open`, `acknowledged`, `dispatched` or `on_scene`.
    pub fn resolve(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.act(id, Action::Resolve, actor, reason, now, None)
    }

    /// Operator files a resolved incident: only from `resolved`.
    pub fn close(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.act(id, Action::Close, actor, reason, now, None)
    }

    /// Operator reopens: from `resolved` or `closed` (not a merged incident).
    pub fn reopen(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.act(id, Action::Reopen, actor, reason, now, None)
    }

    /// Operator merges incident `id` into `into` (the survivor): `id` becomes `closed` with
    /// `merged_into` set, keeps its own evidence and history, and the survivor shows `id`'s
    /// evidence (now and as it grows), departments and severity too. Both audit trails record
    /// it (`merge` on `id`, `absorb` on the survivor).
    ///
    /// Refused when `id == into`, when either was already merged, or when the survivor is not
    /// live (resolved or closed: reopen it first).
    pub fn merge(
        &self,
        id: &str,
        into: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<MergeOutcome, LifecycleError> {
        if id == into {
            return Err(LifecycleError::SelfMerge { id: id.to_string() });
        }
        let mut inner = self.inner.lock();
        let mut txn = Txn::new(&mut inner);
        let (status, merged) = txn
            .get(id)
            .map(|r| (r.incident.status, r.incident.merged_into.clone()))
            .ok_or_else(|| not_found(id))?;
        let to = lifecycle::next(id, status, merged.as_deref(), Action::Merge)?;
        let (s_status, s_merged) = txn
            .get(into)
            .map(|r| (r.incident.status, r.incident.merged_into.clone()))
            .ok_or_else(|| not_found(into))?;
        if let Some(further) = s_merged {
            return Err(LifecycleError::Merged {
                id: into.to_string(),
                into: further,
            });
        }
        let s_to =
            Action::Absorb
                .target(s_status)
                .ok_or_else(|| LifecycleError::SurvivorNotLive {
                    into: into.to_string(),
                    status: s_status,
                })?;
        if let Some(rec) = txn.get_mut(id) {
            rec.incident.updated_at = rec.incident.updated_at.max(now);
            rec.incident.merged_into = Some(into.to_string());
            record_transition(rec, Action::Merge, to, actor, reason, Some(into), now);
        }
        if let Some(rec) = txn.get_mut(into) {
            rec.incident.updated_at = rec.incident.updated_at.max(now);
            rec.absorbed.push(id.to_string());
            record_transition(rec, Action::Absorb, s_to, actor, reason, Some(id), now);
        }
        txn.refresh(into);
        let changed = txn.commit(self, true).map_err(storage)?;
        let pick = |want: &str| changed.iter().find(|i| i.id == want).cloned();
        match (pick(id), pick(into)) {
            (Some(merged), Some(survivor)) => Ok(MergeOutcome { merged, survivor }),
            _ => Err(not_found(id)),
        }
    }

    /// Checks and applies one action to one incident, with an optional dispatch record written
    /// in the same commit.
    fn act(
        &self,
        id: &str,
        action: Action,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
        dispatch: Option<(&str, serde_json::Value)>,
    ) -> Result<Incident, LifecycleError> {
        let mut inner = self.inner.lock();
        let mut txn = Txn::new(&mut inner);
        let rec = txn.get_mut(id).ok_or_else(|| not_found(id))?;
        let to = lifecycle::next(
            id,
            rec.incident.status,
            rec.incident.merged_into.as_deref(),
            action,
        )?;
        // For citybrain_ack_latency_seconds (observed once committed).
        let first_answer =
            first_answer(action, &rec.history).map(|by| (by, rec.incident.detected_at));
        rec.incident.updated_at = rec.incident.updated_at.max(now);
        record_transition(rec, action, to, actor, reason, None, now);
        if let Some((dispatch_id, value)) = dispatch {
            txn.put_dispatch(dispatch_id, value);
        }
        // The survivor of a merge shows this incident's latest updated_at too.
        txn.refresh(id);
        let changed = txn.commit(self, true).map_err(storage)?;
        if let (Some(m), Some((by, detected_at))) = (&self.metrics, first_answer) {
            m.observe_ack(by, detected_at, now);
        }
        changed
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| not_found(id))
    }
}

/// Who answers an incident for the first time with `action`: an operator's ack, or a crew
/// accepting while it is still open (the store's `dispatch`); `None` once anyone has answered
/// before (a reopened incident's second ack is not a first answer).
fn first_answer(action: Action, history: &[crate::incident::Transition]) -> Option<Responder> {
    let by = match action {
        Action::Ack => Responder::Operator,
        Action::Dispatch => Responder::Crew,
        _ => return None,
    };
    let answered = history
        .iter()
        .any(|t| matches!(t.action, Action::Ack | Action::Dispatch));
    (!answered).then_some(by)
}

fn not_found(id: &str) -> LifecycleError {
    LifecycleError::NotFound { id: id.to_string() }
}

fn storage(e: crate::incident::persist::StoreError) -> LifecycleError {
    tracing::error!(error = %e, "lifecycle change not saved; refused");
    LifecycleError::Storage {
        detail: e.to_string(),
    }
}
