//! Ground truth of a run: which incidents were injected (kind, time, place, devices,
//! departments) and counts of what was delivered, serialized as `truth.json`.

use serde::{Deserialize, Serialize};

use crate::model::{EventTime, Location};

/// How a device fails in a `device_fault` incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Stops publishing (a logger or a station).
    Silent,
    /// A logger repeats exactly one `kpa_x10` value.
    Frozen,
    /// A station reports PM2.5 = 9999, or a logger `kpa_x10` = 0.
    OutOfRange,
}

/// The kinds of incident the simulator injects (the pipelines are tuned to these signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InjectedKind {
    /// A logger's pressure collapses; a camera nearby sees water on the road and slow traffic.
    WaterMainBurst,
    /// A camera sees an accident; traffic there nearly stops.
    TrafficAccident,
    /// Two or three stations 2–5 km apart see PM2.5 climb to 90–150 µg/m³.
    PollutionEpisode,
    /// One device fails.
    DeviceFault(FaultKind),
}

impl InjectedKind {
    /// The incident kind name (pipeline name) in the truth.
    pub fn name(self) -> &'static str {
        match self {
            InjectedKind::WaterMainBurst => "water_main_burst",
            InjectedKind::TrafficAccident => "traffic_accident",
            InjectedKind::PollutionEpisode => "pollution_episode",
            InjectedKind::DeviceFault(_) => "device_fault",
        }
    }

    /// One of each kind, the device fault in all three variants (also the endless rotation).
    pub fn one_of_each() -> Vec<InjectedKind> {
        vec![
            InjectedKind::WaterMainBurst,
            InjectedKind::TrafficAccident,
            InjectedKind::PollutionEpisode,
            InjectedKind::DeviceFault(FaultKind::Silent),
            InjectedKind::DeviceFault(FaultKind::Frozen),
            InjectedKind::DeviceFault(FaultKind::OutOfRange),
        ]
    }
}

/// One injected incident as the pipeline should report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthIncident {
    /// `water_main_burst`, `traffic_accident`, `pollution_episode` or `device_fault`.
    pub kind: String,
    /// For `device_fault`: how the device fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultKind>,
    /// True time of the first affected sample (device clocks may be skewed from it).
    pub start: EventTime,
    /// True time the devices are back to normal (a silent device: the end of the recording).
    pub end: EventTime,
    /// The logger (burst), camera (accident), failed device, or stations' centroid (pollution).
    pub location: Location,
    /// Devices whose data carry the signature.
    pub devices: Vec<String>,
    /// Departments concerned, sorted.
    pub departments: Vec<String>,
}

/// Ground truth of a run: injected incidents, and counts of what was delivered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Injected incidents by start (an endless run appends as it plans them).
    pub incidents: Vec<TruthIncident>,
    /// Malformed messages delivered.
    pub malformed: u64,
    /// Extra copies of QoS-1 messages delivered.
    pub duplicates: u64,
    /// All messages delivered (duplicates and malformed included).
    pub messages: u64,
    /// Devices that publish but are missing from `devices.csv`.
    pub unregistered: Vec<String>,
    /// Devices in `devices.csv` that never publish.
    pub never_reporting: Vec<String>,
}
