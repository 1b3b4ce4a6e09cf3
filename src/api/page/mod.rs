//! The command-centre page: one screen with the city map, the live incident list, the incident
//! panel and the operator's actions, served at `GET /`.
//!
//! Every asset is compiled into the binary (`include_str!`): no build step, no CDN, nothing
//! fetched from the internet, so the page works on an isolated control-room network. The static
//! assets need no token (they hold no data); the page asks for a token, keeps it in
//! `sessionStorage`, and sends it on every API call. The map is drawn on a `<canvas>` from the
//! devices' coordinates; tiles are drawn underneath only when `api.tile_url` is configured.
//!
//! Also here, because only the page needs them: `GET /api/v1/me`, `GET /api/v1/crews` and
//! `GET /page/config.json` (see [`support`]).

mod support;

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use support::{CrewBoard, CrewStatusFn, CrewView};

use super::{ApiError, ApiState};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Everything under `/page/`. JS modules are split by concern (see each file's header comment).
const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("style.css"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_str!("app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_str!("api.js"),
    },
    Asset {
        name: "live.js",
        content_type: JS,
        body: include_str!("live.js"),
    },
    Asset {
        name: "map.js",
        content_type: JS,
        body: include_str!("map.js"),
    },
    Asset {
        name: "list.js",
        content_type: JS,
        body: include_str!("list.js"),
    },
    Asset {
        name: "panel.js",
        content_type: JS,
        body: include_str!("panel.js"),
    },
    Asset {
        name: "charts.js",
        content_type: JS,
        body: include_str!("charts.js"),
    },
    Asset {
        name: "format.js",
        content_type: JS,
        body: include_str!("format.js"),
    },
];

const INDEX: &str = include_str!("index.html");

/// Only our own scripts and styles; images (map tiles) from anywhere the operator configured;
/// API calls and the stream to this origin only.
const CSP: &str = "default-src 'self'; img-src * data:; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The page's routes (merged into the API router, so requests are counted like the others).
/// The readings route carries its own OpenAPI description; the others are described in
/// `openapi.rs` (`external`).
pub(super) fn routes() -> OpenApiRouter<ApiState> {
    let described = OpenApiRouter::new().routes(routes!(support::device_readings));
    let plain = Router::new()
        .route("/", get(index))
        .route("/page/config.json", get(support::page_config))
        .route("/page/{name}", get(asset))
        .route("/api/v1/me", get(support::me))
        .route("/api/v1/crews", get(support::crews));
    described.merge(plain.into())
}

fn respond(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidate every load: an upgraded server must not run with yesterday's script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| respond(a.content_type, a.body))
        .ok_or_else(|| ApiError::NotFound(format!("no page asset {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_served() {
        // A missing asset would only show as a blank page in a browser: check imports here.
        let served: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .split("\"./")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("{}: unparsable import {line:?}", a.name));
                assert!(served.contains(&target), "{} imports {target}", a.name);
            }
        }
        for needed in ["style.css", "app.js"] {
            assert!(
                INDEX.contains(&format!("/page/{needed}")),
                "index loads {needed}"
            );
        }
    }
}
