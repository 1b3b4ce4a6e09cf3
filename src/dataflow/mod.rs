//! The timely dataflow: the only module that imports timely.
//!
//! ```text
//!  worker 0 input loop ──(readings, timely time = event-time second)──► detect (exchange by
//!  InputGate: watermark,                                                device id, every worker)
//!  late/future/dup verdicts                                                      │ anomalies
//!                                                                                ▼
//!                                               correlate (exchange to worker 0) ──► Output
//! ```
//!
//! Timely time is event time in whole seconds ("ticks"). The input holds a capability at the
//! watermark's tick, so the frontier *is* the watermark. Each operator buffers what it receives
//! and, once the frontier passes a tick, processes that tick's records sorted by (event time,
//! device, ...) — so the order, and therefore every result, is fixed by the data alone, not by
//! arrival speed, batching or the number of workers. Operators hold a capability at the frontier
//! they last processed so a probe downstream means "processed", not merely "received".
//!
//! Correlation runs on worker 0 only: anomalies are few (orders of magnitude fewer than readings),
//! and one correlator sees every department's evidence without cross-cell bookkeeping.

mod bank;
mod gate;
mod operators;
mod reload;

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

pub use bank::{anomaly_order, reading_order, DetectorBank};
pub use gate::{DataflowConfig, InputGate, Verdict};
pub use reload::{ReloadHandle, Version};

use crate::config::pipeline::PipelineSet;
use crate::config::profile::ProfileSet;
use crate::config::registers::Registry;
use crate::model::{Anomaly, EventTime, IncidentSnapshot, Reading};

/// Event time per timely tick (ms).
pub const TICK_MS: i64 = 1000;

/// The timely tick of an event time (negative times clamp to 0).
pub fn tick_of(t: EventTime) -> u64 {
    (t.0.max(0) / TICK_MS) as u64
}

/// What the dataflow reads. Closing the channel ends the input: everything received is
/// processed (event time advances to just past the newest reading) and the dataflow stops.
#[derive(Debug, Clone)]
pub enum Input {
    /// Decoded readings in arrival order.
    Readings(Vec<Reading>),
}

/// What the dataflow produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A detector's anomaly (raised or cleared).
    Anomaly(Anomaly),
    /// An incident snapshot from the correlator.
    Incident(IncidentSnapshot),
    /// A reading the gate refused (late, future or duplicate).
    Rejected(Verdict, Reading),
    /// The watermark advanced (event time below it is final).
    Watermark(EventTime),
}

/// Everything the operators need, shared read-only by all workers.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// Signals and incident rules.
    pub pipelines: Arc<PipelineSet>,
    /// Device profiles (metric units, ranges, intervals).
    pub profiles: Arc<ProfileSet>,
    /// Asset register (device locations and owners).
    pub registry: Arc<Registry>,
    /// Incidents still open from before a restart (`IncidentStore::open_snapshots`); the
    /// correlator resumes them so new evidence does not open duplicates. Empty for a fresh start.
    pub open_incidents: Vec<IncidentSnapshot>,
}

/// Errors starting or running the dataflow.
#[derive(Debug, thiserror::Error)]
pub enum DataflowError {
    /// Invalid configuration.
    #[error("invalid dataflow config: {0}")]
    Config(String),
    /// Timely failed to start or a worker panicked.
    #[error("dataflow failed: {0}")]
    Timely(String),
}

/// Starts the dataflow on its own threads. Returns when input closes and all output is sent.
pub fn spawn(
    cfg: DataflowConfig,
    defs: Definitions,
    input: Receiver<Input>,
    output: Sender<Output>,
) -> Result<JoinHandle<Result<(), DataflowError>>, DataflowError> {
    let reloads = ReloadHandle::new(defs.pipelines.clone(), defs.profiles.clone());
    spawn_with_reloads(cfg, defs, reloads, input, output)
}

/// Like [`spawn`], with a handle through which new definitions can be hot-reloaded.
pub fn spawn_with_reloads(
    cfg: DataflowConfig,
    defs: Definitions,
    reloads: ReloadHandle,
    input: Receiver<Input>,
    output: Sender<Output>,
) -> Result<JoinHandle<Result<(), DataflowError>>, DataflowError> {
    let problems = cfg.validate();
    if !problems.is_empty() {
        let msg: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        return Err(DataflowError::Config(msg.join("; ")));
    }
    std::thread::Builder::new()
        .name("dataflow".into())
        .spawn(move || operators::run(cfg, defs, reloads, input, output))
        .map_err(|e| DataflowError::Timely(e.to_string()))
}

/// Runs the dataflow over `readings` to completion and returns everything it produced, in
/// the order produced. Used by `replay` over small inputs and by the tests.
pub fn run_to_end(
    cfg: DataflowConfig,
    defs: Definitions,
    readings: Vec<Vec<Reading>>,
) -> Result<Vec<Output>, DataflowError> {
    let (in_tx, in_rx) = crossbeam_channel::bounded(64);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let handle = spawn(cfg, defs, in_rx, out_tx)?;
    for batch in readings {
        if in_tx.send(Input::Readings(batch)).is_err() {
            break;
        }
    }
    drop(in_tx);
    let result = handle
        .join()
        .map_err(|_| DataflowError::Timely("dataflow thread panicked".into()))?;
    result?;
    Ok(out_rx.try_iter().collect())
}

#[cfg(test)]
mod tests;
