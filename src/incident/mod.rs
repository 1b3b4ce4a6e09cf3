//! Incidents as operators see them, and field devices as engineers see them.
//!
//! - [`IncidentStore`]: upserts the correlator's snapshots, enforces the operator lifecycle
//!   ([`lifecycle`]: open → acknowledged → dispatched → on_scene → resolved → closed, reopen,
//!   merge), keeps each incident's audit trail, broadcasts every change, and mirrors status
//!   counts into the `citybrain_incidents` gauge. Durable when opened on a state directory
//!   ([`persist`]: redb, every change committed before it is acknowledged).
//! - [`DeviceTable`]: per-device status (online, silent, faulty, unregistered, never-seen) from
//!   the register, readings and device-health anomalies.
//!
//! State behind short `parking_lot` locks; no tokio runtime needed (the broadcast channel works
//! without one). The only I/O is the durable store's commit.

mod devices;
#[cfg(test)]
mod devices_tests;
pub mod dispatch;
pub mod lifecycle;
pub mod persist;
mod store;
#[cfg(test)]
mod store_tests;

pub use devices::{DeviceStatus, DeviceStatusView, DeviceTable, RECENT_READINGS};
pub use lifecycle::{Action, LifecycleError, Transition, CORRELATOR_ACTOR};
pub use persist::StoreError;
pub use store::{IncidentFilter, IncidentStore, MergeOutcome};
