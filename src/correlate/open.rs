//! An incident the correlator is growing: its evidence, devices, held conditions and snapshot.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};

use crate::config::pipeline::IncidentRule;
use crate::model::{EventTime, Evidence, IncidentSnapshot, Location};

use super::Item;

/// Evidence entries kept per incident; later evidence still updates times and conditions.
const MAX_EVIDENCE: usize = 500;

#[derive(Debug, Clone)]
pub(super) struct OpenIncident {
    /// Index of the rule in the correlator's (priority-sorted) rule list.
    pub(super) rule: usize,
    pub(super) items: Vec<Item>,
    /// Conditions still raised: (device, signal, metric).
    held: BTreeSet<(String, String, String)>,
    /// Event time of the latest evidence or release.
    last_change: EventTime,
    pub(super) snapshot: IncidentSnapshot,
}

impl OpenIncident {
    pub(super) fn new(
        rule_idx: usize,
        rule: &IncidentRule,
        mut items: Vec<Item>,
        detected_at: EventTime,
    ) -> OpenIncident {
        items.sort_by(|a, b| {
            (a.anomaly.ts, &a.anomaly.device_id, &a.anomaly.signal).cmp(&(
                b.anomaly.ts,
                &b.anomaly.device_id,
                &b.anomaly.signal,
            ))
        });
        let first = items.first();
        let opened_at = first.map(|i| i.anomaly.ts).unwrap_or_default();
        let first_device = first
            .map(|i| i.anomaly.device_id.clone())
            .unwrap_or_default();
        let id = format!("{}-{}-{}", rule.kind, compact_time(opened_at), first_device);
        let mut inc = OpenIncident {
            rule: rule_idx,
            items: Vec::new(),
            held: BTreeSet::new(),
            last_change: opened_at,
            snapshot: IncidentSnapshot {
                id,
                kind: rule.kind.clone(),
                severity: rule.severity,
                location: Location::default(),
                departments: Vec::new(),
                opened_at,
                detected_at,
                updated_at: opened_at,
                evidence: Vec::new(),
                cleared_at: None,
                merged_into: None,
                confidence: 0.0,
            },
        };
        for item in items {
            inc.add(item);
        }
        inc.refresh(&rule.departments);
        inc
    }

    /// An incident that was open before a restart, rebuilt from its last snapshot (kept as is:
    /// same id, times and evidence). Its conditions are not held: the restarted detectors know
    /// nothing of them and will never clear them, so it clears `clear_after_secs` after its
    /// latest evidence unless new evidence joins it first.
    pub(super) fn restore(rule_idx: usize, snapshot: IncidentSnapshot, items: Vec<Item>) -> Self {
        let latest = items.iter().map(|i| i.anomaly.ts).max();
        OpenIncident {
            rule: rule_idx,
            last_change: latest.unwrap_or(snapshot.opened_at).max(snapshot.opened_at),
            items,
            held: BTreeSet::new(),
            snapshot,
        }
    }

    pub(super) fn add(&mut self, item: Item) {
        let a = &item.anomaly;
        if item.active {
            self.held
                .insert((a.device_id.clone(), a.signal.clone(), a.metric.clone()));
        }
        self.last_change = self.last_change.max(a.ts);
        self.snapshot.updated_at = self.snapshot.updated_at.max(a.ts);
        self.snapshot.opened_at = self.snapshot.opened_at.min(a.ts);
        if self.snapshot.evidence.len() < MAX_EVIDENCE {
            self.snapshot.evidence.push(Evidence {
                device_id: a.device_id.clone(),
                metric: a.metric.clone(),
                detector: a.detector.clone(),
                ts: a.ts,
                value: a.value,
                signal: a.signal.clone(),
                score: a.score,
                reason: a.reason.clone(),
                weight: item.weight,
            });
        }
        self.items.push(item);
    }

    /// Recomputes location (centroid of distinct evidence devices) and departments.
    pub(super) fn refresh(&mut self, extra_departments: &[String]) {
        let mut seen = BTreeSet::new();
        let (mut lat, mut lon, mut n) = (0.0, 0.0, 0.0);
        let mut departments: BTreeSet<String> = extra_departments.iter().cloned().collect();
        for item in &self.items {
            if seen.insert(item.anomaly.device_id.as_str()) {
                lat += item.location.lat;
                lon += item.location.lon;
                n += 1.0;
                departments.insert(item.department.clone());
            }
        }
        if n > 0.0 {
            self.snapshot.location = Location {
                lat: lat / n,
                lon: lon / n,
            };
        }
        self.snapshot.departments = departments.into_iter().collect();
        // Noisy-OR over the strongest weighted evidence per (device, signal): independent
        // witnesses raise confidence; one faulty device repeating itself does not.
        let mut strongest: std::collections::BTreeMap<(&str, &str), f64> = Default::default();
        for item in &self.items {
            let k = (
                item.anomaly.device_id.as_str(),
                item.anomaly.signal.as_str(),
            );
            let s = strongest.entry(k).or_insert(0.0);
            *s = s.max(item.weighted_score());
        }
        let doubt: f64 = strongest.values().map(|s| 1.0 - s).product();
        self.snapshot.confidence = ((1.0 - doubt) * 1000.0).round() / 1000.0;
        self.snapshot
            .evidence
            .sort_by(|a, b| (a.ts, &a.device_id, &a.signal).cmp(&(b.ts, &b.device_id, &b.signal)));
    }

    pub(super) fn release(&mut self, key: (&str, &str, &str), at: EventTime) {
        let before = self.held.len();
        self.held
            .retain(|(d, s, m)| (d.as_str(), s.as_str(), m.as_str()) != key);
        if self.held.len() != before {
            self.last_change = self.last_change.max(at);
        }
    }

    pub(super) fn has_device(&self, device: &str) -> bool {
        self.items.iter().any(|i| i.anomaly.device_id == device)
    }

    pub(super) fn within(&self, loc: &Location, radius_m: f64) -> bool {
        self.items
            .iter()
            .any(|i| i.location.distance_m(loc) <= radius_m)
    }

    pub(super) fn near(&self, other: &OpenIncident, radius_m: f64) -> bool {
        self.items
            .iter()
            .any(|i| other.within(&i.location, radius_m))
    }

    /// When this incident clears if nothing else happens: `clear_after` after the last change,
    /// once no condition is held.
    pub(super) fn clear_time(&self, clear_after_secs: f64) -> Option<EventTime> {
        self.held
            .is_empty()
            .then(|| self.last_change.plus_secs(clear_after_secs))
    }
}

fn compact_time(t: EventTime) -> String {
    match Utc.timestamp_millis_opt(t.0).single() {
        Some(d) => d.format("%Y%m%dT%H%M%SZ").to_string(),
        None => t.0.to_string(),
    }
}
