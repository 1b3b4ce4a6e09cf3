//! Engineer routes for the running definitions: see which pipeline version runs and trigger a
//! hot reload of `pipelines/` and `device-profiles/` (the same as editing a file, on demand).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Permission, Principal};
use super::error::ApiError;
use super::openapi::ErrorBody;
use super::ApiState;

/// What the API needs from whoever owns the running definitions (the app's file watcher).
pub trait DefinitionsControl: Send + Sync + std::fmt::Debug {
    /// Loads and validates the files and swaps them in; `Err` lists every problem
    /// (`file:line: field: message`) and the running definitions stay.
    fn reload_now(&self) -> Result<u64, Vec<String>>;
    /// Current state.
    fn describe(&self) -> DefinitionsView;
}

/// The running definitions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DefinitionsView {
    /// Version running (0 = as started; +1 per reload).
    pub version: u64,
    /// Incident kinds of the running pipelines, by priority.
    pub kinds: Vec<String>,
    /// Signal names of the running pipelines.
    pub signals: Vec<String>,
    /// Successful reloads so far.
    pub reloads: u64,
    /// Rejected reload attempts so far.
    pub rejected: u64,
    /// Problems of the last rejected attempt (empty after a successful one).
    pub last_errors: Vec<String>,
}

/// Shared handle to the running definitions.
pub type Definitions = Arc<dyn DefinitionsControl>;

/// Where [`ApiState`] finds the definitions once the app has set them up (the API starts
/// before the file watcher exists); unset: the routes answer 404.
pub type DefinitionsSlot = Arc<std::sync::OnceLock<Definitions>>;

fn control(state: &ApiState) -> Result<&Definitions, ApiError> {
    state
        .definitions
        .get()
        .ok_or_else(|| ApiError::NotFound("this server has no reloadable definitions".into()))
}

/// The running pipeline version.
#[utoipa::path(
    get, path = "/api/v1/pipelines", tag = "engineering",
    responses(
        (status = 200, description = "Running definitions", body = DefinitionsView),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Not reloadable here", body = ErrorBody),
    ),
    security(("bearer" = ["engineer", "admin"]))
)]
pub(super) async fn get_pipelines(
    State(state): State<ApiState>,
    caller: Principal,
) -> Result<Json<DefinitionsView>, ApiError> {
    caller.require(Permission::Engineer, "see the running pipelines")?;
    Ok(Json(control(&state)?.describe()))
}

/// Validate `pipelines/` and `device-profiles/` and swap them in without a restart.
#[utoipa::path(
    post, path = "/api/v1/pipelines/reload", tag = "engineering",
    responses(
        (status = 200, description = "Reloaded", body = DefinitionsView),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Not reloadable here", body = ErrorBody),
        (status = 422, description = "Invalid files: every problem listed; old definitions stay", body = ErrorBody),
    ),
    security(("bearer" = ["engineer", "admin"]))
)]
pub(super) async fn reload_pipelines(
    State(state): State<ApiState>,
    caller: Principal,
) -> Result<Json<DefinitionsView>, ApiError> {
    caller.require(Permission::Engineer, "reload pipelines")?;
    let control = control(&state)?.clone();
    let result =
        tokio::task::spawn_blocking(move || control.reload_now().map(|_| control.describe()))
            .await
            .map_err(|_| ApiError::Unavailable)?;
    match result {
        Ok(view) => Ok(Json(view)),
        Err(problems) => Err(ApiError::Invalid(problems.join("\n"))),
    }
}
