//! Route handlers: incidents (list, get, ack, resolve), devices, metrics and health.
//!
//! Query strings are parsed by hand from axum's rejection into [`ApiError`], so every 400 is
//! JSON and names the parameter, and unknown parameters are refused (a typo such as `?stauts=`
//! must not silently return everything).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::auth::{Permission, Principal};
use super::{ApiError, ApiState};
use crate::incident::{DeviceStatus, DeviceStatusView, IncidentFilter};
use crate::model::{EventTime, Incident, IncidentStatus};
use crate::telemetry::CONTENT_TYPE;

/// Longest accepted free-text reason, so the history cannot be used to store bulk data.
const MAX_REASON_CHARS: usize = 2_000;

/// `GET /api/v1/incidents` query string. `since` (RFC 3339) keeps incidents whose `updated_at` is
/// at or after it (see [`IncidentFilter::since`]); `limit` applies after newest-first sorting.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncidentQuery {
    status: Option<String>,
    kind: Option<String>,
    department: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

impl IncidentQuery {
    fn into_filter(self) -> Result<IncidentFilter, ApiError> {
        let status = match self.status {
            None => None,
            Some(s) => Some(IncidentStatus::parse(&s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid status {s:?}: expected one of open, acknowledged, dispatched, resolved"
                ))
            })?),
        };
        let since = match self.since {
            None => None,
            Some(s) => Some(EventTime::parse_rfc3339(&s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid since {s:?}: expected an RFC 3339 time such as 2026-11-22T08:15:30Z"
                ))
            })?),
        };
        Ok(IncidentFilter {
            status,
            kind: self.kind,
            department: self.department,
            since,
            limit: self.limit,
        })
    }
}

/// `GET /api/v1/devices` query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceQuery {
    status: Option<String>,
}

/// Optional body of ack/resolve.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    reason: Option<String>,
}

/// Turns axum's query rejection into a 400 whose message names the parameter.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    match q {
        Ok(Query(v)) => Ok(v),
        // serde_urlencoded's messages name the field ("unknown field `x`", "limit: invalid
        // digit"); they describe the client's input, not our internals.
        Err(rejection) => Err(ApiError::BadRequest(format!(
            "invalid query string: {}",
            inner_text(&rejection)
        ))),
    }
}

fn inner_text(rejection: &QueryRejection) -> String {
    let text = rejection.body_text();
    match text.strip_prefix("Failed to deserialize query string: ") {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// Parses the optional `{"reason": "..."}` body; an empty body means no reason.
fn action_body(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: ActionBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid JSON body: {e}; expected {{\"reason\": \"...\"}}"
        ))
    })?;
    match parsed.reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(ApiError::BadRequest(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        ))),
        Some(r) if r.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Operator actions happen in wall-clock time (unlike evidence, which is event time).
fn now() -> EventTime {
    EventTime(chrono::Utc::now().timestamp_millis())
}

pub(super) async fn list_incidents(
    State(state): State<ApiState>,
    caller: Principal,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    caller.require(Permission::Read, "read incidents")?;
    let filter = query(q)?.into_filter()?;
    Ok(Json(state.store.list(&filter)))
}

pub(super) async fn get_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<Incident>, ApiError> {
    caller.require(Permission::Read, "read incidents")?;
    state
        .store
        .get(&id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no incident with id {id:?}")))
}

pub(super) async fn ack_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Incident>, ApiError> {
    caller.require(Permission::Operate, "acknowledge incidents")?;
    let reason = action_body(&body)?;
    let incident = state
        .store
        .ack(&id, &caller.name, reason.as_deref(), now())?;
    tracing::info!(incident = %id, actor = %caller.name, "incident acknowledged");
    Ok(Json(incident))
}

pub(super) async fn resolve_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Incident>, ApiError> {
    caller.require(Permission::Operate, "resolve incidents")?;
    let reason = action_body(&body)?;
    let incident = state
        .store
        .resolve(&id, &caller.name, reason.as_deref(), now())?;
    tracing::info!(incident = %id, actor = %caller.name, "incident resolved");
    Ok(Json(incident))
}

pub(super) async fn list_devices(
    State(state): State<ApiState>,
    caller: Principal,
    q: Result<Query<DeviceQuery>, QueryRejection>,
) -> Result<Json<Vec<DeviceStatusView>>, ApiError> {
    caller.require(Permission::Read, "read devices")?;
    let wanted = match query(q)?.status {
        None => None,
        Some(s) => Some(DeviceStatus::parse(&s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid status {s:?}: expected one of online, silent, faulty, unregistered, never-seen"
            ))
        })?),
    };
    let mut devices = state.devices.list();
    if let Some(w) = wanted {
        devices.retain(|d| d.status == w);
    }
    Ok(Json(devices))
}

pub(super) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_string())
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
