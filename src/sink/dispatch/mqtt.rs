//! The MQTT side of dispatch: messages published at QoS 1 on `city/crews/{crew_id}/dispatch`.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::incident::dispatch::DispatchMessage;
use crate::ingest::mqtt::{wait_shutdown, MqttConfig};
use crate::ingest::publish::Publisher;

/// Publishes dispatch messages at QoS 1 on `city/crews/{crew_id}/dispatch`, over its own
/// connection (client id `{client_id}-dispatch`), connecting with backoff until it succeeds.
pub async fn publish_dispatches(
    mqtt: MqttConfig,
    mut outbox: mpsc::Receiver<DispatchMessage>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    let publisher = loop {
        tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return,
            connected = Publisher::connect(&mqtt, "dispatch") => match connected {
                Ok(p) => break p,
                Err(e) => tracing::warn!(error = %e, "dispatch publisher cannot connect; retrying"),
            },
        }
        tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return,
            _ = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(Duration::from_secs(30)),
        }
    };
    loop {
        let message = tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => break,
            m = outbox.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let payload = match serde_json::to_vec(&message) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "dispatch message not encodable");
                continue;
            }
        };
        // The publisher queues and retransmits on its own; an error here is an invalid topic
        // (a crew id with MQTT wildcards) or a closed client.
        if let Err(e) = publisher.publish(&message.topic(), payload, 1, false).await {
            tracing::error!(error = %e, crew = %message.crew_id, "dispatch not published");
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), publisher.flush()).await;
    publisher.disconnect().await;
}
