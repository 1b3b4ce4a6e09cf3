//! The dispatcher task on tokio's paused clock (answer timeouts) and under concurrent load (no
//! duplicate dispatch), with an in-memory store and the outbox read directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::*;
use crate::incident::dispatch::{EscalationReason, MemoryDispatchLog};
use crate::model::{CrewState, IncidentSnapshot, IncidentStatus};

const T0: EventTime = EventTime(1_795_335_300_000);

fn crews() -> Vec<Crew> {
    let crew = |id: &str, dept: &str, lat: f64, skill: &str| Crew {
        crew_id: id.into(),
        department: dept.into(),
        home: Location { lat, lon: 120.0 },
        skills: vec![skill.into()],
    };
    vec![
        crew("W-01", "water", 30.01, "valve"),
        crew("W-02", "water", 30.02, "valve"),
        crew("T-01", "traffic", 30.01, "traffic_control"),
        crew("T-02", "traffic", 30.02, "traffic_control"),
    ]
}

fn burst(evidence: usize) -> IncidentSnapshot {
    let evidence: Vec<serde_json::Value> = (0..evidence)
        .map(|i| {
            serde_json::json!({"device_id": format!("PG-{i}"), "metric": "pressure_kpa",
                "detector": "step", "ts": "2026-11-22T08:15:00Z", "value": 1.0,
                "signal": "pressure_drop", "score": 1.0, "reason": "drop"})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "id": "B1", "kind": "water_main_burst", "severity": "critical",
        "location": {"lat": 30.0, "lon": 120.0}, "departments": ["traffic", "water"],
        "opened_at": "2026-11-22T08:15:00Z", "detected_at": "2026-11-22T08:15:00Z",
        "updated_at": "2026-11-22T08:15:00Z", "evidence": evidence
    }))
    .expect("snapshot")
}

struct Rig {
    store: Arc<IncidentStore>,
    handle: DispatchHandle,
    sent: mpsc::Receiver<DispatchMessage>,
    _stop: watch::Sender<bool>,
}

fn rig(answer_timeout_secs: u64) -> Rig {
    let store = Arc::new(IncidentStore::new(None));
    let (outbox, sent) = mpsc::channel(64);
    let (stop, shutdown) = watch::channel(false);
    let config = DispatchConfig {
        answer_timeout_secs,
        ..DispatchConfig::default()
    };
    let opts = DispatchOptions {
        config,
        crews: crews(),
        devices: HashMap::new(),
        store: store.clone(),
        log: Arc::new(MemoryDispatchLog::default()),
        clock: TokioClock::starting_at(T0),
        metrics: None,
    };
    let (handle, _task) = spawn(opts, outbox, shutdown);
    for c in crews() {
        handle.inbox().status(CrewStatus {
            crew_id: c.crew_id,
            ts: T0,
            location: c.home,
            state: CrewState::Available,
        });
    }
    Rig {
        store,
        handle,
        sent,
        _stop: stop,
    }
}

async fn next(sent: &mut mpsc::Receiver<DispatchMessage>) -> DispatchMessage {
    tokio::time::timeout(Duration::from_secs(5), sent.recv())
        .await
        .expect("a dispatch within 5 s")
        .expect("outbox open")
}

#[tokio::test(start_paused = true)]
async fn no_answer_escalates_exactly_at_the_timeout_and_answers_move_the_incident() {
    let mut r = rig(60);
    r.store.apply_snapshot(burst(1));
    let mut first = [next(&mut r.sent).await, next(&mut r.sent).await];
    first.sort_by(|a, b| a.crew_id.cmp(&b.crew_id));
    let crews: Vec<&str> = first.iter().map(|m| m.crew_id.as_str()).collect();
    assert_eq!(crews, vec!["T-01", "W-01"]);
    assert_eq!(first[0].ts, T0);

    // The water crew accepts over MQTT; the traffic crew stays silent.
    r.handle.inbox().ack(CrewAck {
        crew_id: "W-01".into(),
        incident_id: "B1".into(),
        ts: T0,
        action: CrewAction::Accept,
    });
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(r.sent.try_recv().is_err(), "nothing before the deadline");
    assert_eq!(
        r.store.get("B1").map(|i| i.status),
        Some(IncidentStatus::Dispatched)
    );
    let escalated = next(&mut r.sent).await;
    assert_eq!(escalated.crew_id, "T-02");
    assert_eq!(escalated.ts, T0.plus_secs(60.0));
    let escalations = r.handle.escalations().expect("log");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0].reason, EscalationReason::NoAnswer);
    assert_eq!(escalations[0].from_crew.as_deref(), Some("T-01"));

    // Through the API: a crew cannot answer another crew's dispatch; its own works.
    let id = escalated.dispatch_id.clone();
    let theirs = r
        .handle
        .answer(&id, CrewAction::OnScene, Some("W-01"), "W-01")
        .await;
    assert_eq!(theirs, Err(DispatchError::NotYours(id.clone())));
    let on_scene = r
        .handle
        .answer(&id, CrewAction::OnScene, Some("T-02"), "T-02")
        .await
        .expect("own dispatch");
    assert_eq!(
        on_scene.status,
        crate::incident::dispatch::DispatchStatus::OnScene
    );
    assert_eq!(
        r.store.get("B1").map(|i| i.status),
        Some(IncidentStatus::OnScene)
    );
    for (crew, dispatch) in [("W-01", "B1.water.1"), ("T-02", id.as_str())] {
        r.handle
            .answer(dispatch, CrewAction::Resolved, None, "ops-1")
            .await
            .unwrap_or_else(|e| panic!("{crew}: {e}"));
    }
    assert_eq!(
        r.store.get("B1").map(|i| i.status),
        Some(IncidentStatus::Resolved)
    );
    let history = r.store.history("B1").expect("history");
    assert!(history.iter().any(|t| t.actor == "W-01"), "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_evidence_and_operator_clicks_never_duplicate_a_dispatch() {
    let mut r = rig(600);
    let mut tasks = Vec::new();
    for i in 1..=20 {
        let store = r.store.clone();
        tasks.push(tokio::spawn(async move {
            store.apply_snapshot(burst(i));
        }));
        let handle = r.handle.clone();
        tasks.push(tokio::spawn(async move {
            // Refused once the cases exist; either way never a second crew.
            let _ = handle.confirm("B1", "ops-1").await;
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let mut departments = [
        next(&mut r.sent).await.department,
        next(&mut r.sent).await.department,
    ];
    departments.sort();
    assert_eq!(departments, ["traffic".to_string(), "water".to_string()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(r.sent.try_recv().is_err(), "a third dispatch was sent");
    assert_eq!(r.handle.dispatches().expect("log").len(), 2);
    assert_eq!(
        r.handle.confirm("B1", "ops-1").await,
        Err(DispatchError::AlreadyDispatched("B1".into()))
    );
    assert_eq!(
        r.handle.confirm("nope", "ops-1").await,
        Err(DispatchError::UnknownIncident("nope".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_durable_store_neither_resends_nor_forgets_a_dispatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |store: Arc<IncidentStore>| {
        let (outbox, sent) = mpsc::channel(64);
        let (stop, shutdown) = watch::channel(false);
        let opts = DispatchOptions {
            config: DispatchConfig {
                answer_timeout_secs: 2,
                ..DispatchConfig::default()
            },
            crews: crews(),
            devices: HashMap::new(),
            log: store.clone(),
            store,
            clock: TokioClock::new(),
            metrics: None,
        };
        let (handle, task) = spawn(opts, outbox, shutdown);
        for c in crews() {
            handle.inbox().status(CrewStatus {
                crew_id: c.crew_id,
                ts: T0,
                location: c.home,
                state: CrewState::Available,
            });
        }
        (handle, task, sent, stop)
    };
    let store = Arc::new(IncidentStore::open(dir.path(), None).expect("durable store"));
    let (handle, task, mut sent, stop) = start(store.clone());
    store.apply_snapshot(burst(1));
    let first = [next(&mut sent).await.crew_id, next(&mut sent).await.crew_id];
    let _ = stop.send(true);
    task.await.expect("dispatcher stops");
    drop((handle, store));

    let store = Arc::new(IncidentStore::open(dir.path(), None).expect("reopens"));
    let (handle, _task, mut sent, _stop) = start(store);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sent.try_recv().is_err(),
        "restored cases are not sent again"
    );
    assert_eq!(handle.dispatches().expect("log").len(), 2);
    let mut next_crews = [next(&mut sent).await.crew_id, next(&mut sent).await.crew_id];
    next_crews.sort();
    assert_eq!(
        next_crews,
        ["T-02".to_string(), "W-02".to_string()],
        "first: {first:?}"
    );
    let reasons: Vec<EscalationReason> = handle
        .escalations()
        .expect("log")
        .iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        reasons,
        [EscalationReason::NoAnswer, EscalationReason::NoAnswer]
    );
}
