//! Trigger evaluation: does the pending evidence near a new anomaly satisfy a rule?

use crate::config::pipeline::{IncidentRule, Scope};

use super::Item;

/// Whether `signal` appears in any trigger requirement of `rule` (it can open an incident).
pub(super) fn is_trigger_signal(rule: &IncidentRule, signal: &str) -> bool {
    rule.trigger.iter().any(|alt| {
        alt.all
            .iter()
            .any(|r| r.signals.iter().any(|s| s == signal))
    })
}

/// Indices into `pool` of the evidence that opens an incident, if one alternative of the
/// rule's trigger holds around `new` (the anomaly just added). Alternatives are tried in order;
/// the first that holds wins, and its evidence is every candidate matching one of its
/// requirements (so the incident starts with all the evidence that explains it).
pub(super) fn evaluate(rule: &IncidentRule, pool: &[Item], new: &Item) -> Option<Vec<usize>> {
    let candidates: Vec<usize> = pool
        .iter()
        .enumerate()
        .filter(|(_, p)| match rule.scope {
            Scope::Device => p.anomaly.device_id == new.anomaly.device_id,
            Scope::Area => p.location.distance_m(&new.location) <= rule.radius_m,
        })
        .map(|(i, _)| i)
        .collect();
    for alt in &rule.trigger {
        let mut chosen: Vec<usize> = Vec::new();
        let holds = alt.all.iter().all(|req| {
            let matching: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| req.signals.contains(&pool[i].anomaly.signal))
                .collect();
            let mut devices: Vec<&str> = matching
                .iter()
                .map(|&i| pool[i].anomaly.device_id.as_str())
                .collect();
            devices.sort_unstable();
            devices.dedup();
            let score: f64 = matching.iter().map(|&i| pool[i].weighted_score()).sum();
            let ok = devices.len() >= req.min_devices && score + 1e-9 >= req.min_score;
            if ok {
                chosen.extend(matching);
            }
            ok
        });
        if holds {
            chosen.sort_unstable();
            chosen.dedup();
            return Some(chosen);
        }
    }
    None
}
