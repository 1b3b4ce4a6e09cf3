//! Token administration for admins: `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{name}`.
//! With a tokens file the changes are written to it (the same file `citybrain token` edits);
//! otherwise (demo) they last as long as the process.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{Permission, Principal, Role, TokenFileError};
use crate::api::openapi::ErrorBody;
use crate::api::{ApiError, ApiState};

/// A token as listed: never its secret or digest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(in crate::api) struct TokenInfo {
    /// Name (the actor in audit trails; a crew's id for crew tokens).
    name: String,
    /// Role.
    role: Role,
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct NewToken {
    /// Unique name: letters, digits, `-`, `_`, `.` (at most 64).
    name: String,
    /// Role.
    role: Role,
}

/// The created token: the secret is shown this once and stored nowhere.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(in crate::api) struct CreatedToken {
    /// Name.
    name: String,
    /// Role.
    role: Role,
    /// The bearer token (only its SHA-256 is kept).
    token: String,
}

fn token_error(e: TokenFileError) -> ApiError {
    match e {
        TokenFileError::Duplicate(_) => ApiError::Conflict(e.to_string()),
        TokenFileError::InvalidName { .. } => ApiError::BadRequest(e.to_string()),
        TokenFileError::Io { .. } | TokenFileError::Parse(_) => {
            tracing::error!(error = %e, "tokens file change failed");
            ApiError::Unavailable
        }
    }
}

/// Every token's name and role.
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "Tokens by name", body = [TokenInfo]),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["admin"]))
)]
pub(in crate::api) async fn list_tokens(
    State(state): State<ApiState>,
    caller: Principal,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    caller.require(Permission::Admin, "manage tokens")?;
    let auth = state.auth.clone();
    let list = tokio::task::spawn_blocking(move || auth.list())
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(Json(
        list.into_iter()
            .map(|(name, role)| TokenInfo { name, role })
            .collect(),
    ))
}

/// Creates a token; the answer holds the secret, shown only this once.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 400, description = "Malformed body or invalid name", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 503, description = "Tokens file not writable; nothing changed", body = ErrorBody),
    ),
    security(("bearer" = ["admin"]))
)]
pub(in crate::api) async fn create_token(
    State(state): State<ApiState>,
    caller: Principal,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require(Permission::Admin, "manage tokens")?;
    let req: NewToken = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid JSON body: {e}; expected {{\"name\": \"...\", \"role\": \"viewer|operator|crew|engineer|admin\"}}"
        ))
    })?;
    let auth = state.auth.clone();
    let (name, role) = (req.name.clone(), req.role);
    let token = tokio::task::spawn_blocking(move || auth.create(&name, role))
        .await
        .map_err(|_| ApiError::Unavailable)?
        .map_err(token_error)?;
    tracing::info!(token = %req.name, role = req.role.as_str(), by = %caller.name, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: req.name,
            role: req.role,
            token,
        }),
    ))
}

/// Revokes the token(s) named `name`.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "Token name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No token with this name", body = ErrorBody),
        (status = 503, description = "Tokens file not writable; nothing changed", body = ErrorBody),
    ),
    security(("bearer" = ["admin"]))
)]
pub(in crate::api) async fn revoke_token(
    State(state): State<ApiState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Admin, "manage tokens")?;
    let auth = state.auth.clone();
    let target = name.clone();
    let removed = tokio::task::spawn_blocking(move || auth.revoke(&target))
        .await
        .map_err(|_| ApiError::Unavailable)?
        .map_err(token_error)?;
    if !removed {
        return Err(ApiError::NotFound(format!("no token named {name:?}")));
    }
    tracing::info!(token = %name, by = %caller.name, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
