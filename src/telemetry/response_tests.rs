//! The response histograms through the real dispatcher task (tokio's paused clock, in-memory
//! store and dispatch log, outbox read directly): time to the first crew, and a crew's
//! acceptance as the incident's first answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::*;
use crate::incident::dispatch::{DispatchConfig, MemoryDispatchLog, TokioClock};
use crate::incident::IncidentStore;
use crate::model::{
    Crew, CrewAction, CrewState, CrewStatus, EventTime, IncidentSnapshot, IncidentStatus, Location,
};
use crate::sink::dispatch::{spawn, DispatchOptions};

const T0: EventTime = EventTime(1_795_335_300_000);

fn burst(detected_at: EventTime) -> IncidentSnapshot {
    serde_json::from_value(serde_json::json!({
        "id": "B1", "kind": "water_main_burst", "severity": "critical",
        "location": {"lat": 30.0, "lon": 120.0}, "departments": ["water"],
        "opened_at": detected_at, "detected_at": detected_at, "updated_at": detected_at,
        "evidence": [{"device_id": "PG-1", "metric": "pressure_kpa", "detector": "step",
            "ts": detected_at, "value": 1.0, "signal": "pressure_drop", "score": 1.0,
            "reason": "drop"}]
    }))
    .expect("snapshot")
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_observes_time_to_first_crew_and_the_crews_acceptance() {
    let m = Arc::new(Metrics::new());
    let store = Arc::new(IncidentStore::new(Some(m.clone())));
    let (outbox, mut sent) = mpsc::channel(16);
    let (_stop, shutdown) = watch::channel(false);
    let home = Location {
        lat: 30.01,
        lon: 120.0,
    };
    let crew = Crew {
        crew_id: "W-01".into(),
        department: "water".into(),
        home,
        skills: vec!["valve".into()],
    };
    let opts = DispatchOptions {
        config: DispatchConfig::default(),
        crews: vec![crew],
        devices: HashMap::new(),
        store: store.clone(),
        log: Arc::new(MemoryDispatchLog::default()),
        clock: TokioClock::starting_at(T0),
        metrics: Some(m.clone()),
    };
    let (handle, _task) = spawn(opts, outbox, shutdown);
    handle.inbox().status(CrewStatus {
        crew_id: "W-01".into(),
        ts: T0,
        location: home,
        state: CrewState::Available,
    });
    // Raised 30 s before the dispatcher's clock: the automatic policy sends a crew at once.
    store.apply_snapshot(burst(EventTime(T0.0 - 30_000)));
    let msg = tokio::time::timeout(Duration::from_secs(5), sent.recv())
        .await
        .expect("a dispatch within 5 s")
        .expect("outbox open");
    assert_eq!(m.dispatch_latency_seconds.count(["automatic"]), 1);
    assert!(m
        .encode()
        .contains(r#"citybrain_dispatch_latency_seconds_sum{mode="automatic"} 30"#));
    assert_eq!(m.ack_latency_seconds.count(["crew"]), 0);

    handle
        .answer(&msg.dispatch_id, CrewAction::Accept, Some("W-01"), "W-01")
        .await
        .expect("accepted");
    let incident = store.get("B1").expect("incident");
    assert_eq!(incident.status, IncidentStatus::Dispatched);
    assert_eq!(m.ack_latency_seconds.count(["crew"]), 1);
    assert_eq!(m.ack_latency_seconds.count(["operator"]), 0);
}
