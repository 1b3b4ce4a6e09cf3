//! Where results leave citybrain (other than the API): the dead-letter record today; crew
//! dispatch over MQTT, InfluxDB and webhooks plug in beside it.

pub mod dead_letter;
pub mod influx;

pub use dead_letter::DeadLetterLog;
