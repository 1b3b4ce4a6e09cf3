//! Incidents as operators see them, and field devices as engineers see them.
//!
//! - [`IncidentStore`]: upserts the correlator's snapshots, enforces the operator lifecycle
//!   (open → acknowledged → dispatched → resolved), keeps each incident's history, broadcasts
//!   every change, and mirrors status counts into the `citybrain_incidents` gauge.
//! - [`DeviceTable`]: per-device status (online, silent, faulty, unregistered, never-seen) from
//!   the register, readings and device-health anomalies.
//!
//! Pure state behind short `parking_lot` locks; no I/O, no tokio runtime needed (the broadcast
//! channel works without one).

mod devices;
#[cfg(test)]
mod devices_tests;
mod store;
#[cfg(test)]
mod store_tests;

pub use devices::{DeviceStatus, DeviceStatusView, DeviceTable};
pub use store::{IncidentFilter, IncidentStore, Transition, CORRELATOR_ACTOR};

use crate::model::IncidentStatus;

/// Why a lifecycle operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// No incident has this id.
    #[error("no incident with id {id:?}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The incident's current status does not allow this change.
    #[error("cannot move an incident from {} to {}", .from.as_str(), .to.as_str())]
    InvalidTransition {
        /// Current status.
        from: IncidentStatus,
        /// Requested status.
        to: IncidentStatus,
    },
}
