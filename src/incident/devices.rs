//! The device status table: what the command centre shows about each field device.
//!
//! Built from the asset register, then fed every reading (last seen / last arrival) and every
//! device-health anomaly (`silence`, `flatline`, `out_of_range`). Devices that report but are not
//! in the register are kept too: they are the ones an engineer most needs to see.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::model::{Anomaly, Device, EventTime, Location, Phase, Reading};

/// Health of one device, in precedence order (the first that applies wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceStatus {
    /// Reports, but is not in the register.
    Unregistered,
    /// In the register, no reading yet.
    NeverSeen,
    /// The silence detector says it stopped reporting.
    Silent,
    /// A flatline or out-of-range detector holds for at least one metric.
    Faulty,
    /// Reporting and no fault.
    Online,
}

impl DeviceStatus {
    /// The name used in the API and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Unregistered => "unregistered",
            DeviceStatus::NeverSeen => "never-seen",
            DeviceStatus::Silent => "silent",
            DeviceStatus::Faulty => "faulty",
            DeviceStatus::Online => "online",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unregistered" => Some(DeviceStatus::Unregistered),
            "never-seen" => Some(DeviceStatus::NeverSeen),
            "silent" => Some(DeviceStatus::Silent),
            "faulty" => Some(DeviceStatus::Faulty),
            "online" => Some(DeviceStatus::Online),
            _ => None,
        }
    }
}

/// One row of the device list as the API serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceStatusView {
    /// Device id.
    pub device_id: String,
    /// Profile from the register, else the one that decoded its readings (null if neither).
    pub profile: Option<String>,
    /// Owning department (null if unregistered).
    pub department: Option<String>,
    /// District (null if unregistered).
    pub district: Option<String>,
    /// Where it is (null if unregistered).
    pub location: Option<Location>,
    /// Health.
    pub status: DeviceStatus,
    /// Latest reading's event time (device clock).
    pub last_seen: Option<EventTime>,
    /// When the latest-arriving reading reached us.
    pub last_arrival: Option<EventTime>,
    /// Active faults as `detector:metric` (e.g. `flatline:pressure_kpa`), sorted.
    pub faults: Vec<String>,
}

/// Detectors whose raised/cleared anomalies toggle a device fault.
const FAULT_DETECTORS: [&str; 2] = ["flatline", "out_of_range"];
/// Detector whose raised/cleared anomalies toggle "silent".
const SILENCE_DETECTOR: &str = "silence";

#[derive(Debug, Default)]
struct State {
    registered: Option<Device>,
    /// Profile seen on readings (used when the device is not registered).
    seen_profile: Option<String>,
    last_seen: Option<EventTime>,
    last_arrival: Option<EventTime>,
    silent: bool,
    faults: BTreeSet<String>,
    /// The newest readings per metric, oldest first, for the page's charts (see
    /// [`RECENT_READINGS`]).
    recent: BTreeMap<String, VecDeque<(EventTime, f64)>>,
}

/// Readings kept per device and metric for `GET /api/v1/devices/{id}/readings`: 10 minutes at
/// a 5 s interval, an hour at 30 s. About 2 KB per series: a bounded cost per device, not a
/// history (that is InfluxDB's job).
pub const RECENT_READINGS: usize = 120;

impl State {
    fn status(&self) -> DeviceStatus {
        if self.registered.is_none() {
            DeviceStatus::Unregistered
        } else if self.last_seen.is_none() {
            DeviceStatus::NeverSeen
        } else if self.silent {
            DeviceStatus::Silent
        } else if !self.faults.is_empty() {
            DeviceStatus::Faulty
        } else {
            DeviceStatus::Online
        }
    }

    fn view(&self, device_id: &str) -> DeviceStatusView {
        let reg = self.registered.as_ref();
        DeviceStatusView {
            device_id: device_id.to_string(),
            profile: reg
                .map(|d| d.profile.clone())
                .or_else(|| self.seen_profile.clone()),
            department: reg.map(|d| d.department.clone()),
            district: reg.map(|d| d.district.clone()),
            location: reg.map(|d| d.location),
            status: self.status(),
            last_seen: self.last_seen,
            last_arrival: self.last_arrival,
            faults: self.faults.iter().cloned().collect(),
        }
    }
}

/// How many status changes a slow subscriber may lag before it starts losing the oldest.
const CHANGES_CAPACITY: usize = 1024;

/// Status of every known device; cheap to share as `Arc<DeviceTable>`.
#[derive(Debug)]
pub struct DeviceTable {
    devices: Mutex<HashMap<String, State>>,
    /// Status/fault changes only (not every reading: last-seen moves on every message).
    changes: broadcast::Sender<DeviceStatusView>,
}

impl Default for DeviceTable {
    fn default() -> Self {
        DeviceTable::new(Vec::new())
    }
}

impl DeviceTable {
    /// A table holding the registered devices, all `never-seen`. A duplicate id keeps the last row
    /// (config validation reports duplicates before we get here).
    pub fn new(registered: Vec<Device>) -> Self {
        let devices = registered
            .into_iter()
            .map(|d| {
                (
                    d.device_id.clone(),
                    State {
                        registered: Some(d),
                        ..State::default()
                    },
                )
            })
            .collect();
        DeviceTable {
            devices: Mutex::new(devices),
            changes: broadcast::channel(CHANGES_CAPACITY).0,
        }
    }

    /// Every change of a device's status or fault set from now on (the live stream's device
    /// feed). Sent under the table's lock, so changes arrive in the order they were applied.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceStatusView> {
        self.changes.subscribe()
    }

    /// Broadcasts `state` if its status or faults differ from `before`; nobody listening is fine.
    fn announce(&self, device_id: &str, state: &State, before: (DeviceStatus, usize)) {
        if (state.status(), state.faults.len()) != before {
            let _ = self.changes.send(state.view(device_id));
        }
    }

    /// A reading arrived. Times only move forward, so out-of-order readings don't make a device
    /// look older than it is.
    pub fn observe_reading(
        &self,
        device_id: &str,
        profile: &str,
        ts: EventTime,
        arrival: EventTime,
    ) {
        let mut devices = self.devices.lock();
        let state = devices.entry(device_id.to_string()).or_default();
        let before = (state.status(), state.faults.len());
        if state.seen_profile.as_deref() != Some(profile) {
            state.seen_profile = Some(profile.to_string());
        }
        state.last_seen = Some(state.last_seen.map_or(ts, |t| t.max(ts)));
        state.last_arrival = Some(state.last_arrival.map_or(arrival, |t| t.max(arrival)));
        self.announce(device_id, state, before);
    }

    /// A detector raised or cleared a device-health condition; other detectors are ignored.
    pub fn observe_anomaly(&self, anomaly: &Anomaly) {
        let raised = anomaly.phase == Phase::Raised;
        let detector = anomaly.detector.as_str();
        let is_fault = FAULT_DETECTORS.contains(&detector);
        if detector != SILENCE_DETECTOR && !is_fault {
            return;
        }
        let mut devices = self.devices.lock();
        let state = devices.entry(anomaly.device_id.clone()).or_default();
        let before = (state.status(), state.faults.len());
        if !is_fault {
            state.silent = raised;
        } else {
            let fault = format!("{}:{}", anomaly.detector, anomaly.metric);
            if raised {
                state.faults.insert(fault);
            } else {
                state.faults.remove(&fault);
            }
        }
        self.announce(&anomaly.device_id, state, before);
    }

    /// Every device, by id.
    pub fn list(&self) -> Vec<DeviceStatusView> {
        let mut out: Vec<DeviceStatusView> = self
            .devices
            .lock()
            .iter()
            .map(|(id, s)| s.view(id))
            .collect();
        out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        out
    }

    /// Keeps the values for the charts (every decoded reading, before the dataflow's
    /// late/duplicate filtering: a chart shows what the device sent).
    pub fn record_readings(&self, readings: &[Reading]) {
        let mut devices = self.devices.lock();
        for r in readings {
            // Look up before inserting: this runs for every reading, and a known key then
            // costs no allocation.
            if !devices.contains_key(&r.device_id) {
                devices.insert(r.device_id.clone(), State::default());
            }
            let Some(state) = devices.get_mut(&r.device_id) else {
                continue;
            };
            if !state.recent.contains_key(&r.metric) {
                state.recent.insert(r.metric.clone(), VecDeque::new());
            }
            let Some(series) = state.recent.get_mut(&r.metric) else {
                continue;
            };
            // Mostly in order; a late one goes to its place, a repeated time replaces.
            let at = series.partition_point(|(t, _)| *t < r.ts);
            match series.get_mut(at) {
                Some(slot) if slot.0 == r.ts => slot.1 = r.value,
                _ => series.insert(at, (r.ts, r.value)),
            }
            if series.len() > RECENT_READINGS {
                series.pop_front();
            }
        }
    }

    /// The kept readings of one device, per metric, oldest first (`None`: unknown device).
    pub fn recent_readings(
        &self,
        device_id: &str,
    ) -> Option<BTreeMap<String, Vec<(EventTime, f64)>>> {
        self.devices.lock().get(device_id).map(|s| {
            s.recent
                .iter()
                .map(|(m, v)| (m.clone(), v.iter().copied().collect()))
                .collect()
        })
    }

    /// One device.
    pub fn get(&self, device_id: &str) -> Option<DeviceStatusView> {
        self.devices
            .lock()
            .get(device_id)
            .map(|s| s.view(device_id))
    }
}
