//! The live MQTT source: subscribes, turns every publish into a [`RawMessage`] and hands it to
//! the dataflow over a bounded channel, acknowledging QoS 1/2 only once the channel took it.
//!
//! Two loops run concurrently inside [`run_source`]:
//! - the *pump* polls the rumqttc event loop without ever waiting on downstream, so keep-alives,
//!   acks and reconnects (with backoff) keep flowing under overload. It appends each publish to
//!   an internal FIFO. QoS 0 publishes are shed (and counted in [`SourceStats::shed_qos0`]) when
//!   the downstream channel is full; QoS 1/2 publishes are always queued. The FIFO holds at most
//!   the broker's in-flight window of unacknowledged QoS 1/2 messages (bounded by the 16-bit
//!   packet-id space) plus at most one channel's worth of QoS 0 messages.
//! - the *forwarder* moves the FIFO, in order, into the downstream channel with `send().await`
//!   (backpressure) and only then acks the publish. The broker stops sending QoS 1 messages once
//!   its in-flight window is full of unacked ones, so overload slows the broker instead of losing
//!   data. Acks belonging to a connection that has since dropped are skipped: the broker
//!   redelivers those messages (flagged `dup`) and they are acked then.
//!
//! Subscriptions are (re)sent after every ConnAck, so a reconnect with a fresh session resumes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::SubscribeReasonCode;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, Publish, QoS, SubscribeFilter};
use tokio::sync::{mpsc, watch};

use super::{wait_shutdown, ConnState, MqttConfig, MqttError, SourceStats};
use crate::ingest::recording::RawMessage;
use crate::model::EventTime;

/// Capacity of rumqttc's request channel (acks and subscribes).
const REQUEST_CAPACITY: usize = 1024;

/// A received message waiting for the downstream channel; `ack` is the publish to acknowledge
/// afterwards and the connection generation it arrived on (QoS 1/2 only).
struct Queued {
    msg: RawMessage,
    ack: Option<(Publish, u64)>,
}

/// State shared by the pump and the forwarder.
struct Shared {
    /// Messages in the internal FIFO.
    queued: AtomicUsize,
    /// Incremented on every ConnAck.
    generation: AtomicU64,
}

/// Runs the live MQTT source until `shutdown` becomes true (or its sender is dropped).
///
/// Returns `Ok(())` on shutdown, [`MqttError::ChannelClosed`] when `tx`'s receiver is dropped,
/// and config/TLS errors before connecting. Connection errors are retried forever with backoff.
pub async fn run_source(
    cfg: MqttConfig,
    tx: mpsc::Sender<RawMessage>,
    stats: Arc<SourceStats>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), MqttError> {
    let mut options = cfg.options(&cfg.client_id)?;
    options.set_manual_acks(true);
    let qos = cfg.sub_qos()?;
    let filters: Vec<SubscribeFilter> = cfg
        .subscriptions
        .iter()
        .map(|f| SubscribeFilter::new(f.clone(), qos))
        .collect();
    let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
    let (queue_tx, mut queue_rx) = mpsc::unbounded_channel::<Queued>();
    let shared = Shared {
        queued: AtomicUsize::new(0),
        generation: AtomicU64::new(0),
    };

    let result = {
        let pump = pump(
            &cfg,
            &mut eventloop,
            &client,
            &filters,
            &tx,
            &queue_tx,
            &shared,
            &stats,
            shutdown.clone(),
        );
        let forward = forward(&mut queue_rx, &tx, &client, &shared, shutdown);
        tokio::select! {
            r = pump => r,
            r = forward => r,
        }
    };

    // Best-effort clean DISCONNECT; unacked messages are redelivered to a persistent session.
    if stats.connected.swap(false, Ordering::Relaxed) && client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
    result
}

/// Polls the event loop; never waits on downstream. See the module docs.
#[allow(clippy::too_many_arguments)]
async fn pump(
    cfg: &MqttConfig,
    eventloop: &mut EventLoop,
    client: &AsyncClient,
    filters: &[SubscribeFilter],
    tx: &mpsc::Sender<RawMessage>,
    queue: &mpsc::UnboundedSender<Queued>,
    shared: &Shared,
    stats: &SourceStats,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MqttError> {
    let mut conn = ConnState::new("source", cfg);
    loop {
        let event = tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return Ok(()),
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                shared.generation.fetch_add(1, Ordering::SeqCst);
                if conn.connected(ack.session_present) {
                    SourceStats::add(&stats.reconnects, 1);
                }
                stats.connected.store(true, Ordering::Relaxed);
                subscribe(client, filters);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => on_publish(p, tx, queue, shared, stats)?,
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                if s.return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    tracing::warn!(addr = conn.addr(), codes = ?s.return_codes,
                        "mqtt broker refused a subscription");
                }
            }
            Ok(_) => {}
            Err(e) => {
                stats.connected.store(false, Ordering::Relaxed);
                SourceStats::add(&stats.connect_errors, 1);
                let delay = conn.failed(&e);
                tokio::select! {
                    biased;
                    _ = wait_shutdown(&mut shutdown) => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Queues the subscriptions without blocking the pump (the request channel may be full of acks).
fn subscribe(client: &AsyncClient, filters: &[SubscribeFilter]) {
    if let Err(e) = client.try_subscribe_many(filters.to_vec()) {
        tracing::debug!(error = %e, "mqtt request channel busy; subscribing asynchronously");
        let client = client.clone();
        let filters = filters.to_vec();
        tokio::spawn(async move {
            if let Err(e) = client.subscribe_many(filters).await {
                tracing::warn!(error = %e, "mqtt subscribe failed");
            }
        });
    }
}

fn on_publish(
    p: Publish,
    tx: &mpsc::Sender<RawMessage>,
    queue: &mpsc::UnboundedSender<Queued>,
    shared: &Shared,
    stats: &SourceStats,
) -> Result<(), MqttError> {
    SourceStats::add(&stats.messages, 1);
    SourceStats::add(&stats.bytes, p.payload.len() as u64);
    if p.dup {
        SourceStats::add(&stats.duplicates, 1);
    }
    let msg = RawMessage {
        arrival: EventTime(chrono::Utc::now().timestamp_millis()),
        topic: p.topic.clone(),
        payload: p.payload.to_vec(),
    };
    let ack = if p.qos == QoS::AtMostOnce {
        // Shed when downstream is full (or the FIFO already holds a channel's worth).
        if tx.capacity() == 0 || shared.queued.load(Ordering::Relaxed) >= tx.max_capacity() {
            SourceStats::add(&stats.shed_qos0, 1);
            tracing::debug!(topic = %msg.topic, "downstream full: shedding qos 0 message");
            return Ok(());
        }
        None
    } else {
        Some((p, shared.generation.load(Ordering::SeqCst)))
    };
    shared.queued.fetch_add(1, Ordering::Relaxed);
    queue
        .send(Queued { msg, ack })
        .map_err(|_| MqttError::ChannelClosed)
}

/// Moves queued messages downstream in order, then acks them. See the module docs.
async fn forward(
    queue: &mut mpsc::UnboundedReceiver<Queued>,
    tx: &mpsc::Sender<RawMessage>,
    client: &AsyncClient,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MqttError> {
    loop {
        let item = tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return Ok(()),
            item = queue.recv() => item,
        };
        let Some(Queued { msg, ack }) = item else {
            return Ok(());
        };
        tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return Ok(()),
            sent = tx.send(msg) => sent.map_err(|_| MqttError::ChannelClosed)?,
        }
        shared.queued.fetch_sub(1, Ordering::Relaxed);
        let Some((publish, generation)) = ack else {
            continue;
        };
        if generation != shared.generation.load(Ordering::SeqCst) {
            continue; // the broker redelivers it on the new connection
        }
        tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return Ok(()),
            r = client.ack(&publish) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "mqtt ack not queued");
                }
            }
        }
    }
}
