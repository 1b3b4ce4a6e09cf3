//! Correlation: anomalies from many devices and departments become incidents, by distance and
//! event-time window, following the incident rules in `pipelines/`.
//!
//! Pure and deterministic: no timely, no tokio, no wall clock. Given the same anomalies in the
//! same order (the dataflow feeds them sorted by event time) and the same watermarks, it emits the
//! same incident snapshots.
//!
//! How an anomaly is handled (rules are visited highest priority first):
//! 1. A `Cleared` anomaly releases the condition wherever it is held (pending or in an incident).
//! 2. A `Raised` anomaly first joins an open incident of the rule it belongs to when its device is
//!    within `radius_m` of a device already in the incident (or is the same device, for
//!    `scope: device`): one real-world event grows one incident.
//! 3. Otherwise a recently cleared incident that matches reopens (same id), so a flapping
//!    condition does not produce a new incident every time.
//! 4. Otherwise it waits in the rule's pending pool; when the pool near it satisfies one of the
//!    rule's trigger alternatives, an incident opens with all that evidence, and the evidence is
//!    removed from every pool (so two kinds never open on the same evidence).
//! 5. Once consumed by a rule, lower-priority rules do not see the anomaly; an opening
//!    higher-priority incident absorbs nearby open incidents of the kinds it `absorbs`.
//!
//! An incident clears when none of its conditions is still raised and no evidence has arrived for
//! `clear_after_secs`; the clear time is computed from event times (not from when watermarks
//! happen to arrive), so results do not depend on arrival speed.

mod open;
mod trigger;

use std::sync::Arc;

use crate::config::pipeline::{IncidentRule, PipelineSet, Scope};
use crate::config::registers::Registry;
use crate::model::{Anomaly, EventTime, IncidentSnapshot, Location, Phase};

use open::OpenIncident;

/// The correlation seam the dataflow drives.
pub trait Correlate {
    /// Takes one anomaly (in event-time order) and appends any incident changes to `out`.
    fn ingest(&mut self, anomaly: Anomaly, out: &mut Vec<IncidentSnapshot>);
    /// Event time has reached `watermark`: clear incidents whose quiet time has passed.
    fn on_watermark(&mut self, watermark: EventTime, out: &mut Vec<IncidentSnapshot>);
}

/// One anomaly with what the register knows about its device.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) anomaly: Anomaly,
    pub(crate) location: Location,
    pub(crate) department: String,
    /// Still raised (no `Cleared` seen yet). Camera events never clear: they age out.
    pub(crate) active: bool,
    /// The device had a raised health condition (silent, frozen, out of range, ...) when
    /// this evidence came in.
    pub(crate) unhealthy: bool,
    /// Weight of this evidence under the rule holding it (1, or the rule's
    /// `unhealthy_weight` for an unhealthy device).
    pub(crate) weight: f64,
}

impl Item {
    /// Score counted towards triggers and confidence.
    pub(crate) fn weighted_score(&self) -> f64 {
        (self.anomaly.score * self.weight).clamp(0.0, 1.0)
    }
}

impl Item {
    fn key(&self) -> (&str, &str, &str) {
        (
            &self.anomaly.device_id,
            &self.anomaly.signal,
            &self.anomaly.metric,
        )
    }
}

/// The correlator over a pipeline set and an asset register.
pub struct Correlator {
    rules: Vec<IncidentRule>,
    registry: Arc<Registry>,
    pending: Vec<Vec<Item>>,
    open: Vec<OpenIncident>,
    /// Cleared incidents still inside their reopen hold-off.
    closed: Vec<OpenIncident>,
    /// Anomalies from devices missing from the register (no location: cannot correlate).
    pub unlocated: u64,
    /// Signals that report a device's own health.
    health_signals: std::collections::BTreeSet<String>,
    /// Signals of momentary evidence (camera events): they never clear, they age out after
    /// the rule's window instead of being held as a raised condition.
    momentary_signals: std::collections::BTreeSet<String>,
    /// Raised health conditions per device: (signal, metric).
    health: std::collections::BTreeMap<String, std::collections::BTreeSet<(String, String)>>,
}

impl Correlator {
    /// A correlator for the rules of `pipelines`.
    pub fn new(pipelines: &PipelineSet, registry: Arc<Registry>) -> Correlator {
        let rules = pipelines.rules.clone();
        let health_signals = pipelines
            .signals
            .values()
            .filter(|s| s.is_health())
            .map(|s| s.name.clone())
            .collect();
        let momentary_signals = momentary(pipelines);
        Correlator {
            momentary_signals,
            pending: vec![Vec::new(); rules.len()],
            rules,
            registry,
            open: Vec::new(),
            closed: Vec::new(),
            unlocated: 0,
            health_signals,
            health: Default::default(),
        }
    }

    /// Seeds incidents that were open before a restart (`IncidentStore::open_snapshots`), so
    /// new evidence for the same event joins them (same id) instead of opening a duplicate.
    /// Snapshots of a kind no rule produces any more, or already open, are skipped; evidence
    /// from devices no longer in the register stays in the snapshot but cannot attract more.
    /// Returns how many were restored.
    pub fn restore(&mut self, snapshots: Vec<IncidentSnapshot>) -> usize {
        let before = self.open.len();
        for snap in snapshots {
            let Some(ri) = self.rules.iter().position(|r| r.kind == snap.kind) else {
                continue;
            };
            if self.open.iter().any(|o| o.snapshot.id == snap.id) {
                continue;
            }
            let items = snap
                .evidence
                .iter()
                .filter_map(|e| {
                    let device = self.registry.device(&e.device_id)?;
                    Some(Item {
                        anomaly: Anomaly {
                            device_id: e.device_id.clone(),
                            metric: e.metric.clone(),
                            signal: e.signal.clone(),
                            detector: e.detector.clone(),
                            ts: e.ts,
                            value: e.value,
                            score: e.score,
                            phase: Phase::Raised,
                            reason: e.reason.clone(),
                            arrival: None,
                        },
                        location: device.location,
                        department: device.department.clone(),
                        active: false,
                        unhealthy: e.weight < 1.0,
                        weight: e.weight,
                    })
                })
                .collect();
            self.open.push(OpenIncident::restore(ri, snap, items));
        }
        self.open.len() - before
    }

    /// Swaps in new incident rules (hot reload). Open and recently cleared incidents of kinds
    /// that still exist carry on under the new rule; pending evidence is kept for rules that did
    /// not change; incidents of removed kinds are left to the store as they are.
    pub fn reload(&mut self, pipelines: &PipelineSet) {
        let new_rules = pipelines.rules.clone();
        let map: Vec<Option<usize>> = self
            .rules
            .iter()
            .map(|r| new_rules.iter().position(|n| n.kind == r.kind))
            .collect();
        let remap = |list: &mut Vec<OpenIncident>| {
            list.retain_mut(|o| match map.get(o.rule).copied().flatten() {
                Some(ni) => {
                    o.rule = ni;
                    true
                }
                None => false,
            });
        };
        remap(&mut self.open);
        remap(&mut self.closed);
        let mut pending = vec![Vec::new(); new_rules.len()];
        for (ri, pool) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if let Some(ni) = map.get(ri).copied().flatten() {
                if new_rules[ni] == self.rules[ri] {
                    pending[ni] = pool;
                }
            }
        }
        self.pending = pending;
        self.rules = new_rules;
        self.health_signals = pipelines
            .signals
            .values()
            .filter(|s| s.is_health())
            .map(|s| s.name.clone())
            .collect();
        self.momentary_signals = momentary(pipelines);
    }

    /// Incidents currently open (not cleared), as snapshots.
    pub fn open_snapshots(&self) -> Vec<IncidentSnapshot> {
        self.open.iter().map(|o| o.snapshot.clone()).collect()
    }

    fn release(&mut self, a: &Anomaly) {
        let key = (a.device_id.as_str(), a.signal.as_str(), a.metric.as_str());
        for pool in &mut self.pending {
            for item in pool.iter_mut().filter(|i| i.key() == key) {
                item.active = false;
            }
        }
        for inc in &mut self.open {
            inc.release(key, a.ts);
        }
    }

    fn matches(rule: &IncidentRule, inc: &OpenIncident, item: &Item) -> bool {
        match rule.scope {
            Scope::Device => inc.has_device(&item.anomaly.device_id),
            Scope::Area => inc.within(&item.location, rule.radius_m),
        }
    }

    /// Merges nearby open incidents of the kinds the winner's rule absorbs into it, then emits
    /// the winner's snapshot.
    fn absorb(&mut self, winner: usize, out: &mut Vec<IncidentSnapshot>) {
        let rule = &self.rules[self.open[winner].rule];
        if rule.absorbs.is_empty() {
            out.push(self.open[winner].snapshot.clone());
            return;
        }
        let (absorbs, radius) = (rule.absorbs.clone(), rule.radius_m);
        let mut i = 0;
        while i < self.open.len() {
            let victim_kind = self.rules[self.open[i].rule].kind.clone();
            let near = i != winner && self.open[i].near(&self.open[winner], radius);
            if near && absorbs.contains(&victim_kind) {
                let mut victim = self.open.remove(i);
                let winner_idx = if i < winner { winner - 1 } else { winner };
                let winner_id = self.open[winner_idx].snapshot.id.clone();
                victim.snapshot.merged_into = Some(winner_id);
                out.push(victim.snapshot.clone());
                let winner_inc = &mut self.open[winner_idx];
                for item in victim.items {
                    winner_inc.add(item);
                }
                let extra = &self.rules[winner_inc.rule].departments;
                winner_inc.refresh(extra);
                return self.absorb(winner_idx, out);
            }
            i += 1;
        }
        out.push(self.open[winner].snapshot.clone());
    }
}

fn momentary(pipelines: &PipelineSet) -> std::collections::BTreeSet<String> {
    pipelines
        .signals
        .values()
        .filter(|s| matches!(s.detector, crate::detect::DetectorConfig::Event(_)))
        .map(|s| s.name.clone())
        .collect()
}

impl Correlate for Correlator {
    fn ingest(&mut self, anomaly: Anomaly, out: &mut Vec<IncidentSnapshot>) {
        if self.health_signals.contains(&anomaly.signal) {
            let key = (anomaly.signal.clone(), anomaly.metric.clone());
            let set = self.health.entry(anomaly.device_id.clone()).or_default();
            if anomaly.phase == Phase::Raised {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
        if anomaly.phase == Phase::Cleared {
            self.release(&anomaly);
            return;
        }
        let Some(device) = self.registry.device(&anomaly.device_id) else {
            self.unlocated += 1;
            return;
        };
        // A health signal is never discounted by the condition it reports.
        let unhealthy = !self.health_signals.contains(&anomaly.signal)
            && self
                .health
                .get(&anomaly.device_id)
                .is_some_and(|s| !s.is_empty());
        let active = !self.momentary_signals.contains(&anomaly.signal);
        let mut item = Item {
            location: device.location,
            department: device.department.clone(),
            anomaly,
            active,
            unhealthy,
            weight: 1.0,
        };
        let signal = item.anomaly.signal.clone();
        let mut consumed_at: Option<i32> = None;
        for ri in 0..self.rules.len() {
            let rule = &self.rules[ri];
            if consumed_at.is_some_and(|p| rule.priority < p) {
                break;
            }
            if !rule.all_signals().contains(signal.as_str()) {
                continue;
            }
            item.weight = if item.unhealthy {
                rule.unhealthy_weight
            } else {
                1.0
            };
            // 2. Join an open incident of this rule.
            if let Some(idx) = self
                .open
                .iter()
                .position(|o| o.rule == ri && Self::matches(rule, o, &item))
            {
                let extra = rule.departments.clone();
                self.open[idx].add(item.clone());
                self.open[idx].refresh(&extra);
                self.absorb(idx, out);
                consumed_at = Some(self.rules[ri].priority);
                continue;
            }
            // 3. Reopen a recently cleared one.
            if let Some(idx) = self
                .closed
                .iter()
                .position(|o| o.rule == ri && Self::matches(rule, o, &item))
            {
                let mut inc = self.closed.remove(idx);
                let extra = rule.departments.clone();
                inc.snapshot.cleared_at = None;
                inc.add(item.clone());
                inc.refresh(&extra);
                self.open.push(inc);
                let last = self.open.len() - 1;
                self.absorb(last, out);
                consumed_at = Some(self.rules[ri].priority);
                continue;
            }
            if rule.supporting.contains(&signal) && !trigger::is_trigger_signal(rule, &signal) {
                continue;
            }
            // 4. Pending pool; open when a trigger alternative holds.
            let now = item.anomaly.ts;
            let window_ms = (rule.window_secs * 1000.0) as i64;
            let pool = &mut self.pending[ri];
            pool.retain(|p| p.active || p.anomaly.ts.0 + window_ms >= now.0);
            pool.push(item.clone());
            if let Some(chosen) = trigger::evaluate(rule, pool, &item) {
                let items: Vec<Item> = chosen.iter().map(|&i| pool[i].clone()).collect();
                let used: Vec<(String, String, String, EventTime)> = items
                    .iter()
                    .map(|i| {
                        let a = &i.anomaly;
                        (
                            a.device_id.clone(),
                            a.signal.clone(),
                            a.metric.clone(),
                            a.ts,
                        )
                    })
                    .collect();
                for pool in &mut self.pending {
                    pool.retain(|p| {
                        let a = &p.anomaly;
                        !used.iter().any(|u| {
                            u.0 == a.device_id && u.1 == a.signal && u.2 == a.metric && u.3 == a.ts
                        })
                    });
                }
                let rule = &self.rules[ri];
                self.open.push(OpenIncident::new(ri, rule, items, now));
                let last = self.open.len() - 1;
                self.absorb(last, out);
                consumed_at = Some(self.rules[ri].priority);
            }
        }
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Vec<IncidentSnapshot>) {
        let mut i = 0;
        while i < self.open.len() {
            let clear_after = self.rules[self.open[i].rule].clear_after_secs;
            match self.open[i].clear_time(clear_after) {
                Some(at) if at <= watermark => {
                    let mut inc = self.open.remove(i);
                    inc.snapshot.cleared_at = Some(at);
                    inc.snapshot.updated_at = inc.snapshot.updated_at.max(at);
                    out.push(inc.snapshot.clone());
                    self.closed.push(inc);
                }
                _ => i += 1,
            }
        }
        let rules = &self.rules;
        self.closed.retain(|c| {
            let hold = rules[c.rule].reopen_within_secs();
            c.snapshot
                .cleared_at
                .is_some_and(|at| at.plus_secs(hold) > watermark)
        });
        for (ri, pool) in self.pending.iter_mut().enumerate() {
            let window_ms = (rules[ri].window_secs * 1000.0) as i64;
            pool.retain(|p| p.active || p.anomaly.ts.0 + window_ms >= watermark.0);
        }
    }
}

#[cfg(test)]
mod restore_tests;
#[cfg(test)]
mod tests;
