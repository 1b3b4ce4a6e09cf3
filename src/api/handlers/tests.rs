//! Lifecycle, history and token routes over HTTP against the test server (in-memory store;
//! `tests/durable_restart.rs` covers the durable one through the binary).

use serde_json::Value;

use crate::api::test_server::*;

fn json(body: &str) -> Value {
    serde_json::from_str(body).expect("JSON body")
}

#[test]
fn the_whole_lifecycle_over_http_with_its_audit_trail() {
    let s = Server::start();
    let post = |action: &str, body: &str| {
        s.post(
            &format!("/api/v1/incidents/inc-burst/{action}"),
            OPERATOR,
            body,
        )
    };
    assert_eq!(post("ack", r#"{"reason":"seen"}"#).0, 200);
    s.store
        .dispatch("inc-burst", "ops-desk-1", t("2026-11-22T08:40:00Z"))
        .expect("dispatch");
    let (code, _, body) = post("on_scene", "");
    assert_eq!(
        (code, json(&body)["status"].clone()),
        (200, "on_scene".into())
    );
    assert_eq!(post("resolve", r#"{"reason":"valve shut"}"#).0, 200);
    let (code, _, body) = post("close", "");
    assert_eq!(
        (code, json(&body)["status"].clone()),
        (200, "closed".into())
    );
    let (code, _, body) = post("close", "");
    assert_eq!(code, 409);
    assert_eq!(
        error_of(&body),
        "cannot move an incident from closed to closed"
    );
    let (code, _, body) = post("reopen", r#"{"reason":"water again"}"#);
    assert_eq!((code, json(&body)["status"].clone()), (200, "open".into()));

    let (code, history) = s.json("/api/v1/incidents/inc-burst/history", VIEWER);
    assert_eq!(code, 200);
    let steps: Vec<(&str, &str, &str)> = history
        .as_array()
        .expect("array")
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap_or(""),
                h["to"].as_str().unwrap_or(""),
                h["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("ack", "acknowledged", "ops-desk-1"),
            ("dispatch", "dispatched", "ops-desk-1"),
            ("on_scene", "on_scene", "ops-desk-1"),
            ("resolve", "resolved", "ops-desk-1"),
            ("close", "closed", "ops-desk-1"),
            ("reopen", "open", "ops-desk-1"),
        ]
    );
    assert_eq!(history[3]["reason"], "valve shut");
    assert!(history[0]["at"].as_str().is_some_and(|a| a.ends_with('Z')));
    // The single-incident GET carries the same trail.
    let (code, one) = s.json("/api/v1/incidents/inc-burst", VIEWER);
    assert_eq!(code, 200);
    assert_eq!(one["history"], history);
    assert_eq!(one["status"], "open");
    assert_eq!(s.get("/api/v1/incidents/nope/history", Some(VIEWER)).0, 404);
    assert_eq!(
        s.ids("/api/v1/incidents?status=on_scene"),
        Vec::<String>::new()
    );
}

#[test]
fn merge_over_http_and_its_refusals() {
    let s = Server::start();
    let merge =
        |id: &str, body: &str| s.post(&format!("/api/v1/incidents/{id}/merge"), OPERATOR, body);
    let (code, _, body) = merge("inc-flood", r#"{"into":"inc-burst","reason":"same leak"}"#);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["merged"]["status"], "closed");
    assert_eq!(v["merged"]["merged_into"], "inc-burst");
    assert_eq!(v["survivor"]["id"], "inc-burst");
    assert_eq!(
        v["survivor"]["departments"],
        serde_json::json!(["drainage", "water"])
    );
    let cases = [
        ("inc-burst", r#"{"into":"inc-burst"}"#, 400, "into itself"),
        ("inc-burst", r#"{"into":"nope"}"#, 404, "nope"),
        ("inc-flood", r#"{"into":"inc-burst"}"#, 409, "merged into"),
        ("inc-burst", r#"{"into":"inc-old"}"#, 409, "reopen it first"),
        ("inc-burst", "", 400, "invalid JSON body"),
        (
            "inc-burst",
            r#"{"into":"x","extra":1}"#,
            400,
            "invalid JSON body",
        ),
    ];
    for (id, body, want, text) in cases {
        let (code, _, answer) = merge(id, body);
        assert_eq!(code, want, "{id} {body}: {answer}");
        assert!(error_of(&answer).contains(text), "{id} {body}: {answer}");
    }
    let (code, _, _) = s.post(
        "/api/v1/incidents/inc-flood/merge",
        VIEWER,
        r#"{"into":"inc-burst"}"#,
    );
    assert_eq!(code, 403);
}

#[test]
fn admins_create_list_and_revoke_tokens_and_nobody_else_can() {
    let s = Server::start();
    let (code, _, body) = s.post("/api/v1/tokens", ADMIN, r#"{"name":"W-07","role":"crew"}"#);
    assert_eq!(code, 201, "{body}");
    let created = json(&body);
    let token = created["token"].as_str().expect("token").to_string();
    assert_eq!(token.len(), 64);
    // The new crew token works, and sees only what crews see.
    assert_eq!(s.get("/api/v1/openapi.json", Some(&token)).0, 200);
    let (code, _, body) = s.get("/api/v1/incidents", Some(&token));
    assert_eq!(code, 403);
    assert_eq!(error_of(&body), "role crew may not read incidents");
    let (code, list) = s.json("/api/v1/tokens", ADMIN);
    assert_eq!(code, 200);
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|t| t["name"] == "W-07" && t["role"] == "crew" && t.get("sha256").is_none()),
        "{list}"
    );
    assert_eq!(
        s.post("/api/v1/tokens", ADMIN, r#"{"name":"W-07","role":"crew"}"#)
            .0,
        409
    );
    assert_eq!(
        s.post("/api/v1/tokens", ADMIN, r#"{"name":"a b","role":"crew"}"#)
            .0,
        400
    );
    assert_eq!(
        s.post("/api/v1/tokens", OPERATOR, r#"{"name":"x","role":"admin"}"#)
            .0,
        403
    );
    let revoke = |name: &str, token: &str| {
        let resp = s
            .agent
            .delete(format!("{}/api/v1/tokens/{name}", s.base))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("request");
        read(resp).0
    };
    assert_eq!(revoke("W-07", OPERATOR), 403);
    assert_eq!(revoke("W-07", ADMIN), 204);
    assert_eq!(revoke("W-07", ADMIN), 404);
    assert_eq!(s.get("/api/v1/openapi.json", Some(&token)).0, 401);
}

#[test]
fn the_openapi_document_describes_every_lifecycle_route_with_its_roles() {
    let s = Server::start();
    let (code, doc) = s.json("/api/v1/openapi.json", VIEWER);
    assert_eq!(code, 200);
    for action in ["ack", "on_scene", "resolve", "close", "reopen", "merge"] {
        let op = &doc["paths"][format!("/api/v1/incidents/{{id}}/{action}")]["post"];
        assert_eq!(
            op["security"],
            serde_json::json!([{"bearer": ["operator", "admin"]}]),
            "{action}"
        );
        assert!(op["responses"]["409"].is_object(), "{action} documents 409");
    }
    let status = &doc["components"]["schemas"]["IncidentStatus"]["enum"];
    assert_eq!(
        status,
        &serde_json::json!([
            "open",
            "acknowledged",
            "dispatched",
            "on_scene",
            "resolved",
            "closed"
        ])
    );
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([{}])
    );
}
