//! Store tests beyond the basics in `store_tests.rs`: merge, the full lifecycle, persistence
//! round trips and restart seeds, and a proptest of the state machine through the real store.

use proptest::prelude::*;

use super::IncidentStore;
use crate::incident::{Action, IncidentFilter, LifecycleError};
use crate::model::{EventTime, Evidence, IncidentSnapshot, IncidentStatus, Location, Severity};
use crate::telemetry::Metrics;

/// `n` pieces of evidence from devices named after `id`, so incidents never share evidence.
fn evidence(id: &str, n: usize) -> Vec<Evidence> {
    (0..n)
        .map(|k| Evidence {
            device_id: format!("{id}-dev{k}"),
            metric: "pressure_kpa".into(),
            detector: "step_drop".into(),
            ts: EventTime(1_000 * k as i64),
            value: 231.0,
            signal: "pressure_drop".into(),
            score: 0.9,
            reason: "pressure dropped".into(),
            weight: 1.0,
        })
        .collect()
}

fn snap(id: &str, n: usize) -> IncidentSnapshot {
    IncidentSnapshot {
        id: id.into(),
        kind: "water_main_burst".into(),
        severity: Severity::High,
        location: Location {
            lat: 1.3,
            lon: 103.8,
        },
        departments: vec![format!("dept-{id}")],
        opened_at: EventTime(0),
        detected_at: EventTime(0),
        updated_at: EventTime(1_000 * n as i64),
        evidence: evidence(id, n),
        cleared_at: None,
        merged_into: None,
        confidence: 0.5,
    }
}

fn t(ms: i64) -> EventTime {
    EventTime(ms)
}

#[test]
fn full_lifecycle_with_reasons_in_the_audit_trail() {
    let s = IncidentStore::default();
    s.apply_snapshot(snap("a", 1));
    s.ack("a", "ops", Some("seen"), t(10)).expect("ack");
    s.dispatch("a", "ops", t(11)).expect("dispatch");
    s.on_scene("a", "W-07", None, t(12)).expect("on scene");
    s.resolve("a", "W-07", Some("valve shut"), t(13))
        .expect("resolve");
    s.close("a", "ops", Some("reviewed"), t(14)).expect("close");
    s.reopen("a", "ops", Some("leaking again"), t(15))
        .expect("reopen");
    let h = s.history("a").expect("history");
    let steps: Vec<(Action, IncidentStatus, &str)> = h
        .iter()
        .map(|x| (x.action, x.to, x.actor.as_str()))
        .collect();
    use IncidentStatus::*;
    assert_eq!(
        steps,
        [
            (Action::Ack, Acknowledged, "ops"),
            (Action::Dispatch, Dispatched, "ops"),
            (Action::OnScene, OnScene, "W-07"),
            (Action::Resolve, Resolved, "W-07"),
            (Action::Close, Closed, "ops"),
            (Action::Reopen, Open, "ops"),
        ]
    );
    assert_eq!(h[3].reason.as_deref(), Some("valve shut"));
    assert_eq!(h[5].at, t(15));
    assert_eq!(
        s.close("a", "ops", None, t(16)),
        Err(LifecycleError::InvalidTransition {
            from: Open,
            to: Closed
        })
    );
    assert_eq!(
        s.history("a").map(|h| h.len()),
        Some(6),
        "refusals leave no trace"
    );
}

#[test]
fn merge_keeps_evidence_and_history_and_the_survivor_grows_with_the_merged() {
    let s = IncidentStore::default();
    s.apply_snapshot(snap("a", 2));
    s.apply_snapshot(snap("b", 1));
    s.ack("a", "ops", None, t(5)).expect("ack");
    let out = s
        .merge("a", "b", "ops", Some("same burst"), t(10))
        .expect("merges");
    assert_eq!(out.merged.status, IncidentStatus::Closed);
    assert_eq!(out.merged.merged_into.as_deref(), Some("b"));
    assert_eq!(
        out.merged.evidence.len(),
        2,
        "the merged one keeps its evidence"
    );
    assert_eq!(
        out.survivor.status,
        IncidentStatus::Open,
        "survivor status kept"
    );
    assert_eq!(out.survivor.evidence.len(), 3);
    assert_eq!(out.survivor.departments, ["dept-a", "dept-b"]);
    let ha = s.history("a").expect("history");
    assert_eq!(ha.len(), 2, "ack kept, merge added");
    assert_eq!(
        (ha[1].action, ha[1].related.as_deref()),
        (Action::Merge, Some("b"))
    );
    let hb = s.history("b").expect("history");
    assert_eq!(
        (hb[0].action, hb[0].from, hb[0].to, hb[0].related.as_deref()),
        (
            Action::Absorb,
            IncidentStatus::Open,
            IncidentStatus::Open,
            Some("a")
        )
    );
    assert_eq!(hb[0].reason.as_deref(), Some("same burst"));
    // The correlator keeps growing the merged incident: the survivor shows it, and the merged
    // one is not reopened.
    let grown = s.apply_snapshot(snap("a", 4));
    assert_eq!(grown.status, IncidentStatus::Closed);
    assert_eq!(s.get("b").map(|i| i.evidence.len()), Some(5));
    // Refusals.
    assert_eq!(
        s.merge("b", "b", "ops", None, t(11)),
        Err(LifecycleError::SelfMerge { id: "b".into() })
    );
    assert!(matches!(
        s.merge("a", "b", "ops", None, t(11)),
        Err(LifecycleError::Merged { .. })
    ));
    assert!(matches!(
        s.reopen("a", "ops", None, t(11)),
        Err(LifecycleError::Merged { .. })
    ));
    s.apply_snapshot(snap("c", 1));
    assert!(matches!(
        s.merge("c", "a", "ops", None, t(11)),
        Err(LifecycleError::Merged { .. })
    ));
    s.resolve("b", "ops", None, t(12)).expect("resolve");
    assert_eq!(
        s.merge("c", "b", "ops", None, t(13)),
        Err(LifecycleError::SurvivorNotLive {
            into: "b".into(),
            status: IncidentStatus::Resolved
        })
    );
    assert_eq!(
        s.merge("c", "zz", "ops", None, t(13)),
        Err(LifecycleError::NotFound { id: "zz".into() })
    );
}

#[test]
fn durable_store_round_trips_incidents_history_dispatches_and_gauges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (before, history_b) = {
        let s = IncidentStore::open(dir.path(), None).expect("opens");
        assert!(s.is_durable());
        s.apply_snapshot(snap("a", 2));
        s.apply_snapshot(snap("b", 1));
        s.ack("b", "ops", Some("on it"), t(10)).expect("ack");
        s.merge("a", "b", "ops", None, t(11)).expect("merge");
        s.dispatch_recorded(
            "b",
            "ops",
            t(12),
            "d-1",
            &serde_json::json!({"crew": "W-07"}),
        )
        .expect("dispatch");
        s.put_dispatch("d-2", &serde_json::json!({"crew": "W-08"}))
            .expect("put");
        assert!(s.delete_dispatch("d-2").expect("delete"));
        (s.all(), s.history("b").expect("history"))
    };
    let metrics = std::sync::Arc::new(Metrics::new());
    let s = IncidentStore::open(dir.path(), Some(metrics.clone())).expect("reopens");
    assert_eq!(s.all(), before);
    assert_eq!(s.history("b"), Some(history_b));
    let d: Vec<(String, serde_json::Value)> = s.load_dispatches().expect("dispatches");
    assert_eq!(
        d,
        vec![("d-1".to_string(), serde_json::json!({"crew": "W-07"}))]
    );
    assert_eq!(
        metrics.incidents.get(["water_main_burst", "dispatched"]),
        1.0
    );
    assert_eq!(metrics.incidents.get(["water_main_burst", "closed"]), 1.0);
    // The merge bookkeeping survived too: growing the merged one still grows the survivor.
    s.apply_snapshot(snap("a", 3));
    assert_eq!(s.get("b").map(|i| i.evidence.len()), Some(4));
}

#[test]
fn open_snapshots_are_the_live_unmerged_ones_with_their_own_evidence_in_event_time() {
    let s = IncidentStore::default();
    for id in ["a", "b", "c", "d"] {
        s.apply_snapshot(snap(id, 2));
    }
    s.ack("a", "ops", None, t(99_000)).expect("ack");
    s.resolve("b", "ops", None, t(99_000)).expect("resolve");
    s.merge("c", "a", "ops", None, t(99_000)).expect("merge");
    let open = s.open_snapshots();
    let ids: Vec<&str> = open.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["a", "d"]);
    assert_eq!(
        open[0].evidence.len(),
        2,
        "own evidence only, not the merged"
    );
    assert_eq!(
        open[0].updated_at,
        t(1_000),
        "evidence time, not the operator's clock"
    );
    assert!(open[0].cleared_at.is_none() && open[0].merged_into.is_none());
}

/// One step of the proptest.
#[derive(Debug, Clone)]
enum Op {
    Act(usize, Action),
    Merge(usize, usize),
    Grow(usize),
    Clear(usize),
}

const IDS: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    let operator = prop_oneof![
        Just(Action::Ack),
        Just(Action::Dispatch),
        Just(Action::OnScene),
        Just(Action::Resolve),
        Just(Action::Close),
        Just(Action::Reopen),
    ];
    prop_oneof![
        4 => (0..3usize, operator).prop_map(|(i, a)| Op::Act(i, a)),
        1 => (0..3usize, 0..3usize).prop_map(|(i, j)| Op::Merge(i, j)),
        1 => (0..3usize).prop_map(Op::Grow),
        1 => (0..3usize).prop_map(Op::Clear),
    ]
}

/// Runs `ops` and checks, after every step, that no incident is in an invalid state and that
/// each history has exactly one entry per successful change of that incident.
fn run_and_check(store: &IncidentStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut own = [1usize; 3];
    let mut expected = [0usize; 3];
    for (i, id) in IDS.iter().enumerate() {
        store.apply_snapshot(snap(id, own[i]));
    }
    for (step, op) in ops.iter().enumerate() {
        let now = t(100_000 + step as i64);
        match op {
            Op::Act(i, action) => {
                let (id, actor) = (IDS[*i], "ops");
                let result = match action {
                    Action::Ack => store.ack(id, actor, None, now),
                    Action::Dispatch => store.dispatch(id, actor, now),
                    Action::OnScene => store.on_scene(id, actor, None, now),
                    Action::Resolve => store.resolve(id, actor, None, now),
                    Action::Close => store.close(id, actor, None, now),
                    _ => store.reopen(id, actor, None, now),
                };
                expected[*i] += usize::from(result.is_ok());
            }
            Op::Merge(i, j) => {
                if store.merge(IDS[*i], IDS[*j], "ops", None, now).is_ok() {
                    expected[*i] += 1;
                    expected[*j] += 1;
                }
            }
            Op::Grow(i) | Op::Clear(i) => {
                let before = store.get(IDS[*i]).map(|x| (x.status, x.merged_into));
                let s = if let Op::Grow(_) = op {
                    own[*i] += 1;
                    snap(IDS[*i], own[*i])
                } else {
                    IncidentSnapshot {
                        cleared_at: Some(now),
                        ..snap(IDS[*i], own[*i])
                    }
                };
                let after = store.apply_snapshot(s).status;
                let (status, merged) = before.unwrap_or((IncidentStatus::Open, None));
                let want = match op {
                    Op::Grow(_) if merged.is_none() => match status {
                        IncidentStatus::Resolved | IncidentStatus::Closed => IncidentStatus::Open,
                        other => other,
                    },
                    Op::Clear(_) => Action::AutoResolve.target(status).unwrap_or(status),
                    _ => status,
                };
                prop_assert_eq!(after, want, "{:?} from {:?}", op, status);
                expected[*i] += usize::from(after != status);
            }
        }
        for (i, id) in IDS.iter().enumerate() {
            let inc = store.get(id).ok_or_else(|| TestCaseError::fail("lost"))?;
            let h = store.history(id).unwrap_or_default();
            prop_assert_eq!(h.len(), expected[i], "history of {} after {:?}", id, op);
            let mut status = IncidentStatus::Open;
            for entry in &h {
                prop_assert_eq!(entry.from, status, "chain broken in {}", id);
                prop_assert_eq!(entry.action.target(entry.from), Some(entry.to));
                status = entry.to;
            }
            prop_assert_eq!(inc.status, status, "status of {} is its last entry", id);
            if let Some(s) = &inc.merged_into {
                prop_assert_eq!(inc.status, IncidentStatus::Closed);
                let survivor = store
                    .get(s)
                    .ok_or_else(|| TestCaseError::fail("survivor"))?;
                for e in &inc.evidence {
                    prop_assert!(
                        survivor
                            .evidence
                            .iter()
                            .any(|x| x.device_id == e.device_id && x.ts == e.ts),
                        "survivor {} lacks {}",
                        s,
                        e.device_id
                    );
                }
            }
        }
    }
    let total: usize = IDS.len();
    prop_assert_eq!(store.list(&IncidentFilter::default()).len(), total);
    Ok(())
}

proptest! {
    #[test]
    fn random_actions_never_reach_an_invalid_state(ops in prop::collection::vec(op(), 1..60)) {
        run_and_check(&IncidentStore::default(), &ops)?;
    }
}

proptest! {
    // Each step is an fsync: fewer cases, same property, plus an identical reload.
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn durable_store_reloads_exactly_what_it_acknowledged(ops in prop::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (all, histories) = {
            let store = IncidentStore::open(dir.path(), None)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            run_and_check(&store, &ops)?;
            let h: Vec<_> = IDS.iter().map(|id| store.history(id)).collect();
            (store.all(), h)
        };
        let again = IncidentStore::open(dir.path(), None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.all(), all);
        let h: Vec<_> = IDS.iter().map(|id| again.history(id)).collect();
        prop_assert_eq!(h, histories);
    }
}
