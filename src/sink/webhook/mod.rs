//! Webhooks: incident changes, dispatches and escalations POSTed as JSON to configured URLs.
//!
//! - **Signed**: `X-Citybrain-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>`;
//!   `X-Citybrain-Event` names the event, `X-Citybrain-Delivery` its sequence number (also in the
//!   body), so a receiver can drop a redelivery.
//! - **In order, retried**: one worker per webhook sends its events one at a time; a failure
//!   (connection error, timeout, 5xx, 408, 429) is retried with exponential backoff
//!   (`retry_min_ms` doubling to `retry_max_ms`), the same bytes every time. Other 4xx answers
//!   mean the receiver refuses the event: it is dropped and counted, never retried.
//! - **Never blocking the pipeline**: [`WebhookSink::push`] only appends to a bounded queue per
//!   webhook; when full the oldest queued event is dropped and counted
//!   (`citybrain_webhook_dropped_total{webhook,reason="queue_full"}`).
//! - Suppressed incidents (see `incident::dispatch::silence`) are not pushed.
//!
//! Body: `{"seq": 7, "event": "incident.changed", "at": "<RFC 3339>", "data": {...}}` where
//! `data` is the incident, dispatch or escalation as the API shows it.

mod config;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

use super::dispatch::DispatchEvent;
use crate::incident::dispatch::Clock;
use crate::ingest::mqtt::{install_crypto_provider, wait_shutdown};
use crate::telemetry::Metrics;

pub use config::{WebhookConfig, WebhookEventKind};

/// Signature header.
pub const SIGNATURE_HEADER: &str = "X-Citybrain-Signature";
/// Event-name header.
pub const EVENT_HEADER: &str = "X-Citybrain-Event";
/// Sequence-number header.
pub const DELIVERY_HEADER: &str = "X-Citybrain-Delivery";

/// Why the webhook sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The HTTP client could not be built (TLS setup).
    #[error("webhook http client: {0}")]
    Client(String),
}

/// An event to push: its kind, wire name and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// Kind, for the per-webhook filter.
    pub kind: WebhookEventKind,
    /// Wire name (`incident.changed`).
    pub name: &'static str,
    /// The `data` of the body.
    pub data: serde_json::Value,
}

impl WebhookEvent {
    /// The webhook event for a dispatcher event; `None` for suppressed incidents.
    pub fn from_dispatch(event: &DispatchEvent) -> Option<WebhookEvent> {
        let (kind, name, data) = match event {
            DispatchEvent::Incident {
                suppressed: true, ..
            } => return None,
            DispatchEvent::Incident { incident, .. } => (
                WebhookEventKind::Incident,
                "incident.changed",
                serde_json::to_value(incident),
            ),
            DispatchEvent::Dispatch(d) => (
                WebhookEventKind::Dispatch,
                "dispatch.changed",
                serde_json::to_value(d),
            ),
            DispatchEvent::Escalation(e) => (
                WebhookEventKind::Escalation,
                "dispatch.escalated",
                serde_json::to_value(e),
            ),
        };
        Some(WebhookEvent {
            kind,
            name,
            data: data.ok()?,
        })
    }
}

/// `sha256=<hex>` of `body` under `secret`: the value of [`SIGNATURE_HEADER`].
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug)]
struct Delivery {
    seq: u64,
    name: &'static str,
    body: Bytes,
    signature: String,
}

/// Counters of one webhook (also in the metrics).
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Events the receiver accepted (2xx).
    pub delivered: AtomicU64,
    /// Failed attempts (each retried, unless `max_attempts` was reached).
    pub failed_attempts: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Events dropped after `max_attempts`, refused by the receiver (4xx), or missed because
    /// the forwarder fell behind the dispatcher.
    pub dropped_other: AtomicU64,
}

#[derive(Debug)]
struct Hook {
    cfg: WebhookConfig,
    queue: Mutex<VecDeque<Delivery>>,
    ready: Notify,
    stats: WebhookStats,
    metrics: Option<Arc<Metrics>>,
}

impl Hook {
    fn dropped(&self, reason: &str, n: u64) {
        let counter = if reason == "queue_full" {
            &self.stats.dropped_queue_full
        } else {
            &self.stats.dropped_other
        };
        counter.fetch_add(n, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.webhook_dropped_total
                .inc_by([self.cfg.name.as_str(), reason], n);
        }
    }
}

/// Every configured webhook's queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    hooks: Arc<Vec<Arc<Hook>>>,
    seq: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
}

impl WebhookSink {
    /// Starts one delivery worker per webhook; they stop at `shutdown` (queued events are then
    /// lost). Must be called inside a tokio runtime.
    pub fn start(
        configs: Vec<WebhookConfig>,
        clock: Arc<dyn Clock>,
        metrics: Option<Arc<Metrics>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(WebhookSink, Vec<JoinHandle<()>>), WebhookError> {
        let mut hooks = Vec::new();
        let mut tasks = Vec::new();
        if !configs.is_empty() {
            install_crypto_provider();
        }
        for cfg in configs {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(cfg.timeout_ms))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("citybrain/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| WebhookError::Client(e.to_string()))?;
            let hook = Arc::new(Hook {
                queue: Mutex::new(VecDeque::new()),
                ready: Notify::new(),
                stats: WebhookStats::default(),
                metrics: metrics.clone(),
                cfg,
            });
            tasks.push(tokio::spawn(deliver(
                hook.clone(),
                client,
                shutdown.clone(),
            )));
            hooks.push(hook);
        }
        let sink = WebhookSink {
            hooks: Arc::new(hooks),
            seq: Arc::new(AtomicU64::new(0)),
            clock,
        };
        Ok((sink, tasks))
    }

    /// Queues `event` for every webhook that wants it. Never waits.
    pub fn push(&self, event: &WebhookEvent) {
        let wanted: Vec<&Arc<Hook>> = self
            .hooks
            .iter()
            .filter(|h| h.cfg.wants(event.kind))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let body = serde_json::json!({
            "seq": seq, "event": event.name, "at": self.clock.now(), "data": event.data,
        });
        let body = Bytes::from(body.to_string());
        for hook in wanted {
            let delivery = Delivery {
                seq,
                name: event.name,
                signature: sign(hook.cfg.secret.expose(), &body),
                body: body.clone(),
            };
            let dropped = {
                let mut q = hook.queue.lock();
                q.push_back(delivery);
                let over = q.len().saturating_sub(hook.cfg.queue_capacity);
                q.drain(..over).count()
            };
            if dropped > 0 {
                hook.dropped("queue_full", dropped as u64);
            }
            hook.ready.notify_one();
        }
    }

    /// The counters of the webhook named `name`.
    pub fn stats(&self, name: &str) -> Option<&WebhookStats> {
        self.hooks
            .iter()
            .find(|h| h.cfg.name == name)
            .map(|h| &h.stats)
    }

    /// Events waiting in the queue of the webhook named `name` (not counting one in flight).
    pub fn queued(&self, name: &str) -> usize {
        self.hooks
            .iter()
            .find(|h| h.cfg.name == name)
            .map_or(0, |h| h.queue.lock().len())
    }
}

/// Pushes every dispatcher event to the webhooks until `shutdown` or the dispatcher stops.
pub async fn forward(
    mut events: broadcast::Receiver<DispatchEvent>,
    sink: WebhookSink,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            biased;
            _ = wait_shutdown(&mut shutdown) => return,
            e = events.recv() => e,
        };
        match event {
            Ok(e) => {
                if let Some(w) = WebhookEvent::from_dispatch(&e) {
                    sink.push(&w);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "webhook forwarder fell behind; events dropped");
                for hook in sink.hooks.iter() {
                    hook.dropped("lagged", n);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

enum Outcome {
    Delivered,
    Retry(String),
    Refused(u16),
}

/// The worker of one webhook: one event at a time, in order, retried with backoff.
async fn deliver(hook: Arc<Hook>, client: reqwest::Client, mut shutdown: watch::Receiver<bool>) {
    let name = hook.cfg.name.clone();
    loop {
        let next = hook.queue.lock().pop_front();
        let Some(d) = next else {
            tokio::select! {
                biased;
                _ = wait_shutdown(&mut shutdown) => return,
                _ = hook.ready.notified() => continue,
            }
        };
        let mut delay = Duration::from_millis(hook.cfg.retry_min_ms);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = tokio::select! {
                biased;
                _ = wait_shutdown(&mut shutdown) => return,
                o = post(&client, &hook.cfg.url, &d) => o,
            };
            let label = match &outcome {
                Outcome::Delivered => "delivered",
                Outcome::Retry(_) => "failed",
                Outcome::Refused(_) => "refused",
            };
            if let Some(m) = &hook.metrics {
                m.webhook_deliveries_total.inc([name.as_str(), label]);
            }
            match outcome {
                Outcome::Delivered => {
                    hook.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Outcome::Refused(status) => {
                    tracing::warn!(webhook = %name, seq = d.seq, status, "webhook refused the event; dropped");
                    hook.dropped("refused", 1);
                    break;
                }
                Outcome::Retry(why) => {
                    hook.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if hook.cfg.max_attempts > 0 && attempt >= hook.cfg.max_attempts {
                        tracing::warn!(webhook = %name, seq = d.seq, attempt, error = %why, "webhook gave up on an event");
                        hook.dropped("gave_up", 1);
                        break;
                    }
                    tracing::debug!(webhook = %name, seq = d.seq, attempt, error = %why, "webhook delivery failed; retrying");
                    tokio::select! {
                        biased;
                        _ = wait_shutdown(&mut shutdown) => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_millis(hook.cfg.retry_max_ms));
                }
            }
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, d: &Delivery) -> Outcome {
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, d.signature.as_str())
        .header(EVENT_HEADER, d.name)
        .header(DELIVERY_HEADER, d.seq.to_string())
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Outcome::Delivered,
        Ok(r) => {
            let s = r.status().as_u16();
            if s >= 500 || s == 408 || s == 429 {
                Outcome::Retry(format!("HTTP {s}"))
            } else {
                Outcome::Refused(s)
            }
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn suppressed_incidents_are_not_pushed() {
        let incident: crate::model::Incident = serde_json::from_value(serde_json::json!({
            "id": "I1", "kind": "k", "severity": "high", "status": "open",
            "location": {"lat": 30.0, "lon": 120.0}, "departments": [],
            "opened_at": "2026-11-22T08:15:00Z", "detected_at": "2026-11-22T08:15:00Z",
            "updated_at": "2026-11-22T08:15:00Z", "evidence": []
        }))
        .expect("incident");
        let quiet = DispatchEvent::Incident {
            incident: incident.clone(),
            suppressed: true,
        };
        assert!(WebhookEvent::from_dispatch(&quiet).is_none());
        let loud = DispatchEvent::Incident {
            incident,
            suppressed: false,
        };
        let e = WebhookEvent::from_dispatch(&loud).expect("pushed");
        assert_eq!(
            (e.kind, e.name),
            (WebhookEventKind::Incident, "incident.changed")
        );
        assert_eq!(e.data["id"], "I1");
    }
}
