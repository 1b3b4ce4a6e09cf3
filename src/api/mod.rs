//! The dashboard API (axum): incidents and their lifecycle, devices, tokens, the live stream
//! and page, Prometheus metrics and health.
//!
//! Every route is registered in [`routes`] together with its OpenAPI description, served at
//! `GET /api/v1/openapi.json` ([`openapi`]); the roles each route admits are the `bearer`
//! scopes of its description, listed in `docs/api.md`:
//!
//! | route                                              | roles                          |
//! |----------------------------------------------------|--------------------------------|
//! | `GET  /api/v1/incidents`, `/{id}`, `/{id}/history` | viewer, operator, engineer, admin |
//! | `POST /api/v1/incidents/{id}/{ack,on_scene,resolve,close,reopen,merge}` | operator, admin |
//! | `GET  /api/v1/devices`                             | viewer, operator, engineer, admin |
//! | dispatches, escalations, silences ([`dispatch`])   | see that module                |
//! | `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{name}` | admin                   |
//! | `GET  /api/v1/openapi.json`                        | every role                     |
//! | `GET  /metrics`, `GET /healthz`                    | none                           |
//!
//! Every `/api` request needs `Authorization: Bearer <token>` (see [`Auth`]). Every failure is
//! an [`ApiError`]: JSON `{"error": "..."}`. Requests are counted in
//! `citybrain_api_requests_total` by route template, never by raw path (ids would make the label
//! set unbounded).

mod auth;
mod dispatch;
mod error;
mod handlers;
pub mod openapi;
mod page;
pub mod pipelines;
mod stream;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{
    read_tokens_file, Auth, Permission, Principal, Role, TokenEntry, TokenFileError, TokensFile,
    RELOAD_INTERVAL as TOKENS_RELOAD_INTERVAL,
};
pub use error::ApiError;
pub use page::{CrewBoard, CrewStatusFn, CrewView};
pub use stream::{StreamHub, RING_CAPACITY, STREAM_PATH};

use crate::incident::{DeviceTable, IncidentStore};
use crate::telemetry::Metrics;

/// Route label for requests that matched no route.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Shared state of every handler; clones are cheap (four `Arc`s).
#[derive(Clone, Debug)]
pub struct ApiState {
    /// Incidents.
    pub store: Arc<IncidentStore>,
    /// Device status table.
    pub devices: Arc<DeviceTable>,
    /// Metrics served on `/metrics` and updated per request.
    pub metrics: Arc<Metrics>,
    /// Configured bearer tokens.
    pub auth: Arc<Auth>,
    /// Registered crews and their latest status (`GET /api/v1/crews`, the stream, the map).
    pub crews: Option<CrewBoard>,
    /// `api.tile_url`: map tiles drawn under the page's map (none: coordinates only).
    pub tile_url: Option<String>,
    /// Crew dispatch and silences (`/api/v1/dispatches`, `/api/v1/silences`, ...); `None`:
    /// those routes answer 404.
    pub dispatch: Option<crate::sink::dispatch::DispatchHandle>,
    /// The running pipelines and profiles (`/api/v1/pipelines`, hot reload by engineers).
    pub definitions: pipelines::DefinitionsSlot,
}

/// Every route with its OpenAPI description, registered together so the served routes and
/// the document cannot diverge. Add a route as `.routes(routes!(handler))` on a handler with a
/// `#[utoipa::path(..., security(("bearer" = ["role", ...])))]` attribute (`security(())` for a
/// public one); `tests/api_roles.rs` fails for a route that is served but not described.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_incidents))
        .routes(routes!(handlers::get_incident))
        .routes(routes!(handlers::incident_history))
        .routes(routes!(handlers::lifecycle::ack_incident))
        .routes(routes!(handlers::lifecycle::on_scene_incident))
        .routes(routes!(handlers::lifecycle::resolve_incident))
        .routes(routes!(handlers::lifecycle::close_incident))
        .routes(routes!(handlers::lifecycle::reopen_incident))
        .routes(routes!(handlers::lifecycle::merge_incident))
        .routes(routes!(handlers::list_devices))
        .routes(routes!(pipelines::get_pipelines))
        .routes(routes!(pipelines::reload_pipelines))
        .routes(routes!(dispatch::list_dispatches))
        .routes(routes!(dispatch::ack_dispatch))
        .routes(routes!(dispatch::dispatch_incident))
        .routes(routes!(dispatch::incident_dispatches))
        .routes(routes!(dispatch::list_escalations))
        .routes(routes!(dispatch::list_silences, dispatch::create_silence))
        .routes(routes!(dispatch::delete_silence))
        .routes(routes!(dispatch::list_suppressed))
        .routes(routes!(
            auth::routes::list_tokens,
            auth::routes::create_token
        ))
        .routes(routes!(auth::routes::revoke_token))
        .routes(routes!(openapi::openapi_json))
        .route(STREAM_PATH, get(stream::stream))
        .merge(page::routes())
        .routes(routes!(handlers::metrics))
        .routes(routes!(handlers::healthz))
}

/// The complete router, with auth and request counting applied.
pub fn router(state: ApiState) -> Router {
    Router::from(routes())
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        // Router::layer wraps each route (after matching), so both layers see MatchedPath; the
        // one added last runs first, so 401s are counted too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "api listening");
    }
    // The stream's responses never end by themselves: close them as shutdown starts, or the
    // graceful shutdown would wait for every connected page forever.
    let hub = StreamHub::start(&state);
    let app = router(state)
        .layer(axum::Extension(hub.clone()))
        .layer(middleware::from_fn(stream::query_token));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            hub.close();
        })
        .await
}

/// Counts each request by route template and status code.
async fn count_requests(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    metrics
        .api_requests_total
        .inc([route.as_str(), response.status().as_str()]);
    response
}
