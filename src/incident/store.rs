//! The incident store: upserts correlator snapshots, enforces the operator lifecycle, keeps a
//! per-incident history, and broadcasts every change.
//!
//! One `parking_lot::Mutex` guards everything: operations are short map updates (no I/O, no
//! `.await` under the lock), and a single lock keeps the broadcast order identical to the order
//! in which changes were applied.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::{EventTime, Incident, IncidentSnapshot, IncidentStatus};
use crate::telemetry::Metrics;

use super::LifecycleError;

/// Actor recorded for transitions the correlator causes (auto-resolve, reopen).
pub const CORRELATOR_ACTOR: &str = "correlator";

/// How many changes a slow subscriber may lag before it starts losing the oldest.
const BROADCAST_CAPACITY: usize = 1024;

const ALL_STATUSES: [IncidentStatus; 4] = [
    IncidentStatus::Open,
    IncidentStatus::Acknowledged,
    IncidentStatus::Dispatched,
    IncidentStatus::Resolved,
];

/// One lifecycle change, kept for the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// When (operator wall clock, or the evidence event time for correlator changes).
    pub at: EventTime,
    /// Token name of the operator, or [`CORRELATOR_ACTOR`].
    pub actor: String,
    /// Status before.
    pub from: IncidentStatus,
    /// Status after.
    pub to: IncidentStatus,
    /// Free-text reason, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Filters for [`IncidentStore::list`]; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    /// Only this lifecycle status.
    pub status: Option<IncidentStatus>,
    /// Only this kind (exact match).
    pub kind: Option<String>,
    /// Only incidents involving this department (exact match).
    pub department: Option<String>,
    /// Only incidents whose `updated_at` is at or after this time. `updated_at` (not
    /// `opened_at`) so a dashboard polling "changed since my last poll" also sees old incidents
    /// that were updated, acknowledged or resolved since; every incident opened since is included
    /// too, because `updated_at >= opened_at`.
    pub since: Option<EventTime>,
    /// At most this many (after sorting).
    pub limit: Option<usize>,
}

impl IncidentFilter {
    fn matches(&self, i: &Incident) -> bool {
        self.status.is_none_or(|s| i.status == s)
            && self.kind.as_ref().is_none_or(|k| &i.kind == k)
            && self
                .department
                .as_ref()
                .is_none_or(|d| i.departments.contains(d))
            && self.since.is_none_or(|t| i.updated_at >= t)
    }
}

struct Record {
    incident: Incident,
    history: Vec<Transition>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Record>,
    /// Live counts per (kind, status), mirrored into the `citybrain_incidents` gauge.
    counts: HashMap<(String, IncidentStatus), u64>,
}

/// Holds every incident; cheap to share as `Arc<IncidentStore>`.
pub struct IncidentStore {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Incident>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for IncidentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentStore")
            .field("len", &self.inner.lock().entries.len())
            .finish()
    }
}

impl Default for IncidentStore {
    fn default() -> Self {
        IncidentStore::new(None)
    }
}

impl IncidentStore {
    /// An empty store; with `metrics`, it keeps `citybrain_incidents{kind,status}` and the
    /// opened/updated counters current.
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        let (changes, _) = broadcast::channel(BROADCAST_CAPACITY);
        IncidentStore {
            inner: Mutex::new(Inner::default()),
            changes,
            metrics,
        }
    }

    /// Every change from now on (snapshots applied and lifecycle transitions). A receiver that
    /// falls more than 1024 changes behind gets `RecvError::Lagged` and should re-`list`.
    pub fn subscribe(&self) -> broadcast::Receiver<Incident> {
        self.changes.subscribe()
    }

    /// Upserts a correlator snapshot and returns the incident as stored.
    ///
    /// - A new id opens an incident (`open`).
    /// - A known id takes the snapshot's kind, severity, location, departments and evidence;
    ///   its lifecycle status is kept, `opened_at` stays the first one seen, and `updated_at`
    ///   never moves backwards (an operator action may be later than the evidence).
    /// - `cleared_at` (or `merged_into`: absorbed by another incident) on a not-yet-resolved
    ///   incident resolves it (actor `correlator`, recorded in the history).
    /// - More evidence than before, without `cleared_at`/`merged_into`, reopens a resolved one.
    pub fn apply_snapshot(&self, snap: IncidentSnapshot) -> Incident {
        let mut inner = self.inner.lock();
        let previous = inner
            .entries
            .get(&snap.id)
            .map(|e| (e.incident.kind.clone(), e.incident.status));
        let entry = match inner.entries.entry(snap.id.clone()) {
            Entry::Occupied(occupied) => {
                let entry = occupied.into_mut();
                let grew = snap.evidence.len() > entry.incident.evidence.len();
                let inc = &mut entry.incident;
                inc.kind = snap.kind;
                inc.severity = snap.severity;
                inc.location = snap.location;
                inc.departments = snap.departments;
                inc.evidence = snap.evidence;
                inc.updated_at = inc.updated_at.max(snap.updated_at);
                if snap.merged_into.is_some() {
                    inc.merged_into.clone_from(&snap.merged_into);
                }
                let still_live = snap.cleared_at.is_none() && snap.merged_into.is_none();
                if inc.status == IncidentStatus::Resolved && grew && still_live {
                    let at = inc.updated_at;
                    transition(
                        entry,
                        IncidentStatus::Open,
                        CORRELATOR_ACTOR,
                        "new evidence after resolution",
                        at,
                    );
                }
                if let Some(m) = &self.metrics {
                    m.incident_updates_total.inc([entry.incident.kind.as_str()]);
                }
                entry
            }
            Entry::Vacant(vacant) => {
                if let Some(m) = &self.metrics {
                    m.incidents_opened_total.inc([snap.kind.as_str()]);
                }
                let incident = Incident {
                    id: snap.id,
                    kind: snap.kind,
                    severity: snap.severity,
                    status: IncidentStatus::Open,
                    location: snap.location,
                    departments: snap.departments,
                    opened_at: snap.opened_at,
                    detected_at: snap.detected_at,
                    updated_at: snap.updated_at,
                    evidence: snap.evidence,
                    merged_into: snap.merged_into.clone(),
                };
                vacant.insert(Record {
                    incident,
                    history: Vec::new(),
                })
            }
        };
        // A merged incident lives on in the absorbing one, so it ends here like a cleared one.
        let ended = match (snap.cleared_at, &snap.merged_into) {
            (Some(at), _) => Some((at, "evidence cleared".to_string())),
            (None, Some(into)) => Some((snap.updated_at, format!("merged into {into}"))),
            (None, None) => None,
        };
        if let Some((at, reason)) = ended {
            if entry.incident.status != IncidentStatus::Resolved {
                entry.incident.updated_at = entry.incident.updated_at.max(at);
                transition(
                    entry,
                    IncidentStatus::Resolved,
                    CORRELATOR_ACTOR,
                    &reason,
                    at,
                );
            }
        }
        let out = entry.incident.clone();
        self.count(&mut inner, previous, &out);
        // No receivers is normal (nobody watching): ignore the error.
        let _ = self.changes.send(out.clone());
        out
    }

    /// Operator acknowledges: only from `open`.
    pub fn ack(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.operate(id, IncidentStatus::Acknowledged, actor, reason, now, |s| {
            s == IncidentStatus::Open
        })
    }

    /// A crew is sent: from `open` or `acknowledged`.
    pub fn dispatch(
        &self,
        id: &str,
        actor: &str,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.operate(id, IncidentStatus::Dispatched, actor, None, now, |s| {
            matches!(s, IncidentStatus::Open | IncidentStatus::Acknowledged)
        })
    }

    /// Operator or crew resolves: from any status but `resolved`.
    pub fn resolve(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
    ) -> Result<Incident, LifecycleError> {
        self.operate(id, IncidentStatus::Resolved, actor, reason, now, |s| {
            s != IncidentStatus::Resolved
        })
    }

    fn operate(
        &self,
        id: &str,
        to: IncidentStatus,
        actor: &str,
        reason: Option<&str>,
        now: EventTime,
        allowed_from: impl Fn(IncidentStatus) -> bool,
    ) -> Result<Incident, LifecycleError> {
        let mut inner = self.inner.lock();
        let entry = inner
            .entries
            .get_mut(id)
            .ok_or_else(|| LifecycleError::NotFound { id: id.to_string() })?;
        let from = entry.incident.status;
        if !allowed_from(from) {
            return Err(LifecycleError::InvalidTransition { from, to });
        }
        let previous = Some((entry.incident.kind.clone(), from));
        entry.incident.updated_at = entry.incident.updated_at.max(now);
        entry.history.push(Transition {
            at: now,
            actor: actor.to_string(),
            from,
            to,
            reason: reason.map(str::to_string),
        });
        entry.incident.status = to;
        let out = entry.incident.clone();
        self.count(&mut inner, previous, &out);
        let _ = self.changes.send(out.clone());
        Ok(out)
    }

    /// One incident by id.
    pub fn get(&self, id: &str) -> Option<Incident> {
        self.inner
            .lock()
            .entries
            .get(id)
            .map(|e| e.incident.clone())
    }

    /// The lifecycle history of one incident, oldest first (`None` if the id is unknown).
    pub fn history(&self, id: &str) -> Option<Vec<Transition>> {
        self.inner.lock().entries.get(id).map(|e| e.history.clone())
    }

    /// Incidents matching `filter`, newest first: `updated_at` descending, then severity
    /// descending, then id (so equal rows still come out in a stable order).
    pub fn list(&self, filter: &IncidentFilter) -> Vec<Incident> {
        let mut out: Vec<Incident> = {
            let inner = self.inner.lock();
            inner
                .entries
                .values()
                .map(|e| &e.incident)
                .filter(|i| filter.matches(i))
                .cloned()
                .collect()
        };
        out.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then(b.severity.cmp(&a.severity))
                .then(a.id.cmp(&b.id))
        });
        if let Some(limit) = filter.limit {
            out.truncate(limit);
        }
        out
    }

    /// Every incident, by `opened_at` then id: deterministic, for `replay`'s NDJSON output.
    pub fn all(&self) -> Vec<Incident> {
        let mut out: Vec<Incident> = self
            .inner
            .lock()
            .entries
            .values()
            .map(|e| e.incident.clone())
            .collect();
        out.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then(a.id.cmp(&b.id)));
        out
    }

    /// Number of incidents held.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// True when no incident is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves one incident between (kind, status) buckets and mirrors the affected kinds into the
    /// gauge. All four statuses of a kind are set so dashboards see zeros, not gaps.
    fn count(&self, inner: &mut Inner, before: Option<(String, IncidentStatus)>, after: &Incident) {
        if let Some(key) = &before {
            if let Some(n) = inner.counts.get_mut(key) {
                *n = n.saturating_sub(1);
            }
        }
        *inner
            .counts
            .entry((after.kind.clone(), after.status))
            .or_insert(0) += 1;
        let Some(metrics) = &self.metrics else { return };
        let kinds = before
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(std::iter::once(after.kind.as_str()));
        for kind in kinds {
            for status in ALL_STATUSES {
                let n = inner
                    .counts
                    .get(&(kind.to_string(), status))
                    .copied()
                    .unwrap_or(0);
                metrics.incidents.set([kind, status.as_str()], n as f64);
            }
        }
    }
}

/// Records a correlator-driven status change.
fn transition(entry: &mut Record, to: IncidentStatus, actor: &str, reason: &str, at: EventTime) {
    entry.history.push(Transition {
        at,
        actor: actor.to_string(),
        from: entry.incident.status,
        to,
        reason: Some(reason.to_string()),
    });
    entry.incident.status = to;
}
