//! # citybrain
//!
//! A real-time stream processor for a city's command centre. Field devices publish over MQTT;
//! citybrain decodes them through device profiles, detects anomalies per device and metric,
//! correlates anomalies across departments in space and event time into incidents, and serves
//! those incidents to operators and field crews.
//!
//! # Layout
//!
//! ```text
//!  MQTT broker ──► ingest ──► dataflow (timely workers) ─────────────► incident ──► api
//!  (rumqttc)      decode via   ├ watermark + late/future/dup filter     store,      (axum, page,
//!                 device-      ├ per-device detectors  (detect/)         lifecycle   /metrics)
//!                 profiles/    └ correlation           (correlate/)      dispatch ─► sink (MQTT,
//!                                 from pipelines/                                    dead letters)
//! ```
//!
//! - [`model`]: plain data (readings, anomalies, incidents, devices, crews); serde only.
//! - [`config`]: app config, device profiles, pipelines, registers; errors name file/line/field.
//! - [`ingest`]: the only module that imports rumqttc: MQTT source, payload decoding, embedded
//!   broker, record/replay of the contract's recording format.
//! - [`dataflow`]: the only module that imports timely: input bridge with watermarks, detector
//!   and correlation operators, exchanged by device id.
//! - [`detect`]: pure per-device detectors (no timely, no tokio).
//! - [`correlate`]: pure spatial/temporal correlation of anomalies into incident snapshots.
//! - [`incident`]: incident store and lifecycle, device status table, crew dispatch decisions.
//! - [`sink`]: where results leave: dead-letter file, crew dispatch over MQTT.
//! - [`api`]: axum router: incidents, devices, metrics, health; bearer-token auth.
//! - [`telemetry`]: every Prometheus metric name, and tracing setup.
//! - [`sim`]: the simulated city used by `demo`, `simulate` and the tests.
//! - [`app`]: wiring for the commands (`demo`, `run`, `replay`, `record`, `check`, `simulate`).
//! - [`nab`]: the detectors scored on the public NAB benchmark (`citybrain nab`).

pub mod api;
pub mod app;
pub mod backtest;
pub mod config;
pub mod correlate;
pub mod dataflow;
pub mod detect;
pub mod incident;
pub mod ingest;
pub mod model;
pub mod nab;
pub mod sim;
pub mod sink;
pub mod telemetry;
