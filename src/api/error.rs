//! The API's one error type: every failure becomes `{"error": "..."}` with a fitting status,
//! and nothing internal (paths, panics, library messages about our own state) reaches a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::incident::LifecycleError;

/// Everything a handler can answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` header (401).
    #[error("missing bearer token: send 'Authorization: Bearer <token>'")]
    MissingToken,
    /// A bearer token that matches no configured token (401).
    #[error("unknown bearer token")]
    UnknownToken,
    /// The token's role may not do this (403).
    #[error("role {role} may not {action}")]
    Forbidden {
        /// Role of the caller.
        role: &'static str,
        /// What it tried.
        action: &'static str,
    },
    /// The request is malformed; the message names the offending parameter or field (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such route or resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method (405).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The incident's lifecycle does not allow the change (409).
    #[error("{0}")]
    Conflict(String),
    /// The request was understood but its content is invalid, e.g. pipeline files that fail
    /// validation (422); the message lists every problem.
    #[error("{0}")]
    Invalid(String),
    /// The change could not be saved durably, so it was not made (503; details only in logs).
    #[error("the change could not be saved; it was not made, try again")]
    Unavailable,
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::UnknownToken => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(err: LifecycleError) -> Self {
        match err {
            LifecycleError::NotFound { .. } => ApiError::NotFound(err.to_string()),
            LifecycleError::SelfMerge { .. } => ApiError::BadRequest(err.to_string()),
            LifecycleError::InvalidTransition { .. }
            | LifecycleError::Merged { .. }
            | LifecycleError::SurvivorNotLive { .. } => ApiError::Conflict(err.to_string()),
            // Logged by the store; the client learns only that nothing changed.
            LifecycleError::Storage { .. } => ApiError::Unavailable,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 for a bearer-protected resource names the scheme.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
