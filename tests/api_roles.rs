//! Every route, every role. The OpenAPI document the server serves is the table of
//! expectations: each operation's `bearer` scopes are the roles it admits (`security: [{}]`: no
//! token needed). This test
//! - fails for a route the router serves that the document does not describe, for a described
//!   route the router does not serve, and for an operation with no role expectation at all;
//! - pins the roles of the routes issue 4 specified (`PINNED`), so widening one is a visible
//!   change here, not a quiet edit of an attribute;
//! - calls every (method, path) of the document on the real live pipeline (in-process, over a
//!   real mosquitto) with no token and with a token of every role: the roles listed must get
//!   through the role check, every other role must get 403 "role R may not ...", and a missing
//!   token must get 401 on every protected route.
//!
//! New routes are covered automatically: they appear in the document (or this test fails).
//! Needs `mosquitto` (apt-get install -y mosquitto); fails without it.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use citybrain::sim::{NoiseOptions, SimOptions};
use common::*;
use serde_json::Value;

const ROLES: [&str; 5] = ["viewer", "operator", "crew", "engineer", "admin"];
const READ: &[&str] = &["viewer", "operator", "engineer", "admin"];
const OPERATE: &[&str] = &["operator", "admin"];
const ADMIN: &[&str] = &["admin"];
const EVERY: &[&str] = &["viewer", "operator", "crew", "engineer", "admin"];
const PUBLIC: &[&str] = &[];

/// Roles pinned by the issue: (method, path, roles; empty = public).
const PINNED: &[(&str, &str, &[&str])] = &[
    ("GET", "/api/v1/incidents", READ),
    ("GET", "/api/v1/incidents/{id}", READ),
    ("GET", "/api/v1/incidents/{id}/history", READ),
    ("POST", "/api/v1/incidents/{id}/ack", OPERATE),
    ("POST", "/api/v1/incidents/{id}/on_scene", OPERATE),
    ("POST", "/api/v1/incidents/{id}/resolve", OPERATE),
    ("POST", "/api/v1/incidents/{id}/close", OPERATE),
    ("POST", "/api/v1/incidents/{id}/reopen", OPERATE),
    ("POST", "/api/v1/incidents/{id}/merge", OPERATE),
    ("GET", "/api/v1/devices", READ),
    ("GET", "/api/v1/tokens", ADMIN),
    ("POST", "/api/v1/tokens", ADMIN),
    ("DELETE", "/api/v1/tokens/{name}", ADMIN),
    ("GET", "/api/v1/openapi.json", EVERY),
    ("GET", "/metrics", PUBLIC),
    ("GET", "/healthz", PUBLIC),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// One documented operation and the roles it admits (`None`: public).
#[derive(Debug)]
struct Operation {
    method: String,
    path: String,
    roles: Option<BTreeSet<String>>,
}

/// Every operation in the document; panics naming any without a role expectation.
fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let paths = doc["paths"].as_object().expect("document has paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item is an object") {
            let method = method.to_uppercase();
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let Some(reqs) = op["security"].as_array() else {
                missing.push(format!("{method} {path}"));
                continue;
            };
            let public = reqs
                .iter()
                .any(|r| r.as_object().is_some_and(|o| o.is_empty()));
            let roles = reqs
                .iter()
                .filter_map(|r| r["bearer"].as_array())
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<BTreeSet<String>>();
            if !public && roles.is_empty() {
                missing.push(format!("{method} {path}"));
                continue;
            }
            for r in &roles {
                assert!(
                    ROLES.contains(&r.as_str()),
                    "{method} {path}: unknown role {r:?}"
                );
            }
            out.push(Operation {
                method,
                path: path.clone(),
                roles: (!public).then_some(roles),
            });
        }
    }
    assert!(
        missing.is_empty(),
        "operations with no role expectation (add security((\"bearer\" = [roles])) or \
         security(()) to their #[utoipa::path]): {missing:?}"
    );
    out
}

/// The paths the router serves, read from its `Debug` output (axum lists its route table there;
/// there is no other public way to enumerate it).
fn router_paths() -> BTreeSet<String> {
    let router: axum::Router<citybrain::api::ApiState> = citybrain::api::routes().into();
    let text = format!("{router:?}");
    let mut out = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("RouteId(") {
        rest = &rest[i + "RouteId(".len()..];
        let Some(close) = rest.find("): \"") else {
            continue;
        };
        let after = &rest[close + 4..];
        if let Some(end) = after.find('"') {
            // axum's own catch-all for the fallback is not a route.
            if after.starts_with('/') && !after[..end].contains("__private__axum") {
                out.insert(after[..end].to_string());
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no paths found in the router's Debug output: {text}"
    );
    out
}

/// A concrete URL path for a template: every `{param}` becomes `x`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('x');
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// (status, error message if the body is an API error). The body of a 200 is not read, so
    /// a never-ending response (the live stream) does not block.
    fn call(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        let url = format!("{}{}", self.base, concrete(path));
        let auth = token.map(|t| format!("Bearer {t}"));
        let resp = match method {
            "GET" | "DELETE" => {
                let mut req = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            _ => {
                let mut req = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.header("Content-Type", "application/json").send("{}")
            }
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let error = if status >= 400 {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(body)
        } else {
            String::new()
        };
        (status, error)
    }
}

fn city(dir: &std::path::Path) {
    let mut opts = SimOptions::default_with_seed(5, minutes_ago(10), 60);
    opts.incidents = Vec::new();
    opts.noise = NoiseOptions::none();
    simulate(dir, &opts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_described_and_admits_exactly_its_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    city(dir.path());
    let broker = mosquitto();
    let rig = start_live(&broker, defs(dir.path()));
    let base = format!("http://{}", rig.live.api_addr);
    let admin = rig.token.clone();

    let outcome = tokio::task::spawn_blocking(move || {
        let client = Client {
            base,
            // A fresh connection per call: the server may close a kept-alive connection after
            // answering a request whose body it never read (405s), and a reused one then fails.
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_idle_connections(0)
                .build()
                .new_agent(),
        };
        check_everything(&client, &admin);
    })
    .await;
    rig.live.stop().await.expect("stops");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn check_everything(client: &Client, admin: &str) {
    // The served document is the table.
    let doc = {
        let url = format!("{}/api/v1/openapi.json", client.base);
        let mut resp = client
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {admin}"))
            .call()
            .expect("openapi.json");
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.body_mut().read_to_string().expect("body");
        serde_json::from_str::<Value>(&text).expect("openapi.json is JSON")
    };
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document: {}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "the bearer scheme is declared"
    );
    let ops = operations(&doc);

    // 1. Router and document describe the same paths ...
    let served = router_paths();
    let described: BTreeSet<String> = ops.iter().map(|o| o.path.clone()).collect();
    let undocumented: Vec<&String> = served.difference(&described).collect();
    let unrouted: Vec<&String> = described.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in the OpenAPI document (register them with .routes(routes!(handler)) \
         and a #[utoipa::path]): {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "described but not served: {unrouted:?}"
    );
    // ... and the same methods on each path (405 = the router has no such method there).
    let mut by_path: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for o in &ops {
        by_path.entry(&o.path).or_default().insert(&o.method);
    }
    for (path, documented) in &by_path {
        let routed: BTreeSet<&str> = METHODS
            .into_iter()
            .filter(|m| client.call(m, path, Some(admin)).0 != 405)
            .collect();
        assert_eq!(
            &routed, documented,
            "methods served vs documented on {path}"
        );
    }

    // 2. The pinned roles are what the document says.
    let doc_roles: BTreeMap<(String, String), Option<BTreeSet<String>>> = ops
        .iter()
        .map(|o| ((o.method.clone(), o.path.clone()), o.roles.clone()))
        .collect();
    for (method, path, roles) in PINNED {
        let got = doc_roles
            .get(&(method.to_string(), path.to_string()))
            .unwrap_or_else(|| panic!("{method} {path} is not in the document"));
        let want = (!roles.is_empty()).then(|| roles.iter().map(|r| r.to_string()).collect());
        assert_eq!(got, &want, "roles of {method} {path}");
    }

    // 3. Every operation, every role. Tokens for each role come from the admin token API.
    let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
    for role in ROLES {
        // A crew token's name is its crew id.
        let name = if role == "crew" {
            "W-01".to_string()
        } else {
            format!("t-{role}")
        };
        let url = format!("{}/api/v1/tokens", client.base);
        let mut resp = client
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {admin}"))
            .header("Content-Type", "application/json")
            .send(&format!(r#"{{"name":"{name}","role":"{role}"}}"#))
            .expect("create token");
        assert_eq!(resp.status().as_u16(), 201, "token for {role}");
        let v: Value =
            serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("json");
        tokens.insert(role, v["token"].as_str().expect("token").to_string());
    }
    let mut checked = 0;
    for o in &ops {
        let what = format!("{} {}", o.method, o.path);
        let (status, error) = client.call(&o.method, &o.path, None);
        match &o.roles {
            None => assert!(
                status != 401 && status < 500,
                "{what} is public: got {status} {error}"
            ),
            Some(_) => assert_eq!(status, 401, "{what} without a token: {error}"),
        }
        for role in ROLES {
            let (status, error) = client.call(&o.method, &o.path, Some(&tokens[role]));
            let refused_for_role =
                status == 403 && error.starts_with(&format!("role {role} may not"));
            let allowed = o.roles.as_ref().is_none_or(|r| r.contains(role));
            if allowed {
                assert!(
                    !refused_for_role && status != 401 && status != 405 && status < 500,
                    "{what} must admit {role}: got {status} {error}"
                );
            } else {
                assert!(
                    refused_for_role,
                    "{what} must refuse {role} with 403: got {status} {error}"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= PINNED.len() * ROLES.len(),
        "checked {checked} (operation, role) pairs"
    );
}
