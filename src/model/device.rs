//! Registered devices and crews (from the city's asset registers) and crew messages.

use serde::{Deserialize, Serialize};

use super::EventTime;

/// A city department.
pub type Department = String;

/// WGS84 coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Location {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

impl Location {
    /// Great-circle distance in metres.
    pub fn distance_m(&self, other: &Location) -> f64 {
        use geo::{Distance, Haversine, Point};
        Haversine.distance(
            Point::new(self.lon, self.lat),
            Point::new(other.lon, other.lat),
        )
    }
}

/// One row of `devices.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Device id (`TC-0042`).
    pub device_id: String,
    /// Profile name (`traffic-camera`).
    pub profile: String,
    /// Where it is.
    pub location: Location,
    /// Owning department.
    pub department: Department,
    /// District name.
    pub district: String,
}

/// One row of `crews.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crew {
    /// Crew id (`W-07`).
    pub crew_id: String,
    /// Department it works for.
    pub department: Department,
    /// Home base.
    pub home: Location,
    /// Skills (`valve`, `excavation`).
    pub skills: Vec<String>,
}

/// Crew state as the tablet reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrewState {
    /// Free for a dispatch.
    Available,
    /// Driving to an incident.
    EnRoute,
    /// Working at an incident.
    OnScene,
    /// Not working.
    OffDuty,
}

/// A `city/crews/{id}/status` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrewStatus {
    /// Crew id.
    pub crew_id: String,
    /// Device time of the status.
    pub ts: EventTime,
    /// Current position.
    pub location: Location,
    /// Current state.
    pub state: CrewState,
}

/// What a crew answers to a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrewAction {
    /// Takes the job.
    Accept,
    /// Refuses the job.
    Decline,
    /// Arrived.
    OnScene,
    /// Job done.
    Resolved,
}

/// A `city/crews/{id}/ack` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrewAck {
    /// Crew id (from the topic).
    pub crew_id: String,
    /// Incident answered.
    pub incident_id: String,
    /// Device time of the answer.
    pub ts: EventTime,
    /// The answer.
    pub action: CrewAction,
}
