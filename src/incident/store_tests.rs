//! Incident store: upsert rules, lifecycle, filters, ordering, history, broadcast and gauges.

use std::sync::Arc;

use super::*;
use crate::model::{EventTime, Evidence, IncidentSnapshot, IncidentStatus, Location, Severity};
use crate::telemetry::Metrics;

fn evidence(n: usize) -> Vec<Evidence> {
    (0..n)
        .map(|i| Evidence {
            device_id: format!("PL-{i:04}"),
            metric: "pressure_kpa".into(),
            detector: "step_drop".into(),
            ts: EventTime(1_000 * i as i64),
            value: 231.0,
            signal: "pressure_drop".into(),
            score: 0.9,
            reason: "pressure dropped".into(),
            weight: 1.0,
        })
        .collect()
}

fn snap(id: &str, kind: &str, updated: i64, n_evidence: usize) -> IncidentSnapshot {
    IncidentSnapshot {
        id: id.into(),
        kind: kind.into(),
        severity: Severity::High,
        location: Location {
            lat: 1.3,
            lon: 103.8,
        },
        departments: vec!["transport".into(), "water".into()],
        opened_at: EventTime(0),
        detected_at: EventTime(0),
        updated_at: EventTime(updated),
        evidence: evidence(n_evidence),
        cleared_at: None,
        merged_into: None,
        confidence: 0.5,
    }
}

#[test]
fn new_snapshot_opens_and_update_keeps_lifecycle() {
    let store = IncidentStore::default();
    assert_eq!(
        store.apply_snapshot(snap("a", "burst", 10, 1)).status,
        IncidentStatus::Open
    );
    store
        .ack("a", "ops1", Some("looking"), EventTime(20))
        .expect("ack");
    let mut s = snap("a", "burst", 15, 2);
    s.severity = Severity::Critical;
    s.opened_at = EventTime(5);
    let inc = store.apply_snapshot(s);
    assert_eq!(inc.status, IncidentStatus::Acknowledged);
    assert_eq!(inc.severity, Severity::Critical);
    assert_eq!(inc.evidence.len(), 2);
    assert_eq!(inc.opened_at, EventTime(0), "first opened_at is kept");
    assert_eq!(
        inc.updated_at,
        EventTime(20),
        "updated_at never moves backwards"
    );
}

#[test]
fn cleared_snapshot_resolves_and_new_evidence_reopens() {
    let store = IncidentStore::default();
    store.apply_snapshot(snap("a", "burst", 10, 1));
    let mut cleared = snap("a", "burst", 10, 1);
    cleared.cleared_at = Some(EventTime(100));
    let inc = store.apply_snapshot(cleared.clone());
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.updated_at, EventTime(100));
    // The same cleared snapshot again changes nothing in the history.
    store.apply_snapshot(cleared);
    // Same evidence, no cleared_at: stays resolved.
    assert_eq!(
        store.apply_snapshot(snap("a", "burst", 110, 1)).status,
        IncidentStatus::Resolved
    );
    // More evidence: reopened.
    assert_eq!(
        store.apply_snapshot(snap("a", "burst", 120, 2)).status,
        IncidentStatus::Open
    );
    let h = store.history("a").expect("history");
    let steps: Vec<_> = h.iter().map(|t| (t.from, t.to, t.actor.as_str())).collect();
    assert_eq!(
        steps,
        vec![
            (
                IncidentStatus::Open,
                IncidentStatus::Resolved,
                CORRELATOR_ACTOR
            ),
            (
                IncidentStatus::Resolved,
                IncidentStatus::Open,
                CORRELATOR_ACTOR
            ),
        ]
    );
    assert_eq!(h[0].at, EventTime(100));
}

#[test]
fn merged_snapshot_resolves_with_the_target_named() {
    let store = IncidentStore::default();
    store.apply_snapshot(snap("a", "burst", 10, 1));
    let mut merged = snap("a", "burst", 40, 2);
    merged.merged_into = Some("b".into());
    assert_eq!(
        store.apply_snapshot(merged).status,
        IncidentStatus::Resolved
    );
    let h = store.history("a").expect("history");
    assert_eq!(h[0].reason.as_deref(), Some("merged into b"));
    assert_eq!(h[0].at, EventTime(40));
}

#[test]
fn lifecycle_transitions_and_errors() {
    let store = IncidentStore::default();
    assert_eq!(
        store.ack("nope", "ops", None, EventTime(1)),
        Err(LifecycleError::NotFound { id: "nope".into() })
    );
    store.apply_snapshot(snap("a", "burst", 10, 1));
    store
        .ack("a", "ops", None, EventTime(11))
        .expect("ack from open");
    assert_eq!(
        store.ack("a", "ops", None, EventTime(12)),
        Err(LifecycleError::InvalidTransition {
            from: IncidentStatus::Acknowledged,
            to: IncidentStatus::Acknowledged
        })
    );
    assert_eq!(
        store.dispatch("a", "disp", EventTime(13)).map(|i| i.status),
        Ok(IncidentStatus::Dispatched)
    );
    assert!(
        store.ack("a", "ops", None, EventTime(14)).is_err(),
        "no ack after dispatch"
    );
    assert!(
        store.dispatch("a", "disp", EventTime(14)).is_err(),
        "no double dispatch"
    );
    let done = store
        .resolve("a", "crew", Some("valve closed"), EventTime(15))
        .expect("resolve");
    assert_eq!(done.status, IncidentStatus::Resolved);
    assert_eq!(done.updated_at, EventTime(15));
    let err = store
        .resolve("a", "crew", None, EventTime(16))
        .expect_err("resolved twice");
    assert_eq!(
        err.to_string(),
        "cannot move an incident from resolved to resolved"
    );
    let h = store.history("a").expect("history");
    assert_eq!(h.len(), 3);
    assert_eq!(h[2].reason.as_deref(), Some("valve closed"));
    assert_eq!(h[2].actor, "crew");
    // Dispatch straight from open, resolve straight from open.
    store.apply_snapshot(snap("b", "burst", 10, 1));
    store
        .dispatch("b", "disp", EventTime(20))
        .expect("dispatch from open");
    store.apply_snapshot(snap("c", "burst", 10, 1));
    store
        .resolve("c", "ops", None, EventTime(20))
        .expect("resolve from open");
    assert!(store.history("zzz").is_none());
}

#[test]
fn list_filters_sorts_and_limits() {
    let store = IncidentStore::default();
    store.apply_snapshot(snap("old", "burst", 10, 1));
    let mut flood = snap("flood", "flooding", 30, 1);
    flood.departments = vec!["drainage".into()];
    store.apply_snapshot(flood);
    let mut low = snap("low", "burst", 30, 1);
    low.severity = Severity::Low;
    store.apply_snapshot(low);
    store.ack("old", "ops", None, EventTime(20)).expect("ack");

    let ids =
        |f: IncidentFilter| -> Vec<String> { store.list(&f).into_iter().map(|i| i.id).collect() };
    // Same updated_at: higher severity first.
    assert_eq!(ids(IncidentFilter::default()), ["flood", "low", "old"]);
    assert_eq!(
        ids(IncidentFilter {
            status: Some(IncidentStatus::Acknowledged),
            ..Default::default()
        }),
        ["old"]
    );
    assert_eq!(
        ids(IncidentFilter {
            kind: Some("burst".into()),
            ..Default::default()
        }),
        ["low", "old"]
    );
    assert_eq!(
        ids(IncidentFilter {
            department: Some("drainage".into()),
            ..Default::default()
        }),
        ["flood"]
    );
    assert_eq!(
        ids(IncidentFilter {
            since: Some(EventTime(20)),
            ..Default::default()
        }),
        ["flood", "low", "old"]
    );
    assert_eq!(
        ids(IncidentFilter {
            since: Some(EventTime(21)),
            ..Default::default()
        }),
        ["flood", "low"]
    );
    assert_eq!(
        ids(IncidentFilter {
            limit: Some(1),
            ..Default::default()
        }),
        ["flood"]
    );
}

#[test]
fn all_is_sorted_by_opened_at_then_id() {
    let store = IncidentStore::default();
    for (id, opened) in [("b", 5), ("a", 5), ("c", 1)] {
        let mut s = snap(id, "burst", 10, 1);
        s.opened_at = EventTime(opened);
        store.apply_snapshot(s);
    }
    let ids: Vec<String> = store.all().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["c", "a", "b"]);
    assert_eq!(store.len(), 3);
    assert_eq!(store.get("a").map(|i| i.id), Some("a".to_string()));
    assert!(store.get("x").is_none());
}

#[test]
fn subscribers_see_every_change_in_order() {
    let store = IncidentStore::default();
    let mut rx = store.subscribe();
    store.apply_snapshot(snap("a", "burst", 10, 1));
    store.ack("a", "ops", None, EventTime(11)).expect("ack");
    let _ = store.ack("a", "ops", None, EventTime(12)); // refused: no change broadcast
    store
        .resolve("a", "ops", None, EventTime(13))
        .expect("resolve");
    let seen: Vec<IncidentStatus> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|i| i.status)
        .collect();
    assert_eq!(
        seen,
        [
            IncidentStatus::Open,
            IncidentStatus::Acknowledged,
            IncidentStatus::Resolved
        ]
    );
}

#[test]
fn gauge_and_counters_follow_the_store() {
    let metrics = Arc::new(Metrics::new());
    let store = IncidentStore::new(Some(metrics.clone()));
    store.apply_snapshot(snap("a", "burst", 10, 1));
    store.apply_snapshot(snap("b", "burst", 10, 1));
    store.apply_snapshot(snap("b", "burst", 11, 2));
    store.ack("a", "ops", None, EventTime(12)).expect("ack");
    assert_eq!(metrics.incidents.get(["burst", "open"]), 1.0);
    assert_eq!(metrics.incidents.get(["burst", "acknowledged"]), 1.0);
    assert_eq!(metrics.incidents.get(["burst", "resolved"]), 0.0);
    assert_eq!(metrics.incidents_opened_total.get(["burst"]), 2);
    assert_eq!(metrics.incident_updates_total.get(["burst"]), 1);
    // A snapshot that changes the kind moves the count between kinds.
    store.apply_snapshot(snap("b", "flooding", 13, 2));
    assert_eq!(metrics.incidents.get(["burst", "open"]), 0.0);
    assert_eq!(metrics.incidents.get(["flooding", "open"]), 1.0);
}
