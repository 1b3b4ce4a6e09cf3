//! Bearer-token authentication and role checks.
//!
//! Tokens are stored only as SHA-256 hex digests (a leaked config does not leak tokens). A
//! presented token is hashed and looked up by digest, so the comparison never runs byte by byte
//! over a secret: the only timing signal concerns the digest, which reveals nothing useful.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ApiError, ApiState};

/// What a token holder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads incidents and devices (wall screens, other departments).
    Viewer,
    /// Command-centre operator: reads, acknowledges and resolves.
    Operator,
    /// Field crew: reads (crews act on dispatches over MQTT).
    Crew,
    /// Device/platform engineer: reads.
    Engineer,
    /// Everything.
    Admin,
}

/// What a request wants to do, for role checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// GET incidents and devices.
    Read,
    /// Acknowledge or resolve incidents.
    Operate,
}

impl Role {
    /// The name used in token files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Crew => "crew",
            Role::Engineer => "engineer",
            Role::Admin => "admin",
        }
    }

    /// Parses a token-file role name.
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Viewer,
            Role::Operator,
            Role::Crew,
            Role::Engineer,
            Role::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Whether this role may do `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Operate => matches!(self, Role::Operator | Role::Admin),
        }
    }
}

/// One configured token: who, which role, and the SHA-256 hex digest of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Name recorded as the actor of lifecycle changes (`ops-desk-1`).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Lowercase hex SHA-256 of the token (see [`Auth::hash`]).
    pub sha256: String,
}

/// The authenticated caller, available to handlers as an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name.
    pub name: String,
    /// Token role.
    pub role: Role,
}

impl Principal {
    /// `Ok` if the role allows `permission`, else 403 naming the role and the action.
    pub fn require(&self, permission: Permission, action: &'static str) -> Result<(), ApiError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.as_str(),
                action,
            })
        }
    }
}

/// The configured tokens, keyed by digest.
pub struct Auth {
    by_digest: HashMap<String, Principal>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests are not secrets, but there is no reason to print them either.
        f.debug_struct("Auth")
            .field("tokens", &self.by_digest.len())
            .finish()
    }
}

impl Auth {
    /// Builds the table. Digests are compared case-insensitively; a repeated digest keeps the
    /// last entry (logged, since two names for one secret is a config mistake).
    pub fn from_entries(entries: Vec<TokenEntry>) -> Auth {
        let mut by_digest = HashMap::new();
        for e in entries {
            let digest = e.sha256.trim().to_ascii_lowercase();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                tracing::warn!(token = %e.name, "token digest is not 64 hex digits; it can never match");
            }
            let principal = Principal {
                name: e.name,
                role: e.role,
            };
            if let Some(old) = by_digest.insert(digest, principal) {
                tracing::warn!(token = %old.name, "token digest configured twice; later entry wins");
            }
        }
        Auth { by_digest }
    }

    /// Lowercase hex SHA-256 of a token, as stored in [`TokenEntry::sha256`].
    pub fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    /// A fresh random token (32 bytes from the OS-seeded CSPRNG, hex) and the entry to store.
    /// The plaintext is shown once to the user and never stored.
    pub fn generate(name: &str, role: Role) -> (String, TokenEntry) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let entry = TokenEntry {
            name: name.to_string(),
            role,
            sha256: Auth::hash(&token),
        };
        (token, entry)
    }

    /// The caller a token belongs to, if any.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.by_digest.get(&Auth::hash(token)).cloned()
    }

    /// The caller named by an `Authorization` header value.
    fn caller_for_header(&self, value: Option<&str>) -> Result<Principal, ApiError> {
        let value = value.map(str::trim).unwrap_or_default();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::MissingToken),
        };
        if token.is_empty() {
            return Err(ApiError::MissingToken);
        }
        self.authenticate(token).ok_or(ApiError::UnknownToken)
    }
}

/// Middleware: every `/api` request must carry a known bearer token. The caller is stored in the
/// request extensions for the [`Principal`] extractor. Unknown `/api` paths answer 401 too, so an
/// unauthenticated client cannot probe which routes exist.
pub(super) async fn require_token(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path != "/api" && !path.starts_with("/api/") {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.auth.caller_for_header(header) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(err) => err.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Absent only if a route was mounted outside the middleware: fail closed.
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::MissingToken)
    }
}
