//! The embedded MQTT broker for `citybrain demo` (rumqttd 0.20), so a single box needs no
//! external broker. Tests and production use mosquitto.
//!
//! The rumqttd config is built in code: one MQTT 3.1.1 (v4) listener on the given address, no
//! TLS, no websocket, no metrics or prometheus endpoint, no console, generous limits. rumqttd binds
//! inside its own thread and cannot report the port it got, so port 0 is resolved here first by
//! binding a listener to it, reading the port and releasing it (the same probe catches an address
//! already in use). rumqttd 0.20 has no shutdown API: the broker lives until the process exits.
//! Known rumqttd bug: two filters under one `$share/<group>/` name lose messages; don't use
//! shared subscriptions against it.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// How long [`EmbeddedBroker::wait_ready`] waits.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest payload accepted (1 MiB).
const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Errors starting the embedded broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address cannot be bound (in use, not local, no permission).
    #[error("embedded broker cannot listen on {addr}: {source}")]
    Bind {
        /// Address requested.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The broker thread could not be spawned.
    #[error("cannot spawn embedded broker thread: {0}")]
    Spawn(std::io::Error),
    /// The broker did not accept connections in time.
    #[error("embedded broker on {addr} not accepting connections after {waited_ms} ms")]
    NotReady {
        /// Address it should listen on.
        addr: SocketAddr,
        /// How long we waited.
        waited_ms: u64,
    },
}

/// A running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    /// Address it listens on (the real port when started with port 0).
    pub addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Blocks until the broker accepts TCP connections (at most 5 s). Blocking: from async code
    /// call it through `tokio::task::spawn_blocking`.
    pub fn wait_ready(&self) -> Result<(), BrokerError> {
        let start = Instant::now();
        let probe = if self.addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], self.addr.port()))
        } else {
            self.addr
        };
        loop {
            if TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() >= READY_TIMEOUT {
                let waited_ms = start.elapsed().as_millis() as u64;
                return Err(BrokerError::NotReady {
                    addr: self.addr,
                    waited_ms,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Starts rumqttd on `listen` (port 0 picks a free port) on its own thread. Returns at once;
/// call [`EmbeddedBroker::wait_ready`] before connecting.
pub fn start_embedded_broker(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
    let addr = TcpListener::bind(listen)
        .and_then(|l| l.local_addr())
        .map_err(|source| BrokerError::Bind {
            addr: listen,
            source,
        })?;
    let config = broker_config(addr);
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Spawn)?;
    tracing::info!(%addr, "embedded mqtt broker starting");
    Ok(EmbeddedBroker { addr })
}

fn broker_config(addr: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD_BYTES,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "citybrain-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let router = RouterConfig {
        max_connections: 1000,
        max_outgoing_packet_count: 1000,
        // Per-topic in-memory log: segments must hold a max-size payload; 4 × 2 MiB each.
        max_segment_size: 2 * MAX_PAYLOAD_BYTES,
        max_segment_count: 4,
        ..RouterConfig::default()
    };
    Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("1".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_broker_routes_a_publish_to_a_subscriber() {
        let broker = start_embedded_broker("127.0.0.1:0".parse().expect("addr")).expect("starts");
        assert_ne!(broker.addr.port(), 0);
        let b = broker.clone();
        tokio::task::spawn_blocking(move || b.wait_ready())
            .await
            .expect("joins")
            .expect("ready");

        let port = broker.addr.port();
        let (sub, mut sub_loop) = AsyncClient::new(MqttOptions::new("sub", "127.0.0.1", port), 10);
        sub.subscribe("city/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            let mut published = false;
            let (pubc, mut pub_loop) =
                AsyncClient::new(MqttOptions::new("pub", "127.0.0.1", port), 10);
            tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
            loop {
                match sub_loop.poll().await.expect("subscriber connection") {
                    Event::Incoming(Packet::SubAck(_)) if !published => {
                        published = true;
                        pubc.publish("city/x/y", QoS::AtLeastOnce, false, b"hi".to_vec())
                            .await
                            .expect("publish");
                    }
                    Event::Incoming(Packet::Publish(p)) => return (p.topic, p.payload.to_vec()),
                    _ => {}
                }
            }
        })
        .await
        .expect("message arrives within 10 s");
        assert_eq!(got, ("city/x/y".to_string(), b"hi".to_vec()));
    }

    #[test]
    fn an_address_in_use_is_a_bind_error() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        assert!(matches!(
            start_embedded_broker(addr),
            Err(BrokerError::Bind { .. })
        ));
    }
}
