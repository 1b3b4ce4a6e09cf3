//! API tests against a real server on 127.0.0.1:0 (the same `serve` the binary uses), driven by
//! a blocking ureq client from plain `#[test]`s.

use serde_json::Value;

use super::test_server::*;
use super::*;

#[test]
fn missing_or_wrong_token_is_401_with_bearer_challenge() {
    let s = Server::start();
    for token in [None, Some("not-a-token")] {
        let mut req = s.agent.get(format!("{}/api/v1/incidents", s.base));
        if let Some(tok) = token {
            req = req.header("Authorization", format!("Bearer {tok}"));
        }
        let resp = req.call().expect("request");
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let (code, _, body) = read(resp);
        assert_eq!(code, 401);
        assert!(error_of(&body).contains("bearer token"), "{body}");
    }
    // Wrong scheme, and unknown /api paths, are 401 too (no route probing without a token).
    let resp = s
        .agent
        .get(format!("{}/api/v1/incidents", s.base))
        .header("Authorization", "Basic abc")
        .call();
    assert_eq!(read(resp.expect("request")).0, 401);
    assert_eq!(s.get("/api/v1/secrets", None).0, 401);
    assert_eq!(s.post("/api/v1/incidents/inc-burst/ack", "nope", "").0, 401);
}

#[test]
fn viewer_and_engineer_may_read_but_not_ack() {
    let s = Server::start();
    for token in [VIEWER, ENGINEER] {
        assert_eq!(s.get("/api/v1/incidents", Some(token)).0, 200);
        let (code, _, body) = s.post("/api/v1/incidents/inc-burst/ack", token, "");
        assert_eq!(code, 403, "{body}");
        assert!(error_of(&body).contains("may not acknowledge"), "{body}");
    }
    assert_eq!(
        s.post("/api/v1/incidents/inc-burst/resolve", VIEWER, "").0,
        403
    );
    assert_eq!(
        s.store.get("inc-burst").map(|i| i.status),
        Some(crate::model::IncidentStatus::Open)
    );
}

#[test]
fn list_with_each_filter() {
    let s = Server::start();
    assert_eq!(
        s.ids("/api/v1/incidents"),
        ["inc-flood", "inc-burst", "inc-old"]
    );
    assert_eq!(
        s.ids("/api/v1/incidents?status=open"),
        ["inc-flood", "inc-burst"]
    );
    assert_eq!(s.ids("/api/v1/incidents?status=resolved"), ["inc-old"]);
    assert_eq!(
        s.ids("/api/v1/incidents?kind=water_main_burst"),
        ["inc-burst", "inc-old"]
    );
    assert_eq!(
        s.ids("/api/v1/incidents?department=drainage"),
        ["inc-flood"]
    );
    assert_eq!(
        s.ids("/api/v1/incidents?since=2026-11-22T08:00:00Z"),
        ["inc-flood", "inc-burst"]
    );
    // Offsets are honoured (16:15+08:00 is 08:15Z).
    assert_eq!(
        s.ids("/api/v1/incidents?since=2026-11-22T16:15:00%2B08:00"),
        ["inc-flood"]
    );
    assert_eq!(s.ids("/api/v1/incidents?limit=1"), ["inc-flood"]);
    assert_eq!(
        s.ids("/api/v1/incidents?status=open&kind=water_main_burst&limit=5"),
        ["inc-burst"]
    );
    let (code, v) = s.json("/api/v1/incidents/inc-burst", VIEWER);
    assert_eq!(code, 200);
    assert_eq!(v["status"], "open");
    assert_eq!(v["opened_at"], "2026-11-22T07:00:00.000Z");
}

#[test]
fn bad_query_parameters_are_400_naming_the_parameter() {
    let s = Server::start();
    let cases = [
        ("/api/v1/incidents?status=burning", "status"),
        ("/api/v1/incidents?since=yesterday", "since"),
        ("/api/v1/incidents?stauts=open", "stauts"),
        ("/api/v1/incidents?limit=ten", "limit"),
        ("/api/v1/devices?status=broken", "status"),
        ("/api/v1/devices?kind=x", "kind"),
    ];
    for (path, param) in cases {
        let (code, ctype, body) = s.get(path, Some(VIEWER));
        assert_eq!(code, 400, "{path}: {body}");
        assert!(ctype.starts_with("application/json"), "{path}: {ctype}");
        assert!(error_of(&body).contains(param), "{path}: {body}");
    }
}

#[test]
fn unknown_ids_and_routes_are_404() {
    let s = Server::start();
    let (code, _, body) = s.get("/api/v1/incidents/nope", Some(VIEWER));
    assert_eq!(code, 404);
    assert!(error_of(&body).contains("nope"));
    assert_eq!(s.post("/api/v1/incidents/nope/ack", OPERATOR, "").0, 404);
    assert_eq!(
        s.post("/api/v1/incidents/nope/resolve", OPERATOR, "").0,
        404
    );
    let (code, _, body) = s.get("/api/v2/whatever", Some(VIEWER));
    assert_eq!((code, error_of(&body)), (404, "no such route".to_string()));
    let (code, _, body) = s.get("/api/v1/incidents/inc-burst/ack", Some(OPERATOR));
    assert_eq!(code, 405, "{body}");
}

#[test]
fn ack_then_ack_again_conflicts_then_resolve() {
    let s = Server::start();
    let (code, _, body) = s.post(
        "/api/v1/incidents/inc-burst/ack",
        OPERATOR,
        r#"{"reason":"on it"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["status"], "acknowledged");
    let (code, _, body) = s.post("/api/v1/incidents/inc-burst/ack", OPERATOR, "");
    assert_eq!(code, 409);
    assert_eq!(
        error_of(&body),
        "cannot move an incident from acknowledged to acknowledged"
    );

    let (code, _, body) = s.post(
        "/api/v1/incidents/inc-burst/resolve",
        ADMIN,
        r#"{"reason":"valve shut"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["status"],
        "resolved"
    );
    assert_eq!(
        s.post("/api/v1/incidents/inc-burst/resolve", OPERATOR, "")
            .0,
        409
    );

    let history = s.store.history("inc-burst").expect("history");
    let who: Vec<(&str, Option<&str>)> = history
        .iter()
        .map(|h| (h.actor.as_str(), h.reason.as_deref()))
        .collect();
    assert_eq!(
        who,
        [("ops-desk-1", Some("on it")), ("root", Some("valve shut"))]
    );
}

#[test]
fn malformed_action_bodies_are_400() {
    let s = Server::start();
    for body in ["{not json", r#"{"reason":"x","extra":1}"#] {
        let (code, _, text) = s.post("/api/v1/incidents/inc-flood/ack", OPERATOR, body);
        assert_eq!(code, 400, "{body}: {text}");
        assert!(error_of(&text).contains("invalid JSON body"), "{text}");
    }
    assert_eq!(
        s.store.get("inc-flood").map(|i| i.status),
        Some(crate::model::IncidentStatus::Open)
    );
}

#[test]
fn devices_list_every_status_and_filters() {
    let s = Server::start();
    let (code, v) = s.json("/api/v1/devices", ENGINEER);
    assert_eq!(code, 200);
    let got: Vec<(String, String)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap_or("").into(),
                d["status"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let want = [
        ("PL-1", "online"),
        ("PL-2", "never-seen"),
        ("PL-3", "silent"),
        ("PL-4", "faulty"),
        ("X-9", "unregistered"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(v[4]["location"].is_null());
    assert_eq!(v[0]["last_seen"], "2026-11-22T07:59:00.000Z");
    assert_eq!(v[3]["faults"], serde_json::json!(["flatline:pressure_kpa"]));
    let (_, faulty) = s.json("/api/v1/devices?status=never-seen", VIEWER);
    assert_eq!(faulty.as_array().map(Vec::len), Some(1));
    assert_eq!(faulty[0]["device_id"], "PL-2");
}

#[test]
fn metrics_and_healthz_need_no_token() {
    let s = Server::start();
    s.get("/api/v1/incidents/inc-burst", Some(VIEWER));
    s.get("/api/v1/incidents", None);
    let (code, ctype, body) = s.get("/healthz", None);
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert!(ctype.starts_with("application/json"));
    let (code, ctype, body) = s.get("/metrics", None);
    assert_eq!(code, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4");
    assert!(body.contains("citybrain_"));
    assert!(
        body.contains(r#"citybrain_incidents{kind="flooding",status="open"} 1"#),
        "{body}"
    );
    // Route templates, never raw ids, as labels.
    assert_eq!(
        s.metrics
            .api_requests_total
            .get(["/api/v1/incidents/{id}", "200"]),
        1
    );
    assert_eq!(
        s.metrics
            .api_requests_total
            .get(["/api/v1/incidents", "401"]),
        1
    );
    assert!(!body.contains("inc-burst"), "raw path leaked into labels");
}

#[test]
fn tokens_hash_generate_and_roles() {
    // SHA-256("abc"), FIPS 180-2 test vector.
    assert_eq!(
        Auth::hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let (token, entry) = Auth::generate("ops-2", Role::Operator);
    assert_eq!(token.len(), 64);
    assert_ne!(
        token,
        Auth::generate("ops-2", Role::Operator).0,
        "tokens are random"
    );
    assert_eq!(entry.sha256, Auth::hash(&token));
    let auth = Auth::from_entries(vec![entry]);
    assert_eq!(
        auth.authenticate(&token).map(|p| p.name),
        Some("ops-2".to_string())
    );
    assert!(auth.authenticate("guess").is_none());
    assert!(
        !format!("{auth:?}").contains(&Auth::hash(&token)),
        "Debug prints no digests"
    );
    for role in [
        Role::Viewer,
        Role::Operator,
        Role::Crew,
        Role::Engineer,
        Role::Admin,
    ] {
        assert_eq!(Role::parse(role.as_str()), Some(role));
        // Crews see their own dispatches only (see the role table in auth).
        assert_eq!(role.allows(Permission::Read), role != Role::Crew);
        assert_eq!(
            role.allows(Permission::Operate),
            matches!(role, Role::Operator | Role::Admin)
        );
    }
}
