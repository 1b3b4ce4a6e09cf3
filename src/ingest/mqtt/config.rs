//! MQTT connection settings ([`MqttConfig`]), their validation, and their translation into
//! rumqttc options (including the rustls client config from [`super::tls`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rumqttc::{MqttOptions, QoS, Transport};
use serde::{Deserialize, Serialize};

use super::MqttError;

/// A secret string: `Debug`/`Display` print `***`. Serializes the real value (so a config can
/// be written back); never log a serialized config.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; only for handing to the library that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// TLS to the broker (rustls with the ring provider).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate chain for mutual TLS (requires `client_key`).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// How citybrain connects to the city's MQTT broker.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or IP address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Broker TCP port (1883 plain, usually 8883 with TLS).
    #[serde(default = "default_port")]
    pub port: u16,
    /// MQTT client id. With `clean_session: false` the broker keeps our subscriptions and queues
    /// QoS 1 messages under this id while we are down, so it must be stable and unique.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// User name, if the broker requires authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `username`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// TLS settings; plain TCP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Keep-alive interval in seconds (at least 1).
    #[serde(default = "default_keep_alive_secs")]
    pub keep_alive_secs: u64,
    /// Topic filters to subscribe to (re-subscribed after every connect).
    #[serde(default = "default_subscriptions")]
    pub subscriptions: Vec<String>,
    /// Maximum QoS requested for the subscriptions (0, 1 or 2).
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Start a fresh session on connect. `false` (default) lets the broker deliver QoS 1
    /// messages queued while citybrain was down.
    #[serde(default)]
    pub clean_session: bool,
    /// First delay before reconnecting after a connection error, in milliseconds; doubles on
    /// each further failure up to `reconnect_max_ms`, and resets after a successful connect.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest delay between reconnect attempts, in milliseconds.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Maximum number of our outgoing QoS 1/2 publishes awaiting acknowledgement.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// Largest MQTT packet accepted or sent, in bytes.
    #[serde(default = "default_max_packet_bytes")]
    pub max_packet_bytes: u32,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    1883
}
fn default_client_id() -> String {
    "citybrain".into()
}
fn default_keep_alive_secs() -> u64 {
    30
}
fn default_subscriptions() -> Vec<String> {
    vec!["city/#".into()]
}
fn default_qos() -> u8 {
    1
}
fn default_reconnect_min_ms() -> u64 {
    200
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}
fn default_inflight() -> u16 {
    100
}
fn default_max_packet_bytes() -> u32 {
    1024 * 1024
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: default_host(),
            port: default_port(),
            client_id: default_client_id(),
            username: None,
            password: None,
            tls: None,
            keep_alive_secs: default_keep_alive_secs(),
            subscriptions: default_subscriptions(),
            qos: default_qos(),
            clean_session: false,
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            inflight: default_inflight(),
            max_packet_bytes: default_max_packet_bytes(),
        }
    }
}

impl MqttConfig {
    /// A default config pointing at `host:port` (handy for tests and the embedded broker).
    pub fn for_broker(host: impl Into<String>, port: u16) -> Self {
        MqttConfig {
            host: host.into(),
            port,
            ..MqttConfig::default()
        }
    }

    /// Every problem with this config as `(field, message)`; empty when valid. Catches every
    /// value rumqttc would panic on.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |field: &str, msg: String| errs.push((field.to_string(), msg));
        if self.host.trim().is_empty() {
            err("host", "must not be empty".into());
        }
        if self.port == 0 {
            err("port", "must be between 1 and 65535".into());
        }
        if self.client_id.is_empty() && !self.clean_session {
            err(
                "client_id",
                "must not be empty unless clean_session is true".into(),
            );
        }
        if self.username.is_none() && self.password.is_some() {
            err("password", "is set but username is not".into());
        }
        if !(1..=65_535).contains(&self.keep_alive_secs) {
            err(
                "keep_alive_secs",
                format!("{} is not between 1 and 65535", self.keep_alive_secs),
            );
        }
        if self.subscriptions.is_empty() {
            err(
                "subscriptions",
                "must list at least one topic filter".into(),
            );
        }
        for (i, s) in self.subscriptions.iter().enumerate() {
            if s.is_empty() || !rumqttc::valid_filter(s) {
                err(
                    &format!("subscriptions[{i}]"),
                    format!("{s:?} is not a valid topic filter"),
                );
            }
        }
        if self.qos > 2 {
            err("qos", format!("{} is not 0, 1 or 2", self.qos));
        }
        if self.reconnect_min_ms == 0 {
            err("reconnect_min_ms", "must be > 0".into());
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            err(
                "reconnect_max_ms",
                format!("{} is below reconnect_min_ms", self.reconnect_max_ms),
            );
        }
        if self.inflight == 0 {
            err("inflight", "must be > 0".into());
        }
        if self.max_packet_bytes < 1024 {
            err(
                "max_packet_bytes",
                format!("{} is below 1024", self.max_packet_bytes),
            );
        }
        if let Some(tls) = &self.tls {
            for (field, path) in [
                ("tls.ca_file", Some(&tls.ca_file)),
                ("tls.client_cert", tls.client_cert.as_ref()),
                ("tls.client_key", tls.client_key.as_ref()),
            ] {
                if let Some(p) = path {
                    if !p.is_file() {
                        err(field, format!("{} is not a readable file", p.display()));
                    }
                }
            }
            if tls.client_cert.is_some() != tls.client_key.is_some() {
                err(
                    "tls",
                    "client_cert and client_key must be set together".into(),
                );
            }
        }
        errs
    }

    /// Subscription QoS as rumqttc's type.
    pub(crate) fn sub_qos(&self) -> Result<QoS, MqttError> {
        qos_from_u8(self.qos)
    }

    /// rumqttc options for a client called `client_id` (validates first; never panics).
    pub(crate) fn options(&self, client_id: &str) -> Result<MqttOptions, MqttError> {
        let problems = self.validate();
        if !problems.is_empty() {
            let text: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(MqttError::InvalidConfig(text.join("; ")));
        }
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(self.keep_alive_secs));
        if client_id.is_empty() {
            o.set_clean_session(true);
        } else {
            o.set_clean_session(self.clean_session);
        }
        o.set_inflight(self.inflight);
        let max = self.max_packet_bytes as usize;
        o.set_max_packet_size(max, max);
        if let Some(user) = &self.username {
            let pass = self.password.as_ref().map(Secret::expose).unwrap_or("");
            o.set_credentials(user.clone(), pass);
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(super::tls::rustls_config(tls)?));
        }
        Ok(o)
    }
}

/// QoS from its number.
pub(crate) fn qos_from_u8(q: u8) -> Result<QoS, MqttError> {
    match q {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        other => Err(MqttError::InvalidQos(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract_and_validate() {
        let c: MqttConfig = serde_json::from_str("{}").expect("empty config uses defaults");
        assert_eq!(c, MqttConfig::default());
        assert_eq!((c.host.as_str(), c.port, c.qos), ("127.0.0.1", 1883, 1));
        assert_eq!(c.subscriptions, vec!["city/#".to_string()]);
        assert!(!c.clean_session);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert!(c.options("citybrain").is_ok());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<MqttConfig>(r#"{"hots":"x"}"#).expect_err("typo");
        assert!(err.to_string().contains("hots"), "{err}");
    }

    #[test]
    fn validate_reports_every_problem_that_would_panic_rumqttc() {
        let c = MqttConfig {
            host: " ".into(),
            client_id: String::new(),
            keep_alive_secs: 0,
            subscriptions: vec!["city/#/x".into()],
            qos: 3,
            reconnect_min_ms: 500,
            reconnect_max_ms: 100,
            inflight: 0,
            password: Some(Secret::new("p")),
            tls: Some(TlsConfig {
                ca_file: "/nonexistent/ca.pem".into(),
                client_cert: Some("/nonexistent/c.pem".into()),
                client_key: None,
            }),
            ..MqttConfig::default()
        };
        let fields: Vec<String> = c.validate().into_iter().map(|(f, _)| f).collect();
        for f in [
            "host",
            "client_id",
            "keep_alive_secs",
            "subscriptions[0]",
            "qos",
            "reconnect_max_ms",
            "inflight",
            "password",
            "tls.ca_file",
            "tls.client_cert",
            "tls",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
        assert!(matches!(c.options("x"), Err(MqttError::InvalidConfig(_))));
    }

    #[test]
    fn password_is_redacted_in_debug() {
        let c = MqttConfig {
            username: Some("ops".into()),
            password: Some(Secret::new("hunter2")),
            ..MqttConfig::default()
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && dbg.contains("***"), "{dbg}");
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("hunter2"));
    }
}
