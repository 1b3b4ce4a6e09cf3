//! The only module that imports rumqttc: MQTT source, payload decoding through device profiles,
//! embedded broker, and record/replay of the contract's recording format.

pub mod broker;
pub mod decode;
pub mod mqtt;
pub mod publish;
pub mod recording;
pub mod testkit;
pub mod units;
pub use mqtt::record;
