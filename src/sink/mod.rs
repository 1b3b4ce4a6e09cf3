//! Where results leave citybrain (other than the API): the dead-letter record, InfluxDB, crew
//! dispatch over MQTT ([`dispatch`]: the task running the dispatcher and its MQTT publisher) and
//! signed webhooks ([`webhook`]).

pub mod dead_letter;
pub mod dispatch;
pub mod influx;
pub mod webhook;

pub use dead_letter::DeadLetterLog;
