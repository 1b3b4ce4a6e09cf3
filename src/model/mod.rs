//! Plain data shared by every stage: readings, anomalies, incidents, devices and crews.
//!
//! Nothing here knows about MQTT, timely or tokio. Everything is serde so it can cross timely
//! worker boundaries and be written to recordings, NDJSON output and the API unchanged.

mod anomaly;
mod device;
mod incident;
mod reading;
mod time;

pub use anomaly::{Anomaly, Phase};
pub use device::{Crew, CrewAck, CrewAction, CrewState, CrewStatus, Department, Device, Location};
pub use incident::{Evidence, Incident, IncidentSnapshot, IncidentStatus, Severity};
pub use reading::{DeadLetter, Reading};
pub use time::EventTime;
