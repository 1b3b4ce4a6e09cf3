//! Test harness: a real API server on 127.0.0.1:0 with seeded incidents, devices and tokens,
//! and a blocking ureq client. Shut down and joined when dropped.

use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;

use super::*;
use crate::incident::{DeviceTable, IncidentStore};
use crate::model::{
    Anomaly, Device, EventTime, Evidence, IncidentSnapshot, Location, Phase, Severity,
};
use crate::telemetry::Metrics;

pub(super) const VIEWER: &str = "viewer-token";
pub(super) const OPERATOR: &str = "operator-token";
pub(super) const ENGINEER: &str = "engineer-token";
pub(super) const ADMIN: &str = "admin-token";

pub(super) fn t(s: &str) -> EventTime {
    EventTime::parse_rfc3339(s).expect("valid test time")
}

pub(super) fn snapshot(id: &str, kind: &str, dept: &str, updated: &str) -> IncidentSnapshot {
    IncidentSnapshot {
        id: id.into(),
        kind: kind.into(),
        severity: Severity::High,
        location: Location {
            lat: 1.3,
            lon: 103.8,
        },
        departments: vec![dept.into()],
        opened_at: t("2026-11-22T07:00:00Z"),
        detected_at: t("2026-11-22T07:00:00Z"),
        updated_at: t(updated),
        evidence: vec![Evidence {
            device_id: "PL-1".into(),
            metric: "pressure_kpa".into(),
            detector: "step_drop".into(),
            ts: t("2026-11-22T07:00:00Z"),
            value: 231.0,
            signal: "pressure_drop".into(),
            score: 0.9,
            reason: "pressure 231 kPa".into(),
            weight: 1.0,
        }],
        cleared_at: None,
        merged_into: None,
        confidence: 0.5,
    }
}

pub(super) fn device(id: &str) -> Device {
    Device {
        device_id: id.into(),
        profile: "pressure-logger".into(),
        location: Location {
            lat: 1.3,
            lon: 103.8,
        },
        department: "water".into(),
        district: "central".into(),
    }
}

pub(super) fn health(id: &str, detector: &str) -> Anomaly {
    Anomaly {
        device_id: id.into(),
        metric: "pressure_kpa".into(),
        signal: "health".into(),
        detector: detector.into(),
        ts: t("2026-11-22T08:00:00Z"),
        value: 0.0,
        score: 1.0,
        phase: Phase::Raised,
        reason: "test".into(),
        arrival: None,
    }
}

/// A running server with seeded incidents and devices; shut down and joined on drop.
pub(super) struct Server {
    pub(super) base: String,
    pub(super) agent: ureq::Agent,
    pub(super) store: Arc<IncidentStore>,
    pub(super) metrics: Arc<Metrics>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub(super) fn start() -> Server {
        let metrics = Arc::new(Metrics::new());
        let store = Arc::new(IncidentStore::new(Some(metrics.clone())));
        store.apply_snapshot(snapshot(
            "inc-burst",
            "water_main_burst",
            "water",
            "2026-11-22T08:00:00Z",
        ));
        store.apply_snapshot(snapshot(
            "inc-flood",
            "flooding",
            "drainage",
            "2026-11-22T08:30:00Z",
        ));
        let mut old = snapshot(
            "inc-old",
            "water_main_burst",
            "water",
            "2026-11-22T07:10:00Z",
        );
        old.cleared_at = Some(t("2026-11-22T07:20:00Z"));
        store.apply_snapshot(old);

        let devices = Arc::new(DeviceTable::new(vec![
            device("PL-1"),
            device("PL-2"),
            device("PL-3"),
            device("PL-4"),
        ]));
        for id in ["PL-1", "PL-3", "PL-4", "X-9"] {
            devices.observe_reading(
                id,
                "pressure-logger",
                t("2026-11-22T07:59:00Z"),
                t("2026-11-22T07:59:01Z"),
            );
        }
        devices.observe_anomaly(&health("PL-3", "silence"));
        devices.observe_anomaly(&health("PL-4", "flatline"));

        let (_, engineer) = Auth::generate("eng-1", Role::Engineer);
        let mut entries = vec![
            TokenEntry {
                name: "wall-screen".into(),
                role: Role::Viewer,
                sha256: Auth::hash(VIEWER),
            },
            TokenEntry {
                name: "ops-desk-1".into(),
                role: Role::Operator,
                sha256: Auth::hash(OPERATOR),
            },
            TokenEntry {
                name: "root".into(),
                role: Role::Admin,
                sha256: Auth::hash(ADMIN).to_uppercase(),
            },
        ];
        entries.push(TokenEntry {
            sha256: Auth::hash(ENGINEER),
            ..engineer
        });
        let state = ApiState {
            store: store.clone(),
            devices,
            metrics: metrics.clone(),
            auth: Arc::new(Auth::from_entries(entries)),
            crews: None,
            tile_url: None,
            dispatch: None,
            definitions: Default::default(),
        };

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                serve(listener, state, async move {
                    let _ = rx.await;
                })
                .await
            })
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Server {
            base,
            agent,
            store,
            metrics,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// GET with an optional token: (status, content type, body).
    pub(super) fn get(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(tok) = token {
            req = req.header("Authorization", format!("Bearer {tok}"));
        }
        read(req.call().expect("request"))
    }

    pub(super) fn post(&self, path: &str, token: &str, body: &str) -> (u16, String, String) {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json");
        read(req.send(body).expect("request"))
    }

    pub(super) fn json(&self, path: &str, token: &str) -> (u16, Value) {
        let (code, _, body) = self.get(path, Some(token));
        (code, serde_json::from_str(&body).expect("json body"))
    }

    pub(super) fn ids(&self, path: &str) -> Vec<String> {
        let (code, v) = self.json(path, VIEWER);
        assert_eq!(code, 200, "{path}: {v}");
        v.as_array()
            .expect("array")
            .iter()
            .map(|i| i["id"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(th) = self.thread.take() {
            let _ = th.join();
        }
    }
}

pub(super) fn read(mut resp: ureq::http::Response<ureq::Body>) -> (u16, String, String) {
    let code = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.body_mut().read_to_string().expect("body");
    (code, ctype, body)
}

pub(super) fn error_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).expect("error body is JSON");
    v["error"]
        .as_str()
        .expect("has an error message")
        .to_string()
}
