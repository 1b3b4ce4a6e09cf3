//! The engine shared by `run`, `demo` and `replay`: decode → dataflow → incident store, device
//! table, metrics and dead letters. Sources (MQTT, a recording) push raw messages into it.

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};
use crossbeam_channel::{Receiver, Sender};

use crate::config::pipeline::PipelineSet;
use crate::config::profile::ProfileSet;
use crate::dataflow::{self, DataflowConfig, Definitions, Input, Output, Verdict};
use crate::incident::{DeviceTable, IncidentStore};
use crate::ingest::decode::decode;
use crate::ingest::recording::RawMessage;
use crate::model::{CrewStatus, DeadLetter, EventTime, Phase};
use crate::sink::influx::InfluxSink;
use crate::sink::DeadLetterLog;
use crate::telemetry::{wall_now, Metrics, PipelineLatency};

/// Batches in flight between decoding and the dataflow: bounded, so a slow dataflow slows the
/// source (and, live, the broker) instead of growing memory.
const INPUT_QUEUE: usize = 256;

/// Crew messages seen (dispatch acts on them).
#[derive(Debug, Default)]
pub struct CrewFeed {
    /// Latest status per crew.
    pub status: parking_lot::Mutex<std::collections::BTreeMap<String, CrewStatus>>,
    /// The dispatcher, which takes every status and answer in arrival order (set once by the
    /// live pipeline; without it, as in replay, answers are not kept).
    pub inbox: std::sync::OnceLock<crate::sink::dispatch::CrewInbox>,
}

/// A running pipeline.
pub struct Engine {
    /// Incidents and their lifecycle.
    pub store: Arc<IncidentStore>,
    /// Device status.
    pub devices: Arc<DeviceTable>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Dead letters.
    pub dead_letters: Arc<DeadLetterLog>,
    /// Crew status and answers.
    pub crews: Arc<CrewFeed>,
    /// Decode profiles and the dataflow's definitions, swapped together on hot reload.
    reloader: Reloader,
    influx: Option<InfluxSink>,
    input: Option<Sender<Input>>,
    dataflow: Option<JoinHandle<Result<(), dataflow::DataflowError>>>,
    applier: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the dataflow and the thread that applies its output.
    pub fn start(
        cfg: DataflowConfig,
        defs: Definitions,
        metrics: Arc<Metrics>,
        dead_letters: Arc<DeadLetterLog>,
    ) -> anyhow::Result<Engine> {
        Self::start_with(cfg, defs, metrics, dead_letters, None)
    }

    /// Like [`Engine::start`], also writing every anomaly as NDJSON to `anomalies` (for
    /// engineers: "why did this fire", "what did the detectors see").
    pub fn start_with(
        cfg: DataflowConfig,
        defs: Definitions,
        metrics: Arc<Metrics>,
        dead_letters: Arc<DeadLetterLog>,
        anomalies: Option<Box<dyn std::io::Write + Send>>,
    ) -> anyhow::Result<Engine> {
        Self::start_full(cfg, defs, metrics, dead_letters, anomalies, None)
    }

    /// Like [`Engine::start_with`], also handing readings, anomalies and incident changes to
    /// the InfluxDB sink (a `try_send`: the pipeline never waits for InfluxDB).
    pub fn start_full(
        cfg: DataflowConfig,
        defs: Definitions,
        metrics: Arc<Metrics>,
        dead_letters: Arc<DeadLetterLog>,
        anomalies: Option<Box<dyn std::io::Write + Send>>,
        influx: Option<InfluxSink>,
    ) -> anyhow::Result<Engine> {
        let store = Arc::new(IncidentStore::new(Some(metrics.clone())));
        Self::start_with_store(cfg, defs, metrics, dead_letters, anomalies, influx, store)
    }

    /// Like [`Engine::start_full`], feeding an existing (e.g. durable, reloaded) incident store.
    /// Seed `defs.open_incidents` from `store.open_snapshots()` so the correlator resumes them.
    pub fn start_with_store(
        cfg: DataflowConfig,
        defs: Definitions,
        metrics: Arc<Metrics>,
        dead_letters: Arc<DeadLetterLog>,
        anomalies: Option<Box<dyn std::io::Write + Send>>,
        influx: Option<InfluxSink>,
        store: Arc<IncidentStore>,
    ) -> anyhow::Result<Engine> {
        let devices = Arc::new(DeviceTable::new(
            defs.registry.devices.values().cloned().collect(),
        ));
        let profiles = defs.profiles.clone();
        let reloads = dataflow::ReloadHandle::new(defs.pipelines.clone(), defs.profiles.clone());
        let (in_tx, in_rx) = crossbeam_channel::bounded(INPUT_QUEUE);
        let (out_tx, out_rx) = crossbeam_channel::unbounded();
        let dataflow = dataflow::spawn_with_reloads(cfg, defs, reloads.clone(), in_rx, out_tx)
            .context("starting the dataflow")?;
        let applier = {
            let (store, devices, metrics, dl, influx) = (
                store.clone(),
                devices.clone(),
                metrics.clone(),
                dead_letters.clone(),
                influx.clone(),
            );
            std::thread::Builder::new()
                .name("apply".into())
                .spawn(move || {
                    let influx = influx.as_ref();
                    apply_outputs(out_rx, &store, &devices, &metrics, &dl, influx, anomalies)
                })
                .context("starting the output thread")?
        };
        Ok(Engine {
            store,
            devices,
            metrics,
            dead_letters,
            crews: Arc::new(CrewFeed::default()),
            reloader: Reloader {
                profiles: Arc::new(parking_lot::RwLock::new(profiles)),
                handle: reloads,
            },
            influx,
            input: Some(in_tx),
            dataflow: Some(dataflow),
            applier: Some(applier),
        })
    }

    /// Decodes one message and hands its readings to the dataflow (blocks while the dataflow
    /// is saturated). Returns the number of readings.
    pub fn submit(&self, msg: &RawMessage) -> usize {
        let profiles = self.reloader.profiles.read().clone();
        let decoded = decode(&profiles, &msg.topic, &msg.payload, msg.arrival);
        let profile = decoded
            .readings
            .first()
            .map(|r| r.profile.as_str())
            .or_else(|| {
                (!decoded.crew_status.is_empty() || !decoded.crew_acks.is_empty()).then_some("crew")
            })
            .unwrap_or("unknown");
        self.metrics.messages_total.inc([profile]);
        self.metrics
            .bytes_total
            .inc_by([profile], msg.payload.len() as u64);
        for dl in decoded.dead {
            self.metrics.dead_letters_total.inc([dl.reason.as_str()]);
            self.dead_letters.record(dl);
        }
        if !decoded.crew_status.is_empty() {
            let mut status = self.crews.status.lock();
            for s in &decoded.crew_status {
                status.insert(s.crew_id.clone(), s.clone());
            }
        }
        if let Some(inbox) = self.crews.inbox.get() {
            decoded
                .crew_status
                .into_iter()
                .for_each(|s| inbox.status(s));
            decoded.crew_acks.into_iter().for_each(|a| inbox.ack(a));
        }
        let n = decoded.readings.len();
        if n == 0 {
            return 0;
        }
        self.metrics.readings_total.inc_by([profile], n as u64);
        // Values for the page's charts (a small ring per device and metric).
        self.devices.record_readings(&decoded.readings);
        // The device table's last-seen is per message: the newest reading is enough.
        if let Some(last) = decoded.readings.iter().max_by_key(|r| r.ts) {
            self.devices
                .observe_reading(&last.device_id, &last.profile, last.ts, last.arrival);
        }
        if let Some(influx) = &self.influx {
            influx.readings(&decoded.readings);
        }
        if let Some(tx) = &self.input {
            if tx.send(Input::Readings(decoded.readings)).is_err() {
                tracing::error!("dataflow input closed; readings dropped");
            }
        }
        self.metrics
            .ingest_queue_depth
            .set(self.input.as_ref().map_or(0, |t| t.len()) as f64);
        n
    }

    /// A handle that hot-reloads this engine's definitions (for the file watcher and the API).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Ends the input, lets the dataflow judge everything received, and waits for it.
    pub fn finish(mut self) -> anyhow::Result<FinishedEngine> {
        drop(self.input.take());
        if let Some(h) = self.dataflow.take() {
            h.join()
                .map_err(|_| anyhow!("dataflow thread panicked"))??;
        }
        if let Some(h) = self.applier.take() {
            h.join().map_err(|_| anyhow!("output thread panicked"))?;
        }
        self.dead_letters.flush();
        Ok(FinishedEngine {
            store: self.store.clone(),
            devices: self.devices.clone(),
            metrics: self.metrics.clone(),
            dead_letters: self.dead_letters.clone(),
        })
    }
}

/// Hot reload of a running engine's pipelines and profiles; cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    profiles: Arc<parking_lot::RwLock<Arc<ProfileSet>>>,
    handle: dataflow::ReloadHandle,
}

impl Reloader {
    /// Swaps in new, already validated pipelines and profiles. Decoding uses the new profiles
    /// from the next message; the dataflow from the current watermark on (detectors whose
    /// definition did not change keep their state). Returns the new version number.
    pub fn reload(&self, pipelines: Arc<PipelineSet>, profiles: Arc<ProfileSet>) -> u64 {
        *self.profiles.write() = profiles.clone();
        self.handle.publish(pipelines, profiles)
    }

    /// The definitions currently published.
    pub fn current(&self) -> Arc<dataflow::Version> {
        self.handle.latest()
    }
}

/// What is left once an engine has finished.
pub struct FinishedEngine {
    /// Final incidents.
    pub store: Arc<IncidentStore>,
    /// Final device status.
    pub devices: Arc<DeviceTable>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Dead letters.
    pub dead_letters: Arc<DeadLetterLog>,
}

fn apply_outputs(
    rx: Receiver<Output>,
    store: &IncidentStore,
    devices: &DeviceTable,
    metrics: &Metrics,
    dead_letters: &DeadLetterLog,
    influx: Option<&InfluxSink>,
    mut anomaly_log: Option<Box<dyn std::io::Write + Send>>,
) {
    let mut latency = PipelineLatency::default();
    for out in rx.iter() {
        metrics.dataflow_output_queue_depth.set(rx.len() as f64);
        match out {
            Output::Anomaly(a) => {
                if let Some(w) = anomaly_log.as_mut() {
                    let line = serde_json::to_string(&a).unwrap_or_default();
                    if writeln!(w, "{line}").is_err() {
                        tracing::warn!("anomaly log write failed; no more anomalies logged");
                        anomaly_log = None;
                    }
                }
                let phase = if a.phase == Phase::Raised {
                    "raised"
                } else {
                    "cleared"
                };
                metrics.anomalies_total.inc([a.signal.as_str(), phase]);
                latency.anomaly(metrics, &a, wall_now());
                devices.observe_anomaly(&a);
                if let Some(influx) = influx {
                    influx.anomaly(&a);
                }
            }
            Output::Incident(snap) => {
                // The store counts opened/updated incidents in the metrics itself.
                let incident = store.apply_snapshot(snap);
                latency.incident(metrics, &incident, wall_now());
                if let Some(influx) = influx {
                    influx.incident(&incident);
                }
            }
            Output::Rejected(verdict, r) => {
                match verdict {
                    Verdict::Duplicate => {
                        metrics.duplicates_total.inc();
                        continue;
                    }
                    Verdict::Late => metrics.late_total.inc(),
                    Verdict::Future => metrics.future_total.inc(),
                    Verdict::Accept => continue,
                }
                metrics.dead_letters_total.inc([verdict.reason()]);
                dead_letters.record(DeadLetter {
                    arrival: r.arrival,
                    topic: format!("{}/{}", r.device_id, r.metric),
                    reason: verdict.reason().into(),
                    detail: format!(
                        "reading of {} {} at {} arrived at {}",
                        r.device_id, r.metric, r.ts, r.arrival
                    ),
                    payload: serde_json::to_string(&r).unwrap_or_default(),
                });
            }
            Output::Watermark(w) => {
                let now = EventTime(chrono::Utc::now().timestamp_millis());
                metrics
                    .dataflow_watermark_lag_seconds
                    .set((now.0 - w.0) as f64 / 1000.0);
            }
        }
    }
}
