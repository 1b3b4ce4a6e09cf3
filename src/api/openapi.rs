//! The OpenAPI 3.1 document of the whole API, served at `GET /api/v1/openapi.json`.
//!
//! It is generated from the handlers' `#[utoipa::path]` attributes as the router registers them
//! (`super::routes`, utoipa-axum's `OpenApiRouter`): the routes served and the paths described
//! come from the same list, so they cannot drift. Each operation's `bearer` security scopes are
//! the roles allowed to call it (OpenAPI 3.1 allows role names as scopes for non-OAuth schemes);
//! `security: [{}]` marks a public route. `tests/api_roles.rs` checks every route of the router
//! is described, every description is routed, and that each route admits exactly its roles.
//!
//! Routes whose handlers live in modules this file does not own and that are registered without
//! a description are described in [`external`] until their handlers carry their own
//! `#[utoipa::path]` (then delete the entry there).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Schema};

use super::auth::Principal;
use super::{ApiError, Permission};
use crate::model::EventTime;

/// Name of the security scheme every protected operation refers to.
pub const BEARER: &str = "bearer";

/// Every error answer: `{"error": "..."}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, naming the offending parameter, field or status.
    error: String,
}

/// Event times travel as RFC 3339 strings in UTC with milliseconds.
impl utoipa::PartialSchema for EventTime {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 time in UTC with milliseconds"))
            .examples(["2026-11-22T08:15:30.250Z"])
            .into()
    }
}

impl utoipa::ToSchema for EventTime {}

/// The complete document: the routes' descriptions plus title, security scheme and the
/// descriptions of [`external`] routes.
pub fn document() -> OpenApi {
    let (_, mut doc) = super::routes().split_for_parts();
    doc.merge(external::document());
    doc.info.title = "citybrain command-centre API".to_string();
    doc.info.description = Some(
        "Incidents correlated from city devices, their lifecycle and audit trail, devices, \
         crews and tokens. Every /api route needs `Authorization: Bearer <token>`; the bearer \
         scopes of an operation are the roles allowed to call it."
            .to_string(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token from `citybrain token create`; roles: viewer, operator, crew, \
                     engineer, admin",
                ))
                .build(),
        ),
    );
    doc
}

/// The document as JSON, built once (it only depends on the code).
fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document().to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "openapi document does not serialize");
            String::from("{}")
        })
    })
}

/// This document.
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "system",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", body = Object),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "crew", "engineer", "admin"]))
)]
pub(super) async fn openapi_json(caller: Principal) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Describe, "read the API description")?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    ))
}

/// Descriptions of routes registered by modules that do not describe them yet (the live stream
/// and the command-centre page). Their handlers' role checks are what these scopes state, and
/// `tests/api_roles.rs` verifies that against the running router.
mod external {
    use utoipa::OpenApi as _;

    use super::ErrorBody;

    /// The live stream of incident, device and crew changes (Server-Sent Events); the token may
    /// also come as `?access_token=` because EventSource cannot set headers.
    #[utoipa::path(
        get, path = "/api/v1/stream", tag = "live",
        responses(
            (status = 200, description = "text/event-stream of changes", content_type = "text/event-stream"),
            (status = 401, description = "No or unknown token", body = ErrorBody),
            (status = 403, description = "Role not allowed", body = ErrorBody),
        ),
        security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
    )]
    #[allow(dead_code)] // description only; the handler is `api::stream::stream`
    fn stream() {}

    /// Who the caller is and whether it may operate (the page uses it to show its buttons).
    #[utoipa::path(
        get, path = "/api/v1/me", tag = "live",
        responses(
            (status = 200, description = "`{name, role, can_operate}`", body = Object),
            (status = 401, description = "No or unknown token", body = ErrorBody),
        ),
        security(("bearer" = ["viewer", "operator", "crew", "engineer", "admin"]))
    )]
    #[allow(dead_code)]
    fn me() {}

    /// Registered crews and their latest status.
    #[utoipa::path(
        get, path = "/api/v1/crews", tag = "live",
        responses(
            (status = 200, description = "Crews by id", body = [Object]),
            (status = 401, description = "No or unknown token", body = ErrorBody),
            (status = 403, description = "Role not allowed", body = ErrorBody),
        ),
        security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
    )]
    #[allow(dead_code)]
    fn crews() {}

    /// The command-centre page (HTML; asks for a token itself); no token.
    #[utoipa::path(
        get, path = "/", tag = "page",
        responses((status = 200, description = "The page", content_type = "text/html")),
        security(())
    )]
    #[allow(dead_code)]
    fn page() {}

    /// The page's settings (`{tile_url}`); no token.
    #[utoipa::path(
        get, path = "/page/config.json", tag = "page",
        responses((status = 200, description = "`{tile_url}`", body = Object)),
        security(())
    )]
    #[allow(dead_code)]
    fn page_config() {}

    /// The page's embedded assets (scripts, styles); no token.
    #[utoipa::path(
        get, path = "/page/{name}", tag = "page",
        params(("name" = String, Path, description = "Asset file name, e.g. app.js")),
        responses(
            (status = 200, description = "The asset"),
            (status = 404, description = "No such asset", body = ErrorBody),
        ),
        security(())
    )]
    #[allow(dead_code)]
    fn page_asset() {}

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(stream, me, crews, page, page_config, page_asset))]
    struct External;

    pub(super) fn document() -> utoipa::openapi::OpenApi {
        External::openapi()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_reference_resolves_and_every_operation_states_its_roles() {
        let doc = serde_json::to_value(super::document()).expect("serializes");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10, "the document uses shared schemas");
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {r}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
        let paths = doc["paths"].as_object().expect("paths");
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                assert!(op["security"].is_array(), "{method} {path} states no roles");
            }
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["type"],
            "http"
        );
        assert!(doc["paths"]["/api/v1/openapi.json"]["get"].is_object());
    }
}
