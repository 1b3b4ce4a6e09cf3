//! The live MQTT side of ingest: connection settings ([`MqttConfig`]), the source that feeds the
//! dataflow ([`run_source`]), recording live traffic ([`record`]), and the connection-state and
//! backoff bookkeeping shared with [`crate::ingest::publish`].
//!
//! rumqttc reconnects with no delay when polled after an error (rumqtt issues #703, #918); every
//! loop here sleeps with exponential backoff ([`MqttConfig::reconnect_min_ms`] doubling up to
//! [`MqttConfig::reconnect_max_ms`], reset after a successful connect) and logs at WARN once per
//! state change, never per retry.

mod config;
mod record;
mod source;
#[cfg(test)]
mod tests;
mod tls;
#[cfg(test)]
mod tls_tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

pub(crate) use config::qos_from_u8;
pub use config::{MqttConfig, Secret, TlsConfig};
pub use record::record;
pub use source::run_source;

/// Errors of the MQTT source, recorder and publisher.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The config failed [`MqttConfig::validate`].
    #[error("invalid mqtt config: {0}")]
    InvalidConfig(String),
    /// A QoS other than 0, 1 or 2.
    #[error("invalid qos {0} (expected 0, 1 or 2)")]
    InvalidQos(u8),
    /// TLS files could not be loaded.
    #[error("mqtt tls: {0}")]
    Tls(String),
    /// The first connection attempt failed.
    #[error("cannot connect to mqtt broker {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The rumqttc client rejected a request (its event loop has stopped, or a bad topic).
    #[error("mqtt client: {0}")]
    Client(String),
    /// The receiving side of the source channel was dropped.
    #[error("mqtt source: downstream channel closed")]
    ChannelClosed,
    /// The broker lost our session while QoS 1/2 publishes were unacknowledged.
    #[error("mqtt broker lost the session: {lost} unacknowledged publishes were dropped")]
    SessionLost {
        /// How many publishes are known lost.
        lost: u64,
    },
    /// Writing a recording failed.
    #[error("writing recording: {0}")]
    Write(#[from] std::io::Error),
    /// A replay pace that is not a positive finite speed-up.
    #[error("invalid pace: speed-up {0} must be finite and > 0")]
    InvalidPace(f64),
}

impl From<rumqttc::ClientError> for MqttError {
    fn from(e: rumqttc::ClientError) -> Self {
        MqttError::Client(e.to_string())
    }
}

/// Counters of the live source, shared with telemetry (read them with `load(Ordering::Relaxed)`).
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Publishes received (all QoS, including duplicates and shed ones).
    pub messages: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// QoS 0 messages dropped because the downstream channel was full (overload shedding).
    pub shed_qos0: AtomicU64,
    /// Successful connects after the first one.
    pub reconnects: AtomicU64,
    /// Failed connection attempts and dropped connections (each followed by a backoff sleep).
    pub connect_errors: AtomicU64,
    /// Publishes the broker flagged as redeliveries (`dup`); they are still forwarded, since the
    /// dataflow dedups by content. Only a counter.
    pub duplicates: AtomicU64,
    /// Whether the source is connected right now.
    pub connected: AtomicBool,
}

impl SourceStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Installs rustls' ring crypto provider as the process default. Idempotent; the app calls it
/// first thing. (The MQTT TLS config here names ring explicitly, so it works without this too.)
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Resolves when `shutdown` is (or becomes) `true`, or when its sender is dropped.
pub(crate) async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Exponential backoff: `min`, `2·min`, `4·min`, … capped at `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(cfg: &MqttConfig) -> Self {
        let min = Duration::from_millis(cfg.reconnect_min_ms.max(1));
        let max = Duration::from_millis(cfg.reconnect_max_ms).max(min);
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay to sleep now; doubles the following one.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Connection-state tracking for one client: backoff, and logs only on state changes.
pub(crate) struct ConnState {
    role: &'static str,
    addr: String,
    backoff: Backoff,
    ever_connected: bool,
    up: Option<bool>,
}

impl ConnState {
    pub(crate) fn new(role: &'static str, cfg: &MqttConfig) -> Self {
        ConnState {
            role,
            addr: format!("{}:{}", cfg.host, cfg.port),
            backoff: Backoff::new(cfg),
            ever_connected: false,
            up: None,
        }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Records a ConnAck; returns true when it is a reconnect (not the first connect).
    pub(crate) fn connected(&mut self, session_present: bool) -> bool {
        self.backoff.reset();
        if self.up != Some(true) {
            tracing::info!(role = self.role, addr = %self.addr, session_present, "mqtt connected");
        }
        self.up = Some(true);
        std::mem::replace(&mut self.ever_connected, true)
    }

    /// Records a connection error; returns how long to wait before polling again.
    pub(crate) fn failed(&mut self, err: &rumqttc::ConnectionError) -> Duration {
        let delay = self.backoff.next_delay();
        let retry_ms = delay.as_millis() as u64;
        if self.up != Some(false) {
            tracing::warn!(role = self.role, addr = %self.addr, error = %err, retry_ms,
                "mqtt connection failed; retrying with backoff");
        } else {
            tracing::debug!(role = self.role, addr = %self.addr, error = %err, retry_ms,
                "mqtt still disconnected");
        }
        self.up = Some(false);
        delay
    }

    pub(crate) fn ever_connected(&self) -> bool {
        self.ever_connected
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let cfg = MqttConfig {
            reconnect_min_ms: 200,
            reconnect_max_ms: 1000,
            ..Default::default()
        };
        let mut b = Backoff::new(&cfg);
        let got: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, vec![200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 200);
    }

    #[test]
    fn crypto_provider_install_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[tokio::test]
    async fn wait_shutdown_sees_true_and_dropped_sender() {
        let (tx, mut rx) = watch::channel(false);
        let waiter = tokio::spawn(async move { wait_shutdown(&mut rx).await });
        tx.send(true).expect("send");
        waiter.await.expect("joins");
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        wait_shutdown(&mut rx).await;
    }
}
