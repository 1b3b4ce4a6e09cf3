//! Bearer-token authentication and roles.
//!
//! Tokens are stored only as SHA-256 hex digests (a leaked tokens file does not leak tokens). A
//! presented token is hashed and looked up by digest, so the comparison never runs byte by byte
//! over a secret: the only timing signal concerns the digest, which reveals nothing useful.
//!
//! Roles ([`Role`]) and what each may do ([`Permission`]):
//!
//! | permission       | viewer | operator | crew | engineer | admin |
//! |------------------|:------:|:--------:|:----:|:--------:|:-----:|
//! | `Read`           |   x    |    x     |      |    x     |   x   |
//! | `Operate`        |        |    x     |      |          |   x   |
//! | `CrewDispatch`   |        |    x     |  x   |          |   x   |
//! | `Engineer`       |        |          |      |    x     |   x   |
//! | `Admin`          |        |          |      |          |   x   |
//! | `Describe`       |   x    |    x     |  x   |    x     |   x   |
//!
//! A crew token's name is its crew id (`W-07`), so a crew sees and answers only its own
//! dispatches ([`Principal::crew_id`]). With a tokens file ([`Auth::from_file`]) the table
//! follows the file: `citybrain token create/revoke` on a running server takes effect within
//! [`RELOAD_INTERVAL`].

mod file;
mod roles;
pub(super) mod routes;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use file::{read_tokens_file, TokenFileError, TokensFile};
pub use roles::{Permission, Role};

use super::{ApiError, ApiState};

/// How often, at most, a tokens file is checked for changes (one `stat` per interval).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// One configured token: who, which role, and the SHA-256 hex digest of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Name recorded as the actor of lifecycle changes (`ops-desk-1`); a crew's id for crews.
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

    /// The crew this caller speaks for: its token name when the role is `crew`, else `None`
    /// (operators and admins act on any crew's dispatch).
    pub fn crew_id(&self) -> Option<&str> {
        (self.role == Role::Crew).then_some(self.name.as_str())
    }
}

/// The digest table built from a list of entries.
#[derive(Default)]
struct Table {
    by_digest: HashMap<String, Principal>,
    entries: Vec<TokenEntry>,
}

impl Table {
    /// Digests are compared case-insensitively; a repeated digest keeps the last entry (logged,
    /// since two names for one secret is a config mistake).
    fn build(entries: Vec<TokenEntry>) -> Table {
        let mut by_digest = HashMap::new();
        for e in &entries {
            let digest = e.sha256.trim().to_ascii_lowercase();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                tracing::warn!(token = %e.name, "token digest is not 64 hex digits; it can never match");
            }
            let principal = Principal {
                name: e.name.clone(),
                role: e.role,
            };
            if let Some(old) = by_digest.insert(digest, principal) {
                tracing::warn!(token = %old.name, "token digest configured twice; later entry wins");
            }
        }
        Table { by_digest, entries }
    }
}

/// When a tokens file was last seen as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

/// The configured tokens, keyed by digest; optionally following a tokens file.
pub struct Auth {
    table: RwLock<Table>,
    file: Option<TokensFile>,
    /// Last check of the file and what it looked like then.
    seen: Mutex<(Instant, Option<Stamp>)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests are not secrets, but there is no reason to print them either.
        f.debug_struct("Auth")
            .field("tokens", &self.table.read().by_digest.len())
            .field("file", &self.file.as_ref().map(TokensFile::path))
            .finish()
    }
}

impl Auth {
    /// A fixed table (demo, tests): token changes through the API live in memory only.
    pub fn from_entries(entries: Vec<TokenEntry>) -> Auth {
        Auth {
            table: RwLock::new(Table::build(entries)),
            file: None,
            seen: Mutex::new((Instant::now(), None)),
        }
    }

    /// The tokens in `path` (a YAML list of `{name, role, sha256}`), re-read when the file
    /// changes; tokens created or revoked through the API are written to it.
    pub fn from_file(path: &Path) -> Result<Auth, TokenFileError> {
        let file = TokensFile::new(path);
        let before = stamp(path);
        let entries = file.read()?;
        Ok(Auth {
            table: RwLock::new(Table::build(entries)),
            file: Some(file),
            seen: Mutex::new((Instant::now(), before)),
        })
    }

    /// The tokens file this table follows, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_ref().map(TokensFile::path)
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
        self.reload_if_changed();
        self.table.read().by_digest.get(&Auth::hash(token)).cloned()
    }

    /// Every token's name and role (never digests), by name.
    pub fn list(&self) -> Vec<(String, Role)> {
        self.reload_if_changed();
        let mut out: Vec<(String, Role)> = self
            .table
            .read()
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.role))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Creates a token named `name` with `role` (names are unique: they are the actors in the
    /// audit trail) and returns the plaintext, which is not kept anywhere.
    pub fn create(&self, name: &str, role: Role) -> Result<String, TokenFileError> {
        file::validate_name(name)?;
        let (token, entry) = Auth::generate(name, role);
        let entries = match &self.file {
            Some(f) => f.append(entry)?,
            None => {
                let mut entries = self.table.read().entries.clone();
                if entries.iter().any(|e| e.name == name) {
                    return Err(TokenFileError::Duplicate(name.to_string()));
                }
                entries.push(entry);
                entries
            }
        };
        self.install(entries);
        Ok(token)
    }

    /// Revokes every token named `name`; `Ok(false)` if there was none.
    pub fn revoke(&self, name: &str) -> Result<bool, TokenFileError> {
        let (removed, entries) = match &self.file {
            Some(f) => f.revoke(name)?,
            None => {
                let mut entries = self.table.read().entries.clone();
                let before = entries.len();
                entries.retain(|e| e.name != name);
                (entries.len() != before, entries)
            }
        };
        self.install(entries);
        Ok(removed)
    }

    fn install(&self, entries: Vec<TokenEntry>) {
        *self.table.write() = Table::build(entries);
        if let Some(f) = &self.file {
            *self.seen.lock() = (Instant::now(), stamp(f.path()));
        }
    }

    /// Re-reads the tokens file when it changed (checked at most every [`RELOAD_INTERVAL`]).
    /// A file that no longer parses keeps the previous table (logged), so a half-edited file
    /// does not lock everyone out.
    fn reload_if_changed(&self) {
        let Some(f) = &self.file else { return };
        let mut seen = self.seen.lock();
        if seen.0.elapsed() < RELOAD_INTERVAL {
            return;
        }
        seen.0 = Instant::now();
        let now = stamp(f.path());
        if now == seen.1 {
            return;
        }
        match f.read() {
            Ok(entries) => {
                seen.1 = now;
                *self.table.write() = Table::build(entries);
                tracing::info!(file = %f.path().display(), "tokens file reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "tokens file unreadable; keeping the previous tokens")
            }
        }
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
