//! Crew dispatch, escalation and silence routes:
//!
//! | route                                         | roles                                 |
//! |-----------------------------------------------|---------------------------------------|
//! | `GET  /api/v1/dispatches`                     | every role (a crew sees its own only) |
//! | `POST /api/v1/dispatches/{dispatch_id}/ack`   | crew (its own), operator, admin       |
//! | `POST /api/v1/incidents/{id}/dispatch`        | operator, admin                       |
//! | `GET  /api/v1/incidents/{id}/dispatches`      | viewer, operator, engineer, admin     |
//! | `GET  /api/v1/escalations`                    | viewer, operator, engineer, admin     |
//! | `GET/POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`, `GET /api/v1/silences/suppressed` | operator, admin |
//!
//! The dispatcher itself runs in `sink::dispatch`; these handlers ask it through its handle, so
//! an API request and an MQTT answer are decided one after the other, never at the same time.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Permission, Principal};
use super::openapi::ErrorBody;
use super::{ApiError, ApiState};
use crate::incident::dispatch::{
    Dispatch, DispatchError, DispatchStatus, Escalation, Silence, SilenceError, SilenceSpec,
    Suppression,
};
use crate::model::CrewAction;
use crate::sink::dispatch::DispatchHandle;

impl From<DispatchError> for ApiError {
    fn from(err: DispatchError) -> Self {
        match err {
            DispatchError::UnknownDispatch(_) | DispatchError::UnknownIncident(_) => {
                ApiError::NotFound(err.to_string())
            }
            DispatchError::NotYours(_) => ApiError::Forbidden {
                role: "crew",
                action: "answer another crew's dispatch",
            },
            DispatchError::InvalidAnswer { .. }
            | DispatchError::AlreadyDispatched(_)
            | DispatchError::IncidentClosed(_) => ApiError::Conflict(err.to_string()),
            DispatchError::Stopped => ApiError::Unavailable,
        }
    }
}

fn dispatcher(state: &ApiState) -> Result<&DispatchHandle, ApiError> {
    state
        .dispatch
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("crew dispatch is not running on this server".into()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|r| ApiError::BadRequest(format!("invalid query string: {}", r.body_text())))
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}; expected {shape}")))
}

fn log_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "dispatch log unreadable");
    ApiError::Unavailable
}

/// `GET /api/v1/dispatches` query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DispatchQuery {
    /// Only this incident's dispatches.
    incident_id: Option<String>,
    /// Only this crew's dispatches.
    crew_id: Option<String>,
    /// Only this status: sent, accepted, on_scene, resolved, declined, timed_out, cancelled.
    status: Option<String>,
}

/// Dispatches, oldest first. A crew token sees only its own.
#[utoipa::path(
    get, path = "/api/v1/dispatches", tag = "dispatch", params(DispatchQuery),
    responses(
        (status = 200, description = "Dispatches, oldest first", body = [Dispatch]),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "crew", "engineer", "admin"]))
)]
pub(super) async fn list_dispatches(
    State(state): State<ApiState>,
    caller: Principal,
    q: Result<Query<DispatchQuery>, QueryRejection>,
) -> Result<Json<Vec<Dispatch>>, ApiError> {
    if !caller.role.allows(Permission::CrewDispatch) {
        caller.require(Permission::Read, "list dispatches")?;
    }
    let q = query(q)?;
    let status = match &q.status {
        None => None,
        Some(s) => Some(DispatchStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid status {s:?}: expected a dispatch status such as sent"
            ))
        })?),
    };
    let own = caller.crew_id();
    let all = dispatcher(&state)?.dispatches().map_err(log_error)?;
    let out = all
        .into_iter()
        .filter(|d| own.is_none_or(|c| d.crew_id == c))
        .filter(|d| q.crew_id.as_ref().is_none_or(|c| d.crew_id == *c))
        .filter(|d| q.incident_id.as_ref().is_none_or(|i| d.incident_id == *i))
        .filter(|d| status.is_none_or(|s| d.status == s))
        .collect();
    Ok(Json(out))
}

/// A crew's answer through the API.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    /// `accept`, `decline`, `on_scene` or `resolved`.
    action: AckAction,
}

/// The answers of the devices contract (§5).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum AckAction {
    /// Takes the job: the incident becomes `dispatched`.
    Accept,
    /// Refuses: the next crew is sent.
    Decline,
    /// Arrived: the incident becomes `on_scene`.
    OnScene,
    /// Done: the incident is resolved once every department's crew has resolved.
    Resolved,
}

/// Answer a dispatch: a crew its own, an operator any crew's (recorded under the operator).
#[utoipa::path(
    post, path = "/api/v1/dispatches/{dispatch_id}/ack", tag = "dispatch",
    params(("dispatch_id" = String, Path, description = "Dispatch id")),
    request_body = AckBody,
    responses(
        (status = 200, description = "The dispatch after the answer", body = Dispatch),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed, or another crew's dispatch", body = ErrorBody),
        (status = 404, description = "No such dispatch", body = ErrorBody),
        (status = 409, description = "The answer does not fit the dispatch's status", body = ErrorBody),
    ),
    security(("bearer" = ["crew", "operator", "admin"]))
)]
pub(super) async fn ack_dispatch(
    State(state): State<ApiState>,
    caller: Principal,
    Path(dispatch_id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Dispatch>, ApiError> {
    caller.require(Permission::CrewDispatch, "answer dispatches")?;
    let parsed: AckBody = body(&bytes, "{\"action\": \"accept|decline|on_scene|resolved\"}")?;
    let action = match parsed.action {
        AckAction::Accept => CrewAction::Accept,
        AckAction::Decline => CrewAction::Decline,
        AckAction::OnScene => CrewAction::OnScene,
        AckAction::Resolved => CrewAction::Resolved,
    };
    let handle = dispatcher(&state)?;
    let d = handle
        .answer(&dispatch_id, action, caller.crew_id(), &caller.name)
        .await?;
    tracing::info!(dispatch = %dispatch_id, actor = %caller.name, status = d.status.as_str(), "dispatch answered");
    Ok(Json(d))
}

/// Operator-confirmed dispatch: every department of the incident without a crew on the way
/// gets the nearest available one (silences do not apply: the operator decided).
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/dispatch", tag = "dispatch",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 201, description = "Dispatches sent (empty: no crew available yet; the escalation says so)", body = [Dispatch]),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Already dispatched, or the incident is over", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(super) async fn dispatch_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Vec<Dispatch>>), ApiError> {
    caller.require(Permission::Operate, "dispatch crews")?;
    let sent = dispatcher(&state)?.confirm(&id, &caller.name).await?;
    tracing::info!(incident = %id, actor = %caller.name, crews = sent.len(), "dispatch confirmed");
    Ok((StatusCode::CREATED, Json(sent)))
}

/// An incident's dispatches and escalations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct IncidentDispatches {
    /// Dispatches, oldest first.
    dispatches: Vec<Dispatch>,
    /// Escalations, oldest first.
    escalations: Vec<Escalation>,
}

/// One incident's dispatches and escalations (what the operators follow on its page).
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/dispatches", tag = "dispatch",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Dispatches and escalations", body = IncidentDispatches),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
)]
pub(super) async fn incident_dispatches(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<IncidentDispatches>, ApiError> {
    caller.require(Permission::Read, "read dispatches")?;
    let handle = dispatcher(&state)?;
    let dispatches = handle.dispatches().map_err(log_error)?;
    let escalations = handle.escalations().map_err(log_error)?;
    Ok(Json(IncidentDispatches {
        dispatches: dispatches
            .into_iter()
            .filter(|d| d.incident_id == id)
            .collect(),
        escalations: escalations
            .into_iter()
            .filter(|e| e.incident_id == id)
            .collect(),
    }))
}

/// Escalations (a crew declined or did not answer, or none was available), oldest first.
#[utoipa::path(
    get, path = "/api/v1/escalations", tag = "dispatch",
    responses(
        (status = 200, description = "Escalations, oldest first", body = [Escalation]),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
)]
pub(super) async fn list_escalations(
    State(state): State<ApiState>,
    caller: Principal,
) -> Result<Json<Vec<Escalation>>, ApiError> {
    caller.require(Permission::Read, "read escalations")?;
    Ok(Json(dispatcher(&state)?.escalations().map_err(log_error)?))
}

impl From<SilenceError> for ApiError {
    fn from(err: SilenceError) -> Self {
        match err {
            SilenceError::Invalid(m) => ApiError::BadRequest(m),
            SilenceError::NotFound(_) => ApiError::NotFound(err.to_string()),
        }
    }
}

/// `GET /api/v1/silences` query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SilenceQuery {
    /// Also list expired silences.
    expired: Option<bool>,
}

/// Active silences (with `?expired=true`, expired ones too), oldest first.
#[utoipa::path(
    get, path = "/api/v1/silences", tag = "silences", params(SilenceQuery),
    responses(
        (status = 200, description = "Silences", body = [Silence]),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(super) async fn list_silences(
    State(state): State<ApiState>,
    caller: Principal,
    q: Result<Query<SilenceQuery>, QueryRejection>,
) -> Result<Json<Vec<Silence>>, ApiError> {
    caller.require(Permission::Operate, "read silences")?;
    let q = query(q)?;
    let handle = dispatcher(&state)?;
    Ok(Json(
        handle
            .silences()
            .list(handle.now(), q.expired.unwrap_or(false)),
    ))
}

/// Silence a device, an area (circle or polygon) and/or an incident kind until it expires.
#[utoipa::path(
    post, path = "/api/v1/silences", tag = "silences", request_body = SilenceSpec,
    responses(
        (status = 201, description = "The silence", body = Silence),
        (status = 400, description = "Invalid silence (the message names the field)", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(super) async fn create_silence(
    State(state): State<ApiState>,
    caller: Principal,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    caller.require(Permission::Operate, "set silences")?;
    let spec: SilenceSpec = body(
        &bytes,
        "a silence: {device_id|kind|area, expires_at|duration_secs, reason}",
    )?;
    let handle = dispatcher(&state)?;
    let silence = handle.silences().add(spec, &caller.name, handle.now())?;
    tracing::info!(silence = %silence.id, actor = %caller.name, "silence set");
    Ok((StatusCode::CREATED, Json(silence)))
}

/// End a silence now.
#[utoipa::path(
    delete, path = "/api/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "Silence id (S-1)")),
    responses(
        (status = 200, description = "The silence removed", body = Silence),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such silence", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(super) async fn delete_silence(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<Silence>, ApiError> {
    caller.require(Permission::Operate, "remove silences")?;
    let silence = dispatcher(&state)?.silences().remove(&id)?;
    tracing::info!(silence = %id, actor = %caller.name, "silence removed");
    Ok(Json(silence))
}

/// Incidents held back by silences (kept with their evidence, not dispatched, not pushed).
#[utoipa::path(
    get, path = "/api/v1/silences/suppressed", tag = "silences",
    responses(
        (status = 200, description = "Suppressed incidents (lifted ones carry lifted_at)", body = [Suppression]),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(super) async fn list_suppressed(
    State(state): State<ApiState>,
    caller: Principal,
) -> Result<Json<Vec<Suppression>>, ApiError> {
    caller.require(Permission::Operate, "read suppressed incidents")?;
    Ok(Json(dispatcher(&state)?.silences().suppressed()))
}
