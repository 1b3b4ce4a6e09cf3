//! The dashboard API (axum): incidents, devices, Prometheus metrics and health.
//!
//! | route                               | auth                 |
//! |-------------------------------------|----------------------|
//! | `GET  /api/v1/incidents`            | any role             |
//! | `GET  /api/v1/incidents/{id}`       | any role             |
//! | `POST /api/v1/incidents/{id}/ack`   | operator, admin      |
//! | `POST /api/v1/incidents/{id}/resolve` | operator, admin    |
//! | `GET  /api/v1/devices`              | any role             |
//! | `GET  /metrics`, `GET /healthz`     | none                 |
//!
//! Every `/api` request needs `Authorization: Bearer <token>` (see [`Auth`]). Every failure is
//! an [`ApiError`]: JSON `{"error": "..."}`. Requests are counted in
//! `citybrain_api_requests_total` by route template, never by raw path (ids would make the label
//! set unbounded).

mod auth;
mod error;
mod handlers;
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
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use auth::{Auth, Permission, Principal, Role, TokenEntry};
pub use error::ApiError;

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
}

/// The complete router, with auth and request counting applied.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/incidents", get(handlers::list_incidents))
        .route("/api/v1/incidents/{id}", get(handlers::get_incident))
        .route("/api/v1/incidents/{id}/ack", post(handlers::ack_incident))
        .route(
            "/api/v1/incidents/{id}/resolve",
            post(handlers::resolve_incident),
        )
        .route("/api/v1/devices", get(handlers::list_devices))
        .route("/metrics", get(handlers::metrics))
        .route("/healthz", get(handlers::healthz))
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
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
