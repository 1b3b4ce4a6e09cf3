//! Route handlers: incidents (list, get with history, history), devices, metrics and health;
//! the lifecycle actions are in [`lifecycle`]. Each handler carries its OpenAPI description
//! (`#[utoipa::path]`), including the roles allowed as the `bearer` security scopes; the router
//! registers handler and description together (`src/api/mod.rs`).
//!
//! Query strings are parsed by hand from axum's rejection into [`ApiError`], so every 400 is
//! JSON and names the parameter, and unknown parameters are refused (a typo such as `?stauts=`
//! must not silently return everything).

pub(super) mod lifecycle;
#[cfg(test)]
mod tests;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Permission, Principal};
use super::openapi::ErrorBody;
use super::{ApiError, ApiState};
use crate::incident::{DeviceStatus, DeviceStatusView, IncidentFilter, Transition};
use crate::model::{EventTime, Incident, IncidentStatus};
use crate::telemetry::CONTENT_TYPE;

/// `GET /api/v1/incidents` query string. `since` (RFC 3339) keeps incidents whose `updated_at` is
/// at or after it (see [`IncidentFilter::since`]); `limit` applies after newest-first sorting.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct IncidentQuery {
    /// Only this status: open, acknowledged, dispatched, on_scene, resolved, closed.
    status: Option<String>,
    /// Only this kind (e.g. `water_main_burst`).
    kind: Option<String>,
    /// Only incidents involving this department.
    department: Option<String>,
    /// Only incidents updated at or after this RFC 3339 time.
    since: Option<String>,
    /// At most this many, newest first.
    limit: Option<usize>,
}

impl IncidentQuery {
    fn into_filter(self) -> Result<IncidentFilter, ApiError> {
        let status = match self.status {
            None => None,
            Some(s) => Some(IncidentStatus::parse(&s).ok_or_else(|| {
                let names: Vec<&str> = IncidentStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::BadRequest(format!(
                    "invalid status {s:?}: expected one of {}",
                    names.join(", ")
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
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DeviceQuery {
    /// Only this status: online, silent, faulty, unregistered, never-seen.
    status: Option<String>,
}

/// One incident with its audit trail (`GET /api/v1/incidents/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct IncidentDetail {
    #[serde(flatten)]
    incident: Incident,
    /// Every lifecycle change: who, when, what and why, oldest first.
    history: Vec<Transition>,
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

fn no_incident(id: &str) -> ApiError {
    ApiError::NotFound(format!("no incident with id {id:?}"))
}

/// Incidents, newest first.
#[utoipa::path(
    get, path = "/api/v1/incidents", tag = "incidents",
    params(IncidentQuery),
    responses(
        (status = 200, description = "Matching incidents, newest first", body = [Incident]),
        (status = 400, description = "Bad query parameter (named)", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
)]
pub(super) async fn list_incidents(
    State(state): State<ApiState>,
    caller: Principal,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    caller.require(Permission::Read, "read incidents")?;
    let filter = query(q)?.into_filter()?;
    Ok(Json(state.store.list(&filter)))
}

/// One incident with its audit trail.
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident and its history", body = IncidentDetail),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
)]
pub(super) async fn get_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    caller.require(Permission::Read, "read incidents")?;
    let (incident, history) = state
        .store
        .get_with_history(&id)
        .ok_or_else(|| no_incident(&id))?;
    Ok(Json(IncidentDetail { incident, history }))
}

/// The audit trail of one incident: every lifecycle change, oldest first.
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/history", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Who did what, when and why", body = [Transition]),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
)]
pub(super) async fn incident_history(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Transition>>, ApiError> {
    caller.require(Permission::Read, "read incidents")?;
    state
        .store
        .history(&id)
        .map(Json)
        .ok_or_else(|| no_incident(&id))
}

/// Every known device and its health.
#[utoipa::path(
    get, path = "/api/v1/devices", tag = "devices",
    params(DeviceQuery),
    responses(
        (status = 200, description = "Devices by id", body = [DeviceStatusView]),
        (status = 400, description = "Bad query parameter (named)", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
)]
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

/// Prometheus metrics (text format); no token.
#[utoipa::path(
    get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4")),
    security(())
)]
pub(super) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

/// Liveness; no token.
#[utoipa::path(
    get, path = "/healthz", tag = "system",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)),
    security(())
)]
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_string())
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
