//! The dispatch state machine and silences, driven event by event.

use std::collections::HashMap;

use super::*;
use crate::model::{Crew, CrewState, CrewStatus, Evidence, Incident, IncidentStatus, Location};

const T0: EventTime = EventTime(1_795_335_300_000);

fn at(secs: i64) -> EventTime {
    EventTime(T0.0 + secs * 1000)
}

fn crew(id: &str, dept: &str, lat: f64, skills: &[&str]) -> Crew {
    Crew {
        crew_id: id.into(),
        department: dept.into(),
        home: Location { lat, lon: 120.0 },
        skills: skills.iter().map(|s| s.to_string()).collect(),
    }
}

/// Water crews 1, 2, 3 km north of the incident, traffic crews 0.5 and 1.5 km; all available.
fn dispatcher(timeout_secs: u64) -> Dispatcher {
    let crews = vec![
        crew("W-01", "water", 30.009, &["valve"]),
        crew("W-02", "water", 30.018, &["valve"]),
        crew("W-03", "water", 30.027, &["valve"]),
        crew("W-09", "water", 30.0001, &["excavation"]),
        crew("T-01", "traffic", 30.0045, &["traffic_control"]),
        crew("T-02", "traffic", 30.0135, &["traffic_control"]),
    ];
    let config = DispatchConfig {
        answer_timeout_secs: timeout_secs,
        ..DispatchConfig::default()
    };
    let mut d = Dispatcher::new(config, crews.clone());
    for c in crews {
        let status = CrewStatus {
            crew_id: c.crew_id,
            ts: T0,
            location: c.home,
            state: CrewState::Available,
        };
        assert!(d.on_status(status, T0).is_empty());
    }
    d
}

fn burst(id: &str) -> IncidentView {
    IncidentView {
        id: id.into(),
        kind: "water_main_burst".into(),
        severity: Severity::Critical,
        closed: false,
        location: Location {
            lat: 30.0,
            lon: 120.0,
        },
        departments: vec!["traffic".into(), "water".into()],
        evidence: vec![
            ("pressure_drop".into(), "PG-0311".into()),
            ("water_on_road".into(), "TC-0042".into()),
            ("pressure_drop".into(), "PG-0311".into()),
        ],
        suppressed: false,
    }
}

fn sent(effects: &[Effect]) -> Vec<(String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(m) => Some((m.crew_id.clone(), m.dispatch_id.clone())),
            _ => None,
        })
        .collect()
}

fn escalations(effects: &[Effect]) -> Vec<Escalation> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Record(DispatchRecord::Escalation(x)) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

fn lifecycle(effects: &[Effect]) -> Vec<CrewAction> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Lifecycle(c) => Some(c.action),
            _ => None,
        })
        .collect()
}

fn mqtt(crew: &str, incident: &str, action: CrewAction) -> Answer {
    Answer {
        dispatch_id: None,
        incident_id: Some(incident.into()),
        crew_id: Some(crew.into()),
        action,
        actor: crew.into(),
    }
}

#[test]
fn a_burst_gets_the_nearest_skilled_crew_of_each_department_once() {
    let mut d = dispatcher(120);
    let out = d.on_incident(burst("B1"), at(1));
    // W-09 is nearer but has no valve skill.
    assert_eq!(
        sent(&out),
        vec![
            ("T-01".to_string(), "B1.traffic.1".to_string()),
            ("W-01".to_string(), "B1.water.1".to_string())
        ]
    );
    let Some(Effect::Publish(msg)) = out
        .iter()
        .find(|e| matches!(e, Effect::Publish(m) if m.crew_id == "W-01"))
    else {
        panic!("no water dispatch: {out:?}");
    };
    assert_eq!(msg.department, "water");
    assert_eq!(
        msg.evidence.devices,
        vec!["PG-0311".to_string(), "TC-0042".to_string()]
    );
    assert_eq!(
        msg.evidence.summary,
        "Water main burst (critical): pressure_drop at PG-0311; water_on_road at TC-0042."
    );
    assert_eq!(msg.ts, at(1));
    // The incident grows: evidence, severity, updates... never a second dispatch.
    for i in 2..50 {
        let mut grown = burst("B1");
        grown
            .evidence
            .push(("speed_collapse".into(), format!("TC-{i}")));
        assert!(sent(&d.on_incident(grown, at(i))).is_empty());
    }
}

#[test]
fn decline_and_silence_escalate_to_the_next_crew_and_tell_the_operators() {
    let mut d = dispatcher(120);
    d.on_incident(burst("B1"), at(1));
    let out = d
        .on_answer(mqtt("W-01", "B1", CrewAction::Decline), at(5))
        .expect("decline");
    assert_eq!(
        sent(&out),
        vec![("W-02".to_string(), "B1.water.2".to_string())]
    );
    let esc = escalations(&out);
    assert_eq!(esc.len(), 1);
    assert_eq!(esc[0].reason, EscalationReason::Declined);
    assert_eq!(
        (esc[0].from_crew.as_deref(), esc[0].to_crew.as_deref()),
        (Some("W-01"), Some("W-02"))
    );
    // W-02 says nothing: at the deadline W-03 is sent (W-01 declined, so never again).
    assert_eq!(d.next_deadline(), Some(at(121)));
    assert!(d
        .on_tick(at(124))
        .iter()
        .all(|e| !matches!(e, Effect::Publish(m) if m.department == "water")));
    let out = d.on_tick(at(125));
    assert_eq!(
        sent(&out),
        vec![("W-03".to_string(), "B1.water.3".to_string())]
    );
    assert_eq!(escalations(&out)[0].reason, EscalationReason::NoAnswer);
    // W-03 declines too: nobody is left, the operators are told, the case waits.
    let out = d
        .on_answer(mqtt("W-03", "B1", CrewAction::Decline), at(130))
        .expect("decline");
    assert!(sent(&out).is_empty());
    let esc = escalations(&out);
    assert_eq!(esc[0].to_crew, None);
    assert!(esc[0].message.contains("waiting"), "{}", esc[0].message);
    // A late answer from a crew that timed out is refused.
    let late = d.on_answer(mqtt("W-02", "B1", CrewAction::Accept), at(131));
    assert!(
        matches!(
            late,
            Err(DispatchError::InvalidAnswer {
                status: "timed_out",
                ..
            })
        ),
        "{late:?}"
    );
}

#[test]
fn a_waiting_case_takes_the_next_crew_that_becomes_available() {
    let mut d = dispatcher(120);
    d.on_incident(burst("B1"), at(0));
    let mut second = burst("B2");
    second.departments = vec!["traffic".into()];
    let out = d.on_incident(second, at(1));
    assert_eq!(
        sent(&out),
        vec![("T-02".to_string(), "B2.traffic.1".to_string())]
    );
    let out = d.on_incident(
        IncidentView {
            id: "B3".into(),
            departments: vec!["traffic".into()],
            ..burst("B3")
        },
        at(2),
    );
    assert!(sent(&out).is_empty());
    assert_eq!(
        escalations(&out)[0].reason,
        EscalationReason::NoCrewAvailable
    );
    // T-01 finishes B1 and reports available: B3 gets it, without another escalation record.
    let out = d
        .on_answer(mqtt("T-01", "B1", CrewAction::Resolved), at(50))
        .expect("resolved");
    assert_eq!(
        sent(&out),
        vec![("T-01".to_string(), "B3.traffic.1".to_string())]
    );
    assert!(escalations(&out).is_empty());
}

#[test]
fn answers_move_the_incident_and_the_last_department_resolves_it() {
    let mut d = dispatcher(120);
    d.on_incident(burst("B1"), at(0));
    let out = d
        .on_answer(mqtt("W-01", "B1", CrewAction::Accept), at(3))
        .expect("accept");
    assert_eq!(lifecycle(&out), vec![CrewAction::Accept]);
    assert_eq!(
        d.next_deadline(),
        Some(at(120)),
        "accepted: only the traffic deadline is left"
    );
    let again = d
        .on_answer(mqtt("W-01", "B1", CrewAction::Accept), at(4))
        .expect("redelivery");
    assert!(again.is_empty());
    let out = d
        .on_answer(mqtt("T-01", "B1", CrewAction::OnScene), at(5))
        .expect("on scene");
    assert_eq!(
        lifecycle(&out),
        vec![CrewAction::Accept, CrewAction::OnScene]
    );
    let out = d
        .on_answer(mqtt("W-01", "B1", CrewAction::Resolved), at(9))
        .expect("resolved");
    assert!(lifecycle(&out).is_empty(), "traffic is still working");
    let out = d
        .on_answer(mqtt("T-01", "B1", CrewAction::Resolved), at(9))
        .expect("resolved");
    assert_eq!(lifecycle(&out), vec![CrewAction::Resolved]);
    let bad = d.on_answer(mqtt("T-01", "B1", CrewAction::Decline), at(10));
    assert!(
        matches!(bad, Err(DispatchError::InvalidAnswer { .. })),
        "{bad:?}"
    );
    let stranger = d.on_answer(mqtt("W-02", "B1", CrewAction::Accept), at(10));
    assert!(
        matches!(stranger, Err(DispatchError::UnknownDispatch(_))),
        "{stranger:?}"
    );
    let api = Answer {
        dispatch_id: Some("B1.water.1".into()),
        crew_id: Some("T-01".into()),
        ..mqtt("T-01", "B1", CrewAction::Accept)
    };
    assert_eq!(
        d.on_answer(api, at(11)),
        Err(DispatchError::NotYours("B1.water.1".into()))
    );
}

#[test]
fn policies_decide_automatic_or_operator_confirmed() {
    let mut d = dispatcher(120);
    let pollution = IncidentView {
        id: "P1".into(),
        kind: "pollution_episode".into(),
        departments: vec!["traffic".into()],
        ..burst("P1")
    };
    assert!(
        d.on_incident(pollution.clone(), at(0)).is_empty(),
        "operator-confirmed kind"
    );
    let out = d
        .confirm(pollution.clone(), "ops-1", at(1))
        .expect("confirm");
    assert_eq!(
        sent(&out),
        vec![("T-01".to_string(), "P1.traffic.1".to_string())]
    );
    assert_eq!(
        d.dispatch("P1.traffic.1").map(|x| x.requested_by.as_str()),
        Some("ops-1")
    );
    assert_eq!(
        d.confirm(pollution, "ops-1", at(2)),
        Err(DispatchError::AlreadyDispatched("P1".into()))
    );
    let silenced = IncidentView {
        suppressed: true,
        ..burst("S1")
    };
    assert!(
        d.on_incident(silenced, at(3)).is_empty(),
        "suppressed incidents wait"
    );
    let cfg = DispatchConfig {
        policies: vec![DispatchPolicy {
            kind: "water_main_burst".into(),
            min_severity: Severity::Critical,
            mode: DispatchMode::Automatic,
            skills: vec![],
        }],
        answer_timeout_secs: 120,
    };
    assert!(cfg.policy_for("water_main_burst", Severity::High).is_none());
    assert!(cfg
        .policy_for("water_main_burst", Severity::Critical)
        .is_some());
}

#[test]
fn resolving_the_incident_cancels_its_pending_dispatches_and_frees_the_crews() {
    let mut d = dispatcher(120);
    d.on_incident(burst("B1"), at(0));
    d.on_answer(mqtt("W-01", "B1", CrewAction::Accept), at(1))
        .expect("accept");
    let out = d.on_incident(
        IncidentView {
            closed: true,
            ..burst("B1")
        },
        at(2),
    );
    let statuses: Vec<(String, DispatchStatus)> = out
        .iter()
        .filter_map(|e| match e {
            Effect::Record(DispatchRecord::Dispatch(x)) => Some((x.crew_id.clone(), x.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("T-01".to_string(), DispatchStatus::Cancelled),
            ("W-01".to_string(), DispatchStatus::Resolved)
        ]
    );
    assert_eq!(d.next_deadline(), None);
    assert!(
        d.crews().iter().all(|c| c.available),
        "everybody is free again"
    );
}

#[test]
fn restore_rebuilds_cases_so_nothing_is_sent_twice_and_deadlines_still_fire() {
    let mut d = dispatcher(120);
    let log = MemoryDispatchLog::default();
    for e in d.on_incident(burst("B1"), at(0)) {
        if let Effect::Record(r) = e {
            log.put(&r).expect("put");
        }
    }
    let mut again = dispatcher(120);
    again.restore(log.scan().expect("scan"), |_| Some(burst("B1")));
    assert!(sent(&again.on_incident(burst("B1"), at(5))).is_empty());
    let out = again.on_tick(at(120));
    let next: Vec<String> = sent(&out).into_iter().map(|(c, _)| c).collect();
    assert_eq!(next, vec!["T-02".to_string(), "W-02".to_string()]);
}

fn incident(kind: &str, devices: &[&str]) -> Incident {
    let evidence: Vec<Evidence> = devices
        .iter()
        .map(|d| {
            serde_json::from_value(serde_json::json!({
                "device_id": d, "metric": "m", "detector": "step", "ts": "2026-11-22T08:15:00Z",
                "value": 1.0, "signal": "s", "score": 1.0, "reason": "r"
            }))
            .expect("evidence")
        })
        .collect();
    let mut value = serde_json::json!({
        "id": "I1", "kind": kind, "severity": "high", "status": "open",
        "location": {"lat": 30.0, "lon": 120.0}, "departments": ["water"],
        "opened_at": "2026-11-22T08:15:00Z", "detected_at": "2026-11-22T08:15:00Z",
        "updated_at": "2026-11-22T08:15:00Z", "evidence": []
    });
    value["evidence"] = serde_json::to_value(evidence).expect("json");
    let parsed: Incident = serde_json::from_value(value).expect("incident");
    assert_eq!(parsed.status, IncidentStatus::Open);
    parsed
}

#[test]
fn silences_suppress_only_fully_covered_incidents_until_they_expire() {
    let devices = HashMap::from([
        (
            "PG-1".to_string(),
            Location {
                lat: 30.0,
                lon: 120.0,
            },
        ),
        (
            "TC-1".to_string(),
            Location {
                lat: 30.05,
                lon: 120.0,
            },
        ),
    ]);
    let table = SilenceTable::new(devices);
    let spec = SilenceSpec {
        device_id: Some("PG-1".into()),
        duration_secs: Some(600),
        ..SilenceSpec::default()
    };
    let s = table.add(spec, "ops", at(0)).expect("valid");
    assert_eq!((s.id.as_str(), s.expires_at), ("S-1", at(600)));
    assert!(table.evaluate(&incident("water_main_burst", &["PG-1"]), at(1)));
    assert!(table.is_suppressed("I1"));
    // A camera outside the silence lifts it: the incident is dispatched after all.
    assert!(!table.evaluate(&incident("water_main_burst", &["PG-1", "TC-1"]), at(2)));
    assert_eq!(table.suppressed()[0].lifted_at, Some(at(2)));
    assert!(
        !table.evaluate(&incident("water_main_burst", &["PG-1"]), at(601)),
        "expired"
    );
    // Areas: a 1 km circle holds PG-1 but not TC-1 (5.5 km away); a polygon around TC-1.
    let circle = serde_json::json!({"area": {"center": {"lat": 30.0, "lon": 120.0}, "radius_m": 1000.0}, "duration_secs": 600});
    let polygon = serde_json::json!({"area": {"polygon": [{"lat": 30.04, "lon": 119.99}, {"lat": 30.06, "lon": 119.99}, {"lat": 30.06, "lon": 120.01}, {"lat": 30.04, "lon": 120.01}]}, "kind": "traffic_accident", "duration_secs": 600});
    for spec in [circle, polygon] {
        let spec: SilenceSpec = serde_json::from_value(spec).expect("spec");
        table.add(spec, "ops", at(700)).expect("valid area");
    }
    assert!(table.evaluate(&incident("water_main_burst", &["PG-1"]), at(701)));
    assert!(!table.evaluate(&incident("water_main_burst", &["TC-1"]), at(701)));
    assert!(table.evaluate(&incident("traffic_accident", &["TC-1"]), at(701)));
    assert!(!table.evaluate(&incident("traffic_accident", &["TC-1"]), at(1301)));
    assert_eq!(table.list(at(1301), false).len(), 0);
    assert_eq!(table.list(at(1301), true).len(), 3);
    table.remove("S-2").expect("removes");
    assert!(matches!(
        table.remove("S-2"),
        Err(SilenceError::NotFound(_))
    ));
}

#[test]
fn invalid_silences_are_refused_with_the_field() {
    let table = SilenceTable::default();
    let bad = [
        (serde_json::json!({"duration_secs": 60}), "at least one"),
        (serde_json::json!({"kind": "x"}), "exactly one"),
        (
            serde_json::json!({"kind": "x", "duration_secs": 0}),
            "duration_secs",
        ),
        (
            serde_json::json!({"kind": "x", "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            serde_json::json!({"area": {"center": {"lat": 99.0, "lon": 0.0}, "radius_m": 5.0}, "duration_secs": 9}),
            "area.center",
        ),
        (
            serde_json::json!({"area": {"polygon": [{"lat": 1.0, "lon": 1.0}]}, "duration_secs": 9}),
            "area.polygon",
        ),
    ];
    for (json, field) in bad {
        let spec: SilenceSpec = serde_json::from_value(json.clone()).expect("parses");
        match table.add(spec, "ops", T0) {
            Err(SilenceError::Invalid(m)) => assert!(m.contains(field), "{json}: {m}"),
            other => panic!("{json} accepted: {other:?}"),
        }
    }
    assert!(serde_json::from_value::<SilenceSpec>(serde_json::json!({"kynd": "x"})).is_err());
}

#[test]
fn config_validation_names_the_field() {
    let cfg = DispatchConfig {
        policies: vec![
            DispatchPolicy {
                kind: "a".into(),
                min_severity: Severity::Low,
                mode: DispatchMode::Automatic,
                skills: vec![],
            },
            DispatchPolicy {
                kind: "a".into(),
                min_severity: Severity::Low,
                mode: DispatchMode::OperatorConfirmed,
                skills: vec![" ".into()],
            },
        ],
        answer_timeout_secs: 0,
    };
    let fields: Vec<String> = cfg.validate().into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        vec!["answer_timeout_secs", "policies[1].skills", "policies[1]"]
    );
    assert!(DispatchConfig::default().validate().is_empty());
}
