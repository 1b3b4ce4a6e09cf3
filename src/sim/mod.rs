//! # The simulated city
//!
//! A deterministic generator of exactly what the city's devices put on the broker (see
//! `shared/contracts/devices.md`): traffic cameras, two vendors of air-quality stations and
//! pipe-pressure loggers, with their messiness (clock skew, late and duplicated uploads,
//! malformed payloads, devices missing from the register and registered devices that never
//! report), plus injected incidents whose ground truth is known.
//!
//! It serves three users: `citybrain simulate --out DIR` ([`write_city`]), `citybrain demo`
//! ([`SimOptions::endless`] with [`Simulation::next_until`] called forever), and the test suite
//! (a finite recording whose [`Truth`] lists each injected incident).
//!
//! Everything derives from one `u64` seed through `ChaCha8Rng` streams: the layout, the incident
//! plan, the malformed-message source and each device have their own stream, so the same seed
//! and options give byte-identical output whatever the chunking of `next_until` calls.
//!
//! Layout: `city` places devices and crews; `signals` is normal behaviour; `schedule` decides
//! when incidents happen, `scenario` where (the spacing rule), `signatures` what they do to
//! each device (`effects`) and their `truth`; `devices` turns a device tick into payloads
//! (`payload` encodes them); `engine` orders everything by arrival; `output` writes the files.

mod city;
mod devices;
mod effects;
mod engine;
mod output;
mod payload;
mod scenario;
mod schedule;
mod signals;
mod signatures;
mod truth;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_scenario;
#[cfg(test)]
mod validate;

use std::path::PathBuf;

use crate::model::EventTime;

pub use crate::ingest::recording::RawMessage;
pub use city::City;
pub use engine::Simulation;
pub use output::{write_city, SimSummary};
pub use truth::{FaultKind, InjectedKind, Truth, TruthIncident};

/// The messiness of the real devices, as rates. Negative or non-finite values count as zero.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseOptions {
    /// Malformed payloads (truncated JSON, wrong types, binary garbage) per hour, city-wide.
    pub malformed_per_hour: f64,
    /// Probability that a QoS-1 message is delivered twice (arrival +10–500 ms).
    pub duplicate_rate: f64,
    /// Probability that a logger upload arrives 60–180 s late.
    pub late_batch_rate: f64,
    /// Each device's clock is off by a fixed amount uniform in ± this many seconds.
    pub clock_skew_max_secs: f64,
    /// Low-confidence (0.15–0.45) camera events per camera per hour.
    pub low_conf_events_per_camera_hour: f64,
    /// Single samples 20–30 % low per logger per hour (one sample is not an incident).
    pub single_dips_per_logger_hour: f64,
}

impl Default for NoiseOptions {
    fn default() -> Self {
        NoiseOptions {
            malformed_per_hour: 6.0,
            duplicate_rate: 0.01,
            late_batch_rate: 0.03,
            clock_skew_max_secs: 90.0,
            low_conf_events_per_camera_hour: 0.5,
            single_dips_per_logger_hour: 0.3,
        }
    }
}

impl NoiseOptions {
    /// No noise at all: every message well-formed, on time, once.
    pub fn none() -> Self {
        NoiseOptions {
            malformed_per_hour: 0.0,
            duplicate_rate: 0.0,
            late_batch_rate: 0.0,
            clock_skew_max_secs: 0.0,
            low_conf_events_per_camera_hour: 0.0,
            single_dips_per_logger_hour: 0.0,
        }
    }
}

/// Endless mode: one incident of a rotating kind every `every_secs` of event time.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoSchedule {
    /// Nominal time between incident starts (a start is delayed while no placement is at least
    /// 3 km from the incidents it would overlap).
    pub every_secs: u64,
    /// How long each incident lasts.
    pub lasting_secs: u64,
    /// Incidents closer than 3 km need this much time between one's end and the next's start.
    pub min_gap_secs: u64,
}

impl Default for AutoSchedule {
    fn default() -> Self {
        AutoSchedule {
            every_secs: 240,
            lasting_secs: 600,
            min_gap_secs: 120,
        }
    }
}

/// Everything that shapes a simulation. Same options (seed included) → same bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Event time of the first message.
    pub start: EventTime,
    /// Length of the run; devices stop publishing at `start + duration_secs` (messages already
    /// sent may arrive later). Ignored when `auto_schedule` is set (the run is endless).
    pub duration_secs: u64,
    /// Registered, reporting traffic cameras (`TC-0001`…).
    pub cameras: usize,
    /// Registered, reporting vendor-A SenML stations (`AQ-0101`…).
    pub stations_a: usize,
    /// Registered, reporting vendor-B stations (`AQ-2201`…).
    pub stations_b: usize,
    /// Registered, reporting pressure loggers (`PG-0301`…).
    pub loggers: usize,
    /// Crews per department (water, traffic, environment).
    pub crews_per_department: usize,
    /// Incidents to inject, placed automatically after `warmup_secs`. Endless runs inject them
    /// in rotation, forever (empty: one of each kind).
    pub incidents: Vec<InjectedKind>,
    /// Endless mode: incidents scheduled automatically forever.
    pub auto_schedule: Option<AutoSchedule>,
    /// Normal data before the first injected incident (detectors need a baseline).
    pub warmup_secs: u64,
    /// The devices' messiness.
    pub noise: NoiseOptions,
    /// Cameras that publish but are missing from `devices.csv` (`TC-9901`…).
    pub unregistered_devices: usize,
    /// Devices listed in `devices.csv` that never publish (extra to the counts above).
    pub never_reporting_devices: usize,
}

impl SimOptions {
    /// The default city and a finite run injecting one incident of each kind (three device
    /// faults: silent, frozen, out-of-range). Six incidents fit in a 2 h run.
    pub fn default_with_seed(seed: u64, start: EventTime, duration_secs: u64) -> Self {
        SimOptions {
            seed,
            start,
            duration_secs,
            cameras: 24,
            stations_a: 6,
            stations_b: 4,
            loggers: 16,
            crews_per_department: 3,
            incidents: InjectedKind::one_of_each(),
            auto_schedule: None,
            warmup_secs: 20 * 60,
            noise: NoiseOptions::default(),
            unregistered_devices: 1,
            never_reporting_devices: 1,
        }
    }

    /// The default city running forever, with an incident of a rotating kind every ~4 minutes
    /// of event time, each lasting ~10 minutes (for `citybrain demo`).
    pub fn endless(seed: u64, start: EventTime) -> Self {
        SimOptions {
            duration_secs: u64::MAX,
            incidents: Vec::new(),
            auto_schedule: Some(AutoSchedule::default()),
            ..SimOptions::default_with_seed(seed, start, 0)
        }
    }

    /// Whether `next_until` can be called forever.
    pub fn is_endless(&self) -> bool {
        self.auto_schedule.is_some()
    }

    /// Event time (ms) when devices stop publishing; `i64::MAX` when endless.
    pub(crate) fn end_ms(&self) -> i64 {
        if self.is_endless() {
            return i64::MAX;
        }
        let dur_ms = i64::try_from(self.duration_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.start.millis().saturating_add(dur_ms)
    }
}

/// Errors of the simulator (only file output can fail).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A register could not be written as CSV.
    #[error("cannot write register {path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: csv::Error,
    },
    /// JSON serialization failed.
    #[error("cannot serialize {what}: {source}")]
    Json {
        /// What was being serialized.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
    /// The options cannot produce files (e.g. an endless run).
    #[error("invalid simulation options: {0}")]
    InvalidOptions(String),
}
