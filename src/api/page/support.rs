//! The routes the command-centre page needs besides the incident API: who am I
//! (`GET /api/v1/me`), where are the crews (`GET /api/v1/crews`), a device's recent readings for
//! the charts (`GET /api/v1/devices/{id}/readings`), and the page's own settings
//! (`GET /page/config.json`, no token: it holds nothing secret).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::api::auth::{Permission, Principal};
use crate::api::openapi::ErrorBody;
use crate::api::{ApiError, ApiState};
use crate::model::{Crew, CrewStatus, EventTime};

/// Latest status per crew id, read from wherever crew messages are decoded.
pub type CrewStatusFn = dyn Fn() -> BTreeMap<String, CrewStatus> + Send + Sync;

/// The registered crews plus their latest reported status; cheap to clone.
#[derive(Clone)]
pub struct CrewBoard {
    registered: Arc<Vec<Crew>>,
    status: Arc<CrewStatusFn>,
}

impl std::fmt::Debug for CrewBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrewBoard")
            .field("registered", &self.registered.len())
            .finish()
    }
}

/// One crew as `GET /api/v1/crews` and the stream's `crew` event show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrewView {
    /// Crew id.
    pub crew_id: String,
    /// Department it works for (null for a crew that reports but is not registered).
    pub department: Option<String>,
    /// Home base from the register.
    pub home: Option<crate::model::Location>,
    /// Skills from the register.
    pub skills: Vec<String>,
    /// Latest status message (null until the crew's tablet has reported).
    pub status: Option<CrewStatus>,
}

impl CrewBoard {
    /// A board over the crew register and a function returning the latest statuses.
    pub fn new(
        registered: Vec<Crew>,
        status: impl Fn() -> BTreeMap<String, CrewStatus> + Send + Sync + 'static,
    ) -> CrewBoard {
        CrewBoard {
            registered: Arc::new(registered),
            status: Arc::new(status),
        }
    }

    /// Every crew, registered or reporting, by id.
    pub fn list(&self) -> Vec<CrewView> {
        let mut status = (self.status)();
        let mut out: Vec<CrewView> = self
            .registered
            .iter()
            .map(|c| CrewView {
                crew_id: c.crew_id.clone(),
                department: Some(c.department.clone()),
                home: Some(c.home),
                skills: c.skills.clone(),
                status: status.remove(&c.crew_id),
            })
            .collect();
        // A tablet reporting under an id the register lacks is shown too: someone must fix it.
        out.extend(status.into_iter().map(|(id, s)| CrewView {
            crew_id: id,
            department: None,
            home: None,
            skills: Vec::new(),
            status: Some(s),
        }));
        out.sort_by(|a, b| a.crew_id.cmp(&b.crew_id));
        out
    }
}

/// `GET /api/v1/me` body.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Me {
    name: String,
    role: &'static str,
    /// May acknowledge, dispatch, resolve and silence (the page hides those buttons otherwise).
    can_operate: bool,
}

pub(in crate::api) async fn me(caller: Principal) -> Json<Me> {
    Json(Me {
        role: caller.role.as_str(),
        can_operate: caller.role.allows(Permission::Operate),
        name: caller.name,
    })
}

pub(in crate::api) async fn crews(
    State(state): State<ApiState>,
    caller: Principal,
) -> Result<Json<Vec<CrewView>>, ApiError> {
    caller.require(Permission::Read, "read crews")?;
    Ok(Json(
        state
            .crews
            .as_ref()
            .map(CrewBoard::list)
            .unwrap_or_default(),
    ))
}

/// `GET /page/config.json` body.
#[derive(Debug, Serialize)]
pub(in crate::api) struct PageConfig {
    /// `{z}/{x}/{y}` tile URL drawn under the map; null: the map is drawn from coordinates only.
    tile_url: Option<String>,
}

pub(in crate::api) async fn page_config(State(state): State<ApiState>) -> Json<PageConfig> {
    Json(PageConfig {
        tile_url: state.tile_url.clone(),
    })
}

/// One kept reading.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(in crate::api) struct ReadingPoint {
    /// Event time (device clock).
    ts: EventTime,
    /// Value in the metric's canonical unit.
    value: f64,
}

/// `GET /api/v1/devices/{id}/readings` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(in crate::api) struct RecentReadings {
    /// Device id.
    device_id: String,
    /// Per metric, the newest readings kept in memory (at most
    /// [`crate::incident::RECENT_READINGS`]), oldest first.
    metrics: BTreeMap<String, Vec<ReadingPoint>>,
}

/// The last readings of one device per metric, kept in memory for the page's charts (a small
/// bounded ring per device and metric, not a history: that is InfluxDB's job).
#[utoipa::path(
    get, path = "/api/v1/devices/{id}/readings", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses(
        (status = 200, description = "Recent readings per metric, oldest first", body = RecentReadings),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    ),
    security(("bearer" = ["viewer", "operator", "engineer", "admin"]))
)]
pub(in crate::api) async fn device_readings(
    State(state): State<ApiState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<RecentReadings>, ApiError> {
    caller.require(Permission::Read, "read devices")?;
    let metrics = state
        .devices
        .recent_readings(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no device with id {id:?}")))?;
    Ok(Json(RecentReadings {
        device_id: id,
        metrics: metrics
            .into_iter()
            .map(|(m, v)| {
                let points = v.into_iter().map(|(ts, value)| ReadingPoint { ts, value });
                (m, points.collect())
            })
            .collect(),
    }))
}
