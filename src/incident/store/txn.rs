//! A copy-on-write change over the store's map: records are cloned on first touch, changed,
//! then committed in one step (disk, then memory, counts and broadcast). Until the commit,
//! nothing anyone can observe has changed, so a refused or failed change leaves no trace.

use std::collections::{BTreeSet, HashMap};

use super::{set_gauges, IncidentStore, Inner, Record};
use crate::incident::persist::{self, StoreError, Table, Write};
use crate::model::{EventTime, Evidence, Incident, IncidentStatus};

/// Merge chains are a forest (a merged incident cannot absorb or be merged again), so this only
/// guards against a damaged file looping forever.
const MAX_MERGE_DEPTH: usize = 64;

pub(super) struct Txn<'a> {
    inner: &'a mut Inner,
    /// Working copies of the touched records.
    records: HashMap<String, Record>,
    /// Ids in the order they were first touched (the broadcast order).
    order: Vec<String>,
    /// Dispatch records to write with the incidents.
    dispatches: Vec<(String, serde_json::Value)>,
}

impl<'a> Txn<'a> {
    pub(super) fn new(inner: &'a mut Inner) -> Self {
        Txn {
            inner,
            records: HashMap::new(),
            order: Vec::new(),
            dispatches: Vec::new(),
        }
    }

    /// The record as it stands in this change.
    pub(super) fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id).or_else(|| self.inner.entries.get(id))
    }

    /// A working copy to change.
    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut Record> {
        if !self.records.contains_key(id) {
            let copy = self.inner.entries.get(id)?.clone();
            self.records.insert(id.to_string(), copy);
            self.order.push(id.to_string());
        }
        self.records.get_mut(id)
    }

    /// Adds a record that did not exist.
    pub(super) fn insert(&mut self, record: Record) {
        let id = record.incident.id.clone();
        if !self.records.contains_key(&id) {
            self.order.push(id.clone());
        }
        self.records.insert(id, record);
    }

    /// Writes a dispatch record in the same commit as the incidents.
    pub(super) fn put_dispatch(&mut self, id: &str, value: serde_json::Value) {
        self.dispatches.push((id.to_string(), value));
    }

    /// Recomputes what `id` shows (evidence, severity, departments, updated_at) from its own
    /// evidence and the incidents merged into it, then does the same for whatever it was merged
    /// into, up the chain: the survivor of a merge always shows the merged evidence.
    pub(super) fn refresh(&mut self, id: &str) {
        let mut current = id.to_string();
        for _ in 0..MAX_MERGE_DEPTH {
            let Some(rec) = self.get(&current) else {
                return;
            };
            let mut evidence = rec.own.evidence.clone();
            let mut severity = rec.own.severity;
            let mut departments: BTreeSet<String> = rec.own.departments.iter().cloned().collect();
            let mut updated_at = rec.incident.updated_at;
            // The strongest of the merged incidents: combining them as independent witnesses
            // would count evidence they share twice.
            let mut confidence = rec.own.confidence;
            for absorbed in &rec.absorbed {
                if let Some(a) = self.get(absorbed) {
                    confidence = confidence.max(a.incident.confidence);
                    evidence.extend(a.incident.evidence.iter().cloned());
                    severity = severity.max(a.incident.severity);
                    departments.extend(a.incident.departments.iter().cloned());
                    updated_at = updated_at.max(a.incident.updated_at);
                }
            }
            // Alone, the correlator's evidence is shown exactly as it sent it.
            let evidence = if rec.absorbed.is_empty() {
                evidence
            } else {
                dedup_sorted(evidence)
            };
            let Some(rec) = self.get_mut(&current) else {
                return;
            };
            rec.incident.evidence = evidence;
            rec.incident.severity = severity;
            rec.incident.departments = departments.into_iter().collect();
            rec.incident.updated_at = updated_at;
            rec.incident.confidence = confidence;
            let Some(parent) = rec.incident.merged_into.clone() else {
                return;
            };
            // Only operator merges keep the merged evidence in the survivor's view; the
            // correlator's own merges already moved it there.
            if !self
                .get(&parent)
                .is_some_and(|p| p.absorbed.contains(&current))
            {
                return;
            }
            current = parent;
        }
    }

    /// Commits: disk first (if `store` is durable), then memory, counts, gauges and broadcast.
    /// Returns the changed incidents in the order they were first touched.
    ///
    /// With `must_persist`, a failed disk commit aborts the whole change (the caller reports it).
    /// Without it (correlator snapshots: the pipeline has to go on), the failure is logged and
    /// the change is still applied in memory.
    pub(super) fn commit(
        self,
        store: &IncidentStore,
        must_persist: bool,
    ) -> Result<Vec<Incident>, StoreError> {
        let Txn {
            inner,
            mut records,
            order,
            dispatches,
        } = self;
        if let Some(p) = &store.persist {
            let saved = encode(&records, &order, &dispatches).and_then(|w| p.commit(&w));
            if let Err(e) = saved {
                if must_persist {
                    return Err(e);
                }
                tracing::error!(error = %e, "incident change applied in memory only: not saved");
            }
        }
        let mut out = Vec::with_capacity(order.len());
        let mut kinds: BTreeSet<String> = BTreeSet::new();
        for id in order {
            let Some(record) = records.remove(&id) else {
                continue;
            };
            let before = inner
                .entries
                .get(&id)
                .map(|r| (r.incident.kind.clone(), r.incident.status));
            if let Some(key) = &before {
                if let Some(n) = inner.counts.get_mut(key) {
                    *n = n.saturating_sub(1);
                }
                kinds.insert(key.0.clone());
            }
            let after = (record.incident.kind.clone(), record.incident.status);
            kinds.insert(after.0.clone());
            *inner.counts.entry(after).or_insert(0) += 1;
            out.push(record.incident.clone());
            inner.entries.insert(id, record);
        }
        inner.dispatches.extend(dispatches);
        if let Some(metrics) = &store.metrics {
            for kind in &kinds {
                set_gauges(metrics, &inner.counts, kind);
            }
        }
        for incident in &out {
            // No receivers is normal (nobody watching): ignore the error.
            let _ = store.changes.send(incident.clone());
        }
        Ok(out)
    }
}

/// The disk writes of a change: every touched incident and dispatch record.
fn encode(
    records: &HashMap<String, Record>,
    order: &[String],
    dispatches: &[(String, serde_json::Value)],
) -> Result<Vec<Write>, StoreError> {
    let mut writes = Vec::with_capacity(order.len() + dispatches.len());
    for id in order {
        if let Some(r) = records.get(id) {
            writes.push(persist::put(Table::Incidents, id, r)?);
        }
    }
    for (id, value) in dispatches {
        writes.push(persist::put(Table::Dispatches, id, value)?);
    }
    Ok(writes)
}

/// Records a status change (or, for `absorb`, a same-status entry) in the audit trail.
pub(super) fn record_transition(
    rec: &mut Record,
    action: crate::incident::Action,
    to: IncidentStatus,
    actor: &str,
    reason: Option<&str>,
    related: Option<&str>,
    at: EventTime,
) {
    rec.history.push(crate::incident::Transition {
        at,
        actor: actor.to_string(),
        action,
        from: rec.incident.status,
        to,
        reason: reason.map(str::to_string),
        related: related.map(str::to_string),
    });
    rec.incident.status = to;
}

/// Evidence in event-time order with repeats removed (a merge can bring the same anomaly twice,
/// e.g. when the correlator had already moved it).
fn dedup_sorted(mut evidence: Vec<Evidence>) -> Vec<Evidence> {
    evidence.sort_by(|a, b| {
        (a.ts, &a.device_id, &a.signal, &a.metric, &a.detector).cmp(&(
            b.ts,
            &b.device_id,
            &b.signal,
            &b.metric,
            &b.detector,
        ))
    });
    evidence.dedup_by(|a, b| {
        a.ts == b.ts
            && a.device_id == b.device_id
            && a.signal == b.signal
            && a.metric == b.metric
            && a.detector == b.detector
    });
    evidence
}
