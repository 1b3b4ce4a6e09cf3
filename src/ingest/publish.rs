//! Publishing to the broker: [`Publisher`] (simulator live mode, crew dispatch, tests) and
//! [`publish_recording`] (replaying a recording onto a broker, in order, optionally paced).
//!
//! A `Publisher` owns a rumqttc client and a background task polling its event loop; after the
//! first successful connect it reconnects forever with backoff. [`Publisher::flush`] waits until
//! every QoS 1/2 publish made so far is acknowledged by the broker (PubAck / PubComp), or is known
//! lost because the broker came back without our session.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS, Request};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::mqtt::{qos_from_u8, wait_shutdown, ConnState, MqttConfig, MqttError};
use super::recording::RawMessage;

/// Capacity of rumqttc's request channel: `publish` waits when it is full.
const REQUEST_CAPACITY: usize = 1024;

/// Progress counters shared by the publisher and its event-loop task.
#[derive(Default)]
struct Progress {
    /// QoS 1/2 publishes handed to the client.
    submitted: AtomicU64,
    /// QoS 1/2 publishes acknowledged by the broker.
    completed: AtomicU64,
    /// QoS 1/2 publishes lost with a session.
    lost: AtomicU64,
    /// `lost` as last reported by `flush`.
    lost_reported: AtomicU64,
}

/// An MQTT publisher with its own connection.
pub struct Publisher {
    client: AsyncClient,
    progress: Arc<Progress>,
    /// Bumped by the task on every ack or loss; closed when the task ends.
    changed: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// How fast [`publish_recording`] replays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// No waiting between messages.
    AsFastAsPossible,
    /// Keep the recorded gaps between arrivals, divided by this factor (1.0 = real time).
    Speedup(f64),
}

/// QoS the contract's devices use on `topic`: camera stats and vendor-B stations publish QoS 0,
/// everything else QoS 1.
pub fn contract_qos(topic: &str) -> u8 {
    let parts: Vec<&str> = topic.split('/').collect();
    match parts.as_slice() {
        ["city", "traffic", "cameras", _, "stats"] | ["city", "env", "vendor-b", _] => 0,
        _ => 1,
    }
}

impl Publisher {
    /// Connects as `{cfg.client_id}-{client_id_suffix}`; fails if the first attempt fails.
    pub async fn connect(cfg: &MqttConfig, client_id_suffix: &str) -> Result<Publisher, MqttError> {
        let id = if client_id_suffix.is_empty() {
            cfg.client_id.clone()
        } else {
            format!("{}-{client_id_suffix}", cfg.client_id)
        };
        let options = cfg.options(&id)?;
        let (client, eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        let progress = Arc::new(Progress::default());
        let (changed_tx, changed) = watch::channel(0u64);
        let (stop, stop_rx) = watch::channel(false);
        let (first_tx, first_rx) = oneshot::channel();
        let conn = ConnState::new("publisher", cfg);
        let task = tokio::spawn(drive(
            eventloop,
            conn,
            progress.clone(),
            changed_tx,
            stop_rx,
            first_tx,
        ));
        match first_rx.await {
            Ok(Ok(())) => Ok(Publisher {
                client,
                progress,
                changed,
                stop,
                task,
            }),
            Ok(Err(e)) => {
                task.abort();
                Err(e)
            }
            Err(_) => Err(MqttError::Client(
                "publisher task ended before connecting".into(),
            )),
        }
    }

    /// Queues one publish (waits while the request queue is full). `qos` is 0, 1 or 2.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
    ) -> Result<(), MqttError> {
        let q = qos_from_u8(qos)?;
        if !rumqttc::valid_topic(topic) || topic.is_empty() {
            return Err(MqttError::Client(format!("invalid topic {topic:?}")));
        }
        let tracked = q != QoS::AtMostOnce;
        if tracked {
            self.progress.submitted.fetch_add(1, Ordering::SeqCst);
        }
        let res = self.client.publish(topic, q, retain, payload).await;
        if res.is_err() && tracked {
            self.progress.submitted.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(res?)
    }

    /// Waits until every QoS 1/2 publish made so far is acknowledged. Returns
    /// [`MqttError::SessionLost`] when some were dropped with a lost session since the last
    /// flush, and [`MqttError::Client`] if the connection task has ended.
    pub async fn flush(&self) -> Result<(), MqttError> {
        let mut changed = self.changed.clone();
        loop {
            changed.borrow_and_update();
            let p = &self.progress;
            let submitted = p.submitted.load(Ordering::SeqCst);
            let lost = p.lost.load(Ordering::SeqCst);
            if p.completed.load(Ordering::SeqCst) + lost >= submitted {
                let before = p.lost_reported.swap(lost, Ordering::SeqCst);
                return match lost.saturating_sub(before) {
                    0 => Ok(()),
                    n => Err(MqttError::SessionLost { lost: n }),
                };
            }
            if changed.changed().await.is_err() {
                return Err(MqttError::Client(
                    "publisher connection task has ended".into(),
                ));
            }
        }
    }

    /// Sends DISCONNECT after everything queued before it, and stops the connection task
    /// (waiting at most 5 s). Call [`Publisher::flush`] first to be sure QoS 1 messages arrived.
    pub async fn disconnect(mut self) {
        if self.client.disconnect().await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        }
        // Drop stops the task if it is still running.
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// Polls the event loop: counts acks, accounts lost publishes, reconnects with backoff.
async fn drive(
    mut eventloop: EventLoop,
    mut conn: ConnState,
    progress: Arc<Progress>,
    changed: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
    first: oneshot::Sender<Result<(), MqttError>>,
) {
    let mut first = Some(first);
    let mut outstanding: HashSet<u16> = HashSet::new();
    // QoS 1/2 requests rumqttc holds for retransmission after the last connection error.
    let mut at_risk = 0u64;
    let bump = |changed: &watch::Sender<u64>| changed.send_modify(|v| *v = v.wrapping_add(1));
    loop {
        let event = tokio::select! {
            biased;
            _ = wait_shutdown(&mut stop) => return,
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if conn.ever_connected() && !ack.session_present && at_risk > 0 {
                    tracing::warn!(lost = at_risk, "mqtt broker lost the publisher session");
                    progress.lost.fetch_add(at_risk, Ordering::SeqCst);
                    outstanding.clear();
                    bump(&changed);
                }
                at_risk = 0;
                conn.connected(ack.session_present);
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(()));
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
                outstanding.insert(pkid);
            }
            Ok(Event::Incoming(Packet::PubAck(rumqttc::PubAck { pkid })))
            | Ok(Event::Incoming(Packet::PubComp(rumqttc::PubComp { pkid }))) => {
                if outstanding.remove(&pkid) {
                    progress.completed.fetch_add(1, Ordering::SeqCst);
                    bump(&changed);
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if let Some(f) = first.take() {
                    let reason = e.to_string();
                    let _ = f.send(Err(MqttError::Connect {
                        addr: conn.addr().to_string(),
                        reason,
                    }));
                    return;
                }
                at_risk = eventloop
                    .pending
                    .iter()
                    .filter(|r| match r {
                        Request::Publish(p) => p.qos != QoS::AtMostOnce,
                        Request::PubRel(_) => true,
                        _ => false,
                    })
                    .count() as u64;
                let delay = conn.failed(&e);
                tokio::select! {
                    biased;
                    _ = wait_shutdown(&mut stop) => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Publishes `messages` in order (QoS from [`contract_qos`], no retain), paced by `pace`, then
/// flushes and disconnects. Returns how many messages were published.
pub async fn publish_recording(
    cfg: &MqttConfig,
    messages: impl Iterator<Item = RawMessage>,
    pace: Pace,
) -> Result<u64, MqttError> {
    if let Pace::Speedup(s) = pace {
        if !(s.is_finite() && s > 0.0) {
            return Err(MqttError::InvalidPace(s));
        }
    }
    let publisher = Publisher::connect(cfg, "replay").await?;
    let start = Instant::now();
    let mut first_arrival = None;
    let mut count = 0u64;
    for m in messages {
        if let Pace::Speedup(speedup) = pace {
            let t0 = *first_arrival.get_or_insert(m.arrival.millis());
            let offset_ms = (m.arrival.millis().saturating_sub(t0)).max(0) as f64 / speedup;
            let target = start + Duration::from_secs_f64((offset_ms / 1000.0).min(1.0e9));
            tokio::time::sleep_until(target).await;
        }
        let qos = contract_qos(&m.topic);
        publisher.publish(&m.topic, m.payload, qos, false).await?;
        count += 1;
    }
    let flushed = publisher.flush().await;
    publisher.disconnect().await;
    flushed.map(|()| count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_qos_matches_the_device_contract() {
        assert_eq!(contract_qos("city/traffic/cameras/TC-0042/stats"), 0);
        assert_eq!(contract_qos("city/env/vendor-b/AQ-2201"), 0);
        assert_eq!(contract_qos("city/traffic/cameras/TC-0042/events"), 1);
        assert_eq!(contract_qos("city/env/AQ-0107/senml"), 1);
        assert_eq!(contract_qos("city/water/pressure/PG-0311/up"), 1);
        assert_eq!(contract_qos("city/crews/W-07/status"), 1);
        assert_eq!(contract_qos("city/env/vendor-b/AQ-2201/extra"), 1);
    }
}
