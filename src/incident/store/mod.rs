//! The incident store: upserts correlator snapshots, enforces the operator lifecycle
//! ([`super::lifecycle`]), keeps each incident's audit trail, merges incidents, holds the dispatch
//! records the dispatch module asks it to keep, and broadcasts every change.
//!
//! Two flavours with one behaviour: [`IncidentStore::new`] keeps everything in memory (replay,
//! tests); [`IncidentStore::open`] also writes every change to the redb database in a state
//! directory ([`super::persist`]) and loads it back on start. A change is committed to disk
//! before it becomes visible in memory, is broadcast, or is returned to the caller, so whatever
//! the API acknowledged survives `kill -9`.
//!
//! One `parking_lot::Mutex` guards the map: a change is a copy-on-write [`txn::Txn`] over it,
//! committed (to disk, then memory, then the broadcast) under the lock, which keeps the order on
//! disk, in memory and on the broadcast identical. No `.await` happens under the lock; the disk
//! commit (an fsync) does, so async callers run lifecycle calls on a blocking thread.

mod apply;
mod ops;
#[cfg(test)]
mod tests;
mod txn;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use ops::MergeOutcome;

use super::lifecycle::Transition;
use super::persist::{Persist, StoreError, Table};
use crate::model::{EventTime, Evidence, Incident, IncidentSnapshot, IncidentStatus, Severity};
use crate::telemetry::Metrics;

/// How many changes a slow subscriber may lag before it starts losing the oldest.
const BROADCAST_CAPACITY: usize = 1024;

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

/// What the correlator last said about an incident's own evidence. Kept apart from the incident
/// as shown, which also carries the evidence of incidents an operator merged into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Own {
    severity: Severity,
    departments: Vec<String>,
    evidence: Vec<Evidence>,
    #[serde(default)]
    confidence: f64,
}

/// One incident with everything needed to rebuild it: the stored unit (one redb row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    incident: Incident,
    history: Vec<Transition>,
    own: Own,
    /// Incidents an operator merged into this one, in merge order.
    #[serde(default)]
    absorbed: Vec<String>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Record>,
    /// Live counts per (kind, status), mirrored into the `citybrain_incidents` gauge.
    counts: HashMap<(String, IncidentStatus), u64>,
    /// Dispatch records by dispatch id (opaque JSON owned by the dispatch module).
    dispatches: BTreeMap<String, serde_json::Value>,
}

/// Holds every incident; cheap to share as `Arc<IncidentStore>`.
pub struct IncidentStore {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Incident>,
    metrics: Option<Arc<Metrics>>,
    persist: Option<Persist>,
}

impl std::fmt::Debug for IncidentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentStore")
            .field("len", &self.inner.lock().entries.len())
            .field("persist", &self.persist)
            .finish()
    }
}

impl Default for IncidentStore {
    fn default() -> Self {
        IncidentStore::new(None)
    }
}

impl IncidentStore {
    /// An empty in-memory store; with `metrics`, it keeps `citybrain_incidents{kind,status}` and
    /// the opened/updated counters current.
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        let (changes, _) = broadcast::channel(BROADCAST_CAPACITY);
        IncidentStore {
            inner: Mutex::new(Inner::default()),
            changes,
            metrics,
            persist: None,
        }
    }

    /// A durable store in `state_dir` (created if missing): loads every incident, its history
    /// and the dispatch records back, and from then on commits every change before answering.
    pub fn open(state_dir: &Path, metrics: Option<Arc<Metrics>>) -> Result<Self, StoreError> {
        let persist = Persist::open(state_dir)?;
        let records: Vec<(String, Record)> = persist.scan(Table::Incidents)?;
        let dispatches: Vec<(String, serde_json::Value)> = persist.scan(Table::Dispatches)?;
        let mut store = IncidentStore::new(metrics);
        {
            let inner = store.inner.get_mut();
            for (id, record) in records {
                let key = (record.incident.kind.clone(), record.incident.status);
                *inner.counts.entry(key).or_insert(0) += 1;
                inner.entries.insert(id, record);
            }
            inner.dispatches = dispatches.into_iter().collect();
        }
        if let Some(metrics) = &store.metrics {
            let inner = store.inner.lock();
            let kinds: std::collections::BTreeSet<&str> =
                inner.counts.keys().map(|(k, _)| k.as_str()).collect();
            for kind in kinds {
                set_gauges(metrics, &inner.counts, kind);
            }
        }
        tracing::info!(
            path = %persist.path().display(),
            incidents = store.len(),
            "incident store opened"
        );
        store.persist = Some(persist);
        Ok(store)
    }

    /// True when changes are written to disk ([`IncidentStore::open`]).
    pub fn is_durable(&self) -> bool {
        self.persist.is_some()
    }

    /// Every change from now on (snapshots applied and lifecycle transitions; a merge sends both
    /// incidents). A receiver that falls more than 1024 changes behind gets
    /// `RecvError::Lagged` and should re-`list`.
    pub fn subscribe(&self) -> broadcast::Receiver<Incident> {
        self.changes.subscribe()
    }

    /// One incident by id.
    pub fn get(&self, id: &str) -> Option<Incident> {
        self.inner
            .lock()
            .entries
            .get(id)
            .map(|e| e.incident.clone())
    }

    /// The audit trail of one incident, oldest first (`None` if the id is unknown).
    pub fn history(&self, id: &str) -> Option<Vec<Transition>> {
        self.inner.lock().entries.get(id).map(|e| e.history.clone())
    }

    /// One incident and its audit trail, read together (consistent with each other).
    pub fn get_with_history(&self, id: &str) -> Option<(Incident, Vec<Transition>)> {
        self.inner
            .lock()
            .entries
            .get(id)
            .map(|e| (e.incident.clone(), e.history.clone()))
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

    /// The incidents the correlator should still consider open after a restart (status open,
    /// acknowledged, dispatched or on scene; not merged), as the correlator last described them
    /// (its own evidence only), by `opened_at` then id. Seed `Correlator::restore` with these so
    /// new evidence joins them instead of opening duplicates.
    pub fn open_snapshots(&self) -> Vec<IncidentSnapshot> {
        let inner = self.inner.lock();
        let mut out: Vec<IncidentSnapshot> = inner
            .entries
            .values()
            .filter(|r| r.incident.merged_into.is_none())
            .filter(|r| {
                !matches!(
                    r.incident.status,
                    IncidentStatus::Resolved | IncidentStatus::Closed
                )
            })
            .map(|r| {
                let i = &r.incident;
                // Event time only: the incident's updated_at may be an operator's wall clock.
                let last_evidence = r.own.evidence.iter().map(|e| e.ts).max();
                IncidentSnapshot {
                    id: i.id.clone(),
                    kind: i.kind.clone(),
                    severity: r.own.severity,
                    location: i.location,
                    departments: r.own.departments.clone(),
                    opened_at: i.opened_at,
                    detected_at: i.detected_at,
                    updated_at: last_evidence.unwrap_or(i.opened_at).max(i.opened_at),
                    evidence: r.own.evidence.clone(),
                    confidence: r.own.confidence,
                    cleared_at: None,
                    merged_into: None,
                }
            })
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

    /// Keeps a dispatch record (any serde value, keyed by dispatch id), committed to disk before
    /// this returns on a durable store. Replaces an earlier record with the same id.
    pub fn put_dispatch<T: Serialize>(
        &self,
        dispatch_id: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_value(record).map_err(|e| StoreError::Encode {
            what: format!("dispatch record {dispatch_id:?}"),
            detail: e.to_string(),
        })?;
        let mut inner = self.inner.lock();
        if let Some(p) = &self.persist {
            p.commit(&[super::persist::put(Table::Dispatches, dispatch_id, &value)?])?;
        }
        inner.dispatches.insert(dispatch_id.to_string(), value);
        Ok(())
    }

    /// Removes a dispatch record; `Ok(false)` if there was none.
    pub fn delete_dispatch(&self, dispatch_id: &str) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock();
        if !inner.dispatches.contains_key(dispatch_id) {
            return Ok(false);
        }
        if let Some(p) = &self.persist {
            p.commit(&[super::persist::Write::Delete {
                table: Table::Dispatches,
                key: dispatch_id.to_string(),
            }])?;
        }
        inner.dispatches.remove(dispatch_id);
        Ok(true)
    }

    /// Every dispatch record, by dispatch id, decoded as `T`.
    pub fn load_dispatches<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let inner = self.inner.lock();
        inner
            .dispatches
            .iter()
            .map(|(k, v)| {
                T::deserialize(v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| StoreError::Corrupt {
                        table: "dispatches",
                        key: k.clone(),
                        detail: e.to_string(),
                    })
            })
            .collect()
    }
}

/// Mirrors the counts of one kind into the gauge. All statuses of a kind are set so dashboards
/// see zeros, not gaps.
fn set_gauges(metrics: &Metrics, counts: &HashMap<(String, IncidentStatus), u64>, kind: &str) {
    for status in IncidentStatus::ALL {
        let n = counts
            .get(&(kind.to_string(), status))
            .copied()
            .unwrap_or(0);
        metrics.incidents.set([kind, status.as_str()], n as f64);
    }
}
