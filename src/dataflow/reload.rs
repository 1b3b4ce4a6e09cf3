//! Hot reload of pipelines and device profiles into a running dataflow.
//!
//! The app validates new definitions and [`ReloadHandle::publish`]es them; every operator on
//! every worker picks the new version up at a defined point in **event time**: the first tick it
//! processes at or after the watermark tick current when the reload was published. Detectors
//! whose signal definition did not change keep their state; changed or new ones start fresh;
//! the correlator keeps open incidents of kinds that still exist. An invalid file never gets
//! here: the old definitions keep running.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::config::pipeline::PipelineSet;
use crate::config::profile::ProfileSet;

/// One published set of definitions.
#[derive(Debug, Clone)]
pub struct Version {
    /// 0 for the definitions the dataflow started with, then 1, 2, ...
    pub number: u64,
    /// First tick (event-time second) the version applies to.
    pub effective_tick: u64,
    /// Signals and rules.
    pub pipelines: Arc<PipelineSet>,
    /// Device profiles.
    pub profiles: Arc<ProfileSet>,
}

#[derive(Debug)]
struct Shared {
    latest: RwLock<Arc<Version>>,
    /// The input's current watermark tick, kept by worker 0.
    watermark_tick: AtomicU64,
}

/// Shared between the app (publishes) and the operators (apply).
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    shared: Arc<Shared>,
}

impl ReloadHandle {
    /// A handle whose version 0 is the starting definitions.
    pub fn new(pipelines: Arc<PipelineSet>, profiles: Arc<ProfileSet>) -> ReloadHandle {
        let v = Version {
            number: 0,
            effective_tick: 0,
            pipelines,
            profiles,
        };
        ReloadHandle {
            shared: Arc::new(Shared {
                latest: RwLock::new(Arc::new(v)),
                watermark_tick: AtomicU64::new(0),
            }),
        }
    }

    /// Publishes new (already validated) definitions; returns their version number.
    pub fn publish(&self, pipelines: Arc<PipelineSet>, profiles: Arc<ProfileSet>) -> u64 {
        let mut latest = self.shared.latest.write();
        let number = latest.number + 1;
        let effective_tick = self.shared.watermark_tick.load(Ordering::Acquire);
        *latest = Arc::new(Version {
            number,
            effective_tick,
            pipelines,
            profiles,
        });
        number
    }

    /// The newest version.
    pub fn latest(&self) -> Arc<Version> {
        self.shared.latest.read().clone()
    }

    /// The newest version if it applies at `tick` and differs from `current`.
    pub(super) fn update_for(&self, current: u64, tick: u64) -> Option<Arc<Version>> {
        let latest = self.shared.latest.read();
        (latest.number != current && tick >= latest.effective_tick).then(|| latest.clone())
    }

    pub(super) fn set_watermark_tick(&self, tick: u64) {
        self.shared.watermark_tick.store(tick, Ordering::Release);
    }
}
