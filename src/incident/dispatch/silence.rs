//! Silences (maintenance windows): per device, per area (circle or polygon) and per incident
//! kind, each with an expiry, set by operators through the API.
//!
//! Chosen semantics: silences never drop data. The incident is still created and kept in the
//! store with all its evidence; while an active silence covers **every** piece of its evidence,
//! it is recorded in the suppressed list (`GET /api/v1/silences/suppressed`) and is neither
//! dispatched automatically nor pushed to webhooks. One piece of evidence from outside the
//! silence (a camera seeing water next to a logger under maintenance) lifts the suppression.
//! Expiry is wall-clock time (operators set windows in wall-clock time), read from the
//! dispatcher's injected clock.

use std::collections::{BTreeMap, HashMap};

use geo::{Contains, Coord, LineString, Point, Polygon};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::model::{EventTime, Incident, Location};

/// Longest silence an operator may set, in seconds (30 days): a forgotten silence must end.
const MAX_SILENCE_SECS: u64 = 30 * 24 * 3600;

/// Most vertices in a silence polygon.
const MAX_POLYGON_POINTS: usize = 1_000;

/// Why a silence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// The request is invalid; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No silence has this id.
    #[error("no silence with id {0:?}")]
    NotFound(String),
}

/// An area: a circle or a polygon (WGS84).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum Area {
    /// Everything within `radius_m` of `center`.
    Circle {
        /// Centre.
        center: Location,
        /// Radius in metres.
        radius_m: f64,
    },
    /// Everything inside the polygon (at least 3 points; closing it is optional).
    Polygon {
        /// Vertices.
        polygon: Vec<Location>,
    },
}

impl Area {
    fn contains(&self, at: &Location) -> bool {
        match self {
            Area::Circle { center, radius_m } => center.distance_m(at) <= *radius_m,
            Area::Polygon { polygon } => {
                let ring: Vec<Coord> = polygon
                    .iter()
                    .map(|p| Coord { x: p.lon, y: p.lat })
                    .collect();
                Polygon::new(LineString::from(ring), Vec::new())
                    .contains(&Point::new(at.lon, at.lat))
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        let valid = |l: &Location| {
            l.lat.is_finite() && l.lon.is_finite() && l.lat.abs() <= 90.0 && l.lon.abs() <= 180.0
        };
        match self {
            Area::Circle { center, radius_m } => {
                if !valid(center) {
                    return Err("area.center: not a WGS84 coordinate".into());
                }
                if !(radius_m.is_finite() && *radius_m > 0.0 && *radius_m <= 100_000.0) {
                    return Err(format!("area.radius_m: {radius_m} is not in (0, 100000]"));
                }
            }
            Area::Polygon { polygon } => {
                if !(3..=MAX_POLYGON_POINTS).contains(&polygon.len()) {
                    return Err(format!(
                        "area.polygon: {} points; needs 3 to {MAX_POLYGON_POINTS}",
                        polygon.len()
                    ));
                }
                if let Some(i) = polygon.iter().position(|p| !valid(p)) {
                    return Err(format!("area.polygon[{i}]: not a WGS84 coordinate"));
                }
            }
        }
        Ok(())
    }
}

/// What an operator posts (`POST /api/v1/silences`). At least one of `device_id`, `kind`,
/// `area`; all given must match. Exactly one of `expires_at`, `duration_secs`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    /// Only evidence from this device.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Only incidents of this kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only evidence from devices in this area.
    #[serde(default)]
    pub area: Option<Area>,
    /// End of the window (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<EventTime>,
    /// Length of the window from now, in seconds.
    #[serde(default)]
    pub duration_secs: Option<u64>,
    /// Why (`valve replacement on Hefang St`).
    #[serde(default)]
    pub reason: Option<String>,
}

/// An active (or expired) silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Silence {
    /// Id (`S-1`).
    pub id: String,
    /// Device matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Kind matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Area matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<Area>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Token name of the operator who set it.
    pub created_by: String,
    /// When it was set.
    pub created_at: EventTime,
    /// When it ends.
    pub expires_at: EventTime,
}

impl Silence {
    fn covers(&self, kind: &str, device: &str, at: &Location) -> bool {
        self.device_id.as_ref().is_none_or(|d| d == device)
            && self.kind.as_ref().is_none_or(|k| k == kind)
            && self.area.as_ref().is_none_or(|a| a.contains(at))
    }
}

/// An incident held back by silences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Suppression {
    /// Incident.
    pub incident_id: String,
    /// Kind.
    pub kind: String,
    /// Silences covering its evidence when last evaluated.
    pub silences: Vec<String>,
    /// First time it was found suppressed.
    pub since: EventTime,
    /// Set when new evidence or an expiry lifted the suppression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<EventTime>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    silences: BTreeMap<u64, Silence>,
    suppressed: BTreeMap<String, Suppression>,
}

/// Silences and the suppressed list; cheap to share as `Arc<SilenceTable>`.
#[derive(Debug, Default)]
pub struct SilenceTable {
    /// Registered device positions, for area silences (unregistered devices are placed at
    /// the incident's location).
    devices: HashMap<String, Location>,
    inner: Mutex<Inner>,
}

impl SilenceTable {
    /// A table placing evidence with the registered device positions.
    pub fn new(devices: HashMap<String, Location>) -> SilenceTable {
        SilenceTable {
            devices,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Validates and adds a silence.
    pub fn add(
        &self,
        spec: SilenceSpec,
        actor: &str,
        now: EventTime,
    ) -> Result<Silence, SilenceError> {
        let invalid = |m: String| Err(SilenceError::Invalid(m));
        if spec.device_id.is_none() && spec.kind.is_none() && spec.area.is_none() {
            return invalid("give at least one of device_id, kind, area".into());
        }
        if let Some(area) = &spec.area {
            area.validate().map_err(SilenceError::Invalid)?;
        }
        let expires_at = match (spec.expires_at, spec.duration_secs) {
            (Some(t), None) => t,
            (None, Some(s)) if (1..=MAX_SILENCE_SECS).contains(&s) => now.plus_secs(s as f64),
            (None, Some(s)) => {
                return invalid(format!(
                    "duration_secs: {s} is not in 1..={MAX_SILENCE_SECS}"
                ))
            }
            _ => return invalid("give exactly one of expires_at, duration_secs".into()),
        };
        if expires_at <= now || expires_at > now.plus_secs(MAX_SILENCE_SECS as f64) {
            return invalid(format!(
                "expires_at: {expires_at} is not within 30 days after now ({now})"
            ));
        }
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let silence = Silence {
            id: format!("S-{}", inner.next_id),
            device_id: spec.device_id,
            kind: spec.kind,
            area: spec.area,
            reason: spec.reason.map(|r| r.chars().take(500).collect()),
            created_by: actor.to_string(),
            created_at: now,
            expires_at,
        };
        let key = inner.next_id;
        inner.silences.insert(key, silence.clone());
        Ok(silence)
    }

    /// Silences, oldest first; expired ones only with `include_expired`.
    pub fn list(&self, now: EventTime, include_expired: bool) -> Vec<Silence> {
        let inner = self.inner.lock();
        inner
            .silences
            .values()
            .filter(|s| include_expired || s.expires_at > now)
            .cloned()
            .collect()
    }

    /// Ends a silence now (it is removed).
    pub fn remove(&self, id: &str) -> Result<Silence, SilenceError> {
        let mut inner = self.inner.lock();
        let key = inner
            .silences
            .iter()
            .find(|(_, s)| s.id == id)
            .map(|(k, _)| *k)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        inner
            .silences
            .remove(&key)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))
    }

    /// Whether active silences cover every piece of the incident's evidence (an incident
    /// without evidence is judged at its own location). Updates the suppressed list.
    pub fn evaluate(&self, incident: &Incident, now: EventTime) -> bool {
        let mut inner = self.inner.lock();
        let active: Vec<&Silence> = inner
            .silences
            .values()
            .filter(|s| s.expires_at > now)
            .collect();
        let mut used: Vec<String> = Vec::new();
        let mut cover = |device: &str| {
            let at = self.devices.get(device).unwrap_or(&incident.location);
            match active.iter().find(|s| s.covers(&incident.kind, device, at)) {
                Some(s) => {
                    if !used.contains(&s.id) {
                        used.push(s.id.clone());
                    }
                    true
                }
                None => false,
            }
        };
        let suppressed = !active.is_empty()
            && if incident.evidence.is_empty() {
                cover("")
            } else {
                incident.evidence.iter().all(|e| cover(&e.device_id))
            };
        used.sort();
        match inner.suppressed.get_mut(&incident.id) {
            Some(s) if suppressed => {
                s.silences = used;
                s.lifted_at = None;
            }
            Some(s) if s.lifted_at.is_none() => s.lifted_at = Some(now),
            Some(_) => {}
            None if suppressed => {
                inner.suppressed.insert(
                    incident.id.clone(),
                    Suppression {
                        incident_id: incident.id.clone(),
                        kind: incident.kind.clone(),
                        silences: used,
                        since: now,
                        lifted_at: None,
                    },
                );
            }
            None => {}
        }
        suppressed
    }

    /// Incidents that are (or were) suppressed, by id.
    pub fn suppressed(&self) -> Vec<Suppression> {
        self.inner.lock().suppressed.values().cloned().collect()
    }

    /// Whether the incident is suppressed now (as last evaluated).
    pub fn is_suppressed(&self, incident_id: &str) -> bool {
        self.inner
            .lock()
            .suppressed
            .get(incident_id)
            .is_some_and(|s| s.lifted_at.is_none())
    }
}
