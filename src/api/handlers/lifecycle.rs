//! Lifecycle handlers: `POST /api/v1/incidents/{id}/{ack,on_scene,resolve,close,reopen,merge}`,
//! each with an optional `{"reason": "..."}` (merge: `{"into": "<id>", "reason": "..."}`).
//!
//! The caller's token name is the actor in the audit trail. Refused transitions are 409 with
//! the reason; a change that could not be saved durably is 503 and was not made. Store calls run
//! on a blocking thread: on a durable store they wait for an fsync.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use super::super::auth::{Permission, Principal};
use super::super::openapi::ErrorBody;
use super::super::{ApiError, ApiState};
use crate::incident::{IncidentStore, LifecycleError, MergeOutcome};
use crate::model::{EventTime, Incident};

/// Longest accepted free-text reason, so the history cannot be used to store bulk data.
const MAX_REASON_CHARS: usize = 2_000;

/// Optional body of a lifecycle action.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct ActionBody {
    /// Why (kept in the audit trail; at most 2000 characters).
    reason: Option<String>,
}

/// Body of a merge.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct MergeBody {
    /// The incident that survives and takes in this one's evidence.
    into: String,
    /// Why (kept in both audit trails; at most 2000 characters).
    reason: Option<String>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes, shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}; expected {shape}")))
}

fn check_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(ApiError::BadRequest(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        ))),
        Some(r) if r.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Parses the optional `{"reason": "..."}` body; an empty body means no reason.
fn action_body(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: ActionBody = parse_body(body, "{\"reason\": \"...\"}")?;
    check_reason(parsed.reason)
}

/// Operator actions happen in wall-clock time (unlike evidence, which is event time).
fn now() -> EventTime {
    EventTime(chrono::Utc::now().timestamp_millis())
}

/// Runs a store call off the async workers (it may wait for the disk).
async fn on_store<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&IncidentStore) -> Result<T, LifecycleError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "lifecycle call failed to run");
            Err(ApiError::Unavailable)
        }
    }
}

/// A single-incident store action: `(store, id, actor, reason, now)`, e.g. `IncidentStore::ack`.
type StoreAction =
    fn(&IncidentStore, &str, &str, Option<&str>, EventTime) -> Result<Incident, LifecycleError>;

/// The single-incident actions differ only in the store call, the wording and the log line.
async fn act(
    state: ApiState,
    caller: Principal,
    id: String,
    body: Bytes,
    action: &'static str,
    call: StoreAction,
) -> Result<Json<Incident>, ApiError> {
    caller.require(Permission::Operate, action)?;
    let reason = action_body(&body)?;
    let actor = caller.name.clone();
    let target = id.clone();
    let incident = on_store(&state, move |store| {
        call(store, &target, &actor, reason.as_deref(), now())
    })
    .await?;
    tracing::info!(incident = %id, actor = %caller.name, status = incident.status.as_str(), "{action}");
    Ok(Json(incident))
}

/// Acknowledge: open → acknowledged.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/ack", tag = "lifecycle",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = Option<ActionBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "Acknowledged", body = Incident),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not allowed from the current status", body = ErrorBody),
        (status = 503, description = "Not saved, not made", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(in crate::api) async fn ack_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Incident>, ApiError> {
    act(
        state,
        caller,
        id,
        body,
        "acknowledge incidents",
        IncidentStore::ack,
    )
    .await
}

/// The crew is at the location (operators set it on behalf of a crew): dispatched → on_scene.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/on_scene", tag = "lifecycle",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = Option<ActionBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "On scene", body = Incident),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not allowed from the current status", body = ErrorBody),
        (status = 503, description = "Not saved, not made", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(in crate::api) async fn on_scene_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Incident>, ApiError> {
    act(
        state,
        caller,
        id,
        body,
        "set incidents on scene",
        IncidentStore::on_scene,
    )
    .await
}

/// Resolve: open, acknowledged, dispatched or on_scene → resolved.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/resolve", tag = "lifecycle",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = Option<ActionBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "Resolved", body = Incident),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not allowed from the current status", body = ErrorBody),
        (status = 503, description = "Not saved, not made", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(in crate::api) async fn resolve_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Incident>, ApiError> {
    act(
        state,
        caller,
        id,
        body,
        "resolve incidents",
        IncidentStore::resolve,
    )
    .await
}

/// Close (file) a resolved incident: resolved → closed.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/close", tag = "lifecycle",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = Option<ActionBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "Closed", body = Incident),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not allowed from the current status", body = ErrorBody),
        (status = 503, description = "Not saved, not made", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(in crate::api) async fn close_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Incident>, ApiError> {
    act(
        state,
        caller,
        id,
        body,
        "close incidents",
        IncidentStore::close,
    )
    .await
}

/// Reopen: resolved or closed → open (not a merged incident).
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/reopen", tag = "lifecycle",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = Option<ActionBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "Reopened", body = Incident),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not allowed from the current status, or merged", body = ErrorBody),
        (status = 503, description = "Not saved, not made", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(in crate::api) async fn reopen_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Incident>, ApiError> {
    act(
        state,
        caller,
        id,
        body,
        "reopen incidents",
        IncidentStore::reopen,
    )
    .await
}

/// Merge this incident into another (the survivor): this one becomes closed with
/// `merged_into`; the survivor shows its evidence; both audit trails record it.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/merge", tag = "lifecycle",
    params(("id" = String, Path, description = "Incident to merge")),
    request_body(content = MergeBody, description = "The survivor and an optional reason"),
    responses(
        (status = 200, description = "Both incidents after the merge", body = MergeOutcome),
        (status = 400, description = "Malformed body, or merging into itself", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such incident (either)", body = ErrorBody),
        (status = 409, description = "Either was merged already, or the survivor is not live", body = ErrorBody),
        (status = 503, description = "Not saved, not made", body = ErrorBody),
    ),
    security(("bearer" = ["operator", "admin"]))
)]
pub(in crate::api) async fn merge_incident(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<MergeOutcome>, ApiError> {
    caller.require(Permission::Operate, "merge incidents")?;
    let parsed: MergeBody =
        parse_body(&body, "{\"into\": \"<incident id>\", \"reason\": \"...\"}")?;
    let reason = check_reason(parsed.reason)?;
    let (actor, victim, into) = (caller.name.clone(), id.clone(), parsed.into.clone());
    let outcome = on_store(&state, move |store| {
        store.merge(&victim, &into, &actor, reason.as_deref(), now())
    })
    .await?;
    tracing::info!(incident = %id, into = %parsed.into, actor = %caller.name, "incident merged");
    Ok(Json(outcome))
}
