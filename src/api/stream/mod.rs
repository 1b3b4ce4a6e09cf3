//! The live stream: `GET /api/v1/stream`, Server-Sent Events of every incident change, device
//! status change and crew change, each with a sequence number (the SSE `id:`).
//!
//! One [`StreamHub`] per server: a feeder task subscribes to the incident store, the device table
//! and the crew feed, numbers every change and keeps the last [`RING_CAPACITY`] of them in a
//! ring. Each connection is only a cursor into that ring, woken by a `watch` channel, so a slow
//! client never slows the feeder or the others: it either catches up from the ring or, once the
//! ring has moved past it, gets one `resync` event (reload everything over REST) and carries on
//! from the newest change.
//!
//! Reconnecting with `Last-Event-ID: N` (browsers do this by themselves) or `?since=N` replays
//! every change after `N`. Without either, a connection starts at the newest change. EventSource
//! cannot set headers, so this route alone also accepts `?access_token=` (see
//! [`query_token`]); the token then appears in the URL, so proxies must not log query strings.
//!
//! Sequence numbers restart at 1 when the server restarts; every connection first gets a
//! `hello` event (no `id:`) with the server's `epoch`, so a client that sees a new epoch reloads.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::Extension;
use futures_util::Stream;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::auth::{Permission, Principal};
use super::{ApiError, ApiState};

mod feed;
#[cfg(test)]
mod tests;

/// The stream's route (the only one that accepts `?access_token=`).
pub const STREAM_PATH: &str = "/api/v1/stream";
/// Changes kept for reconnecting clients: at a few changes per second, hours of history.
pub const RING_CAPACITY: usize = 10_000;
/// ...and at most this many bytes of them: an incident with much evidence is tens of KB, so a
/// count alone would not bound memory.
const RING_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Most events taken from the ring per wake-up, so a far-behind client is served in slices.
const BATCH: usize = 256;
/// Comment lines keep idle connections open through proxies that drop silent ones.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often the crew feed (a plain map, without a change feed) is compared with its last copy.
pub(super) const CREW_POLL: Duration = Duration::from_secs(1);

/// Why a stream request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// `Last-Event-ID` is not a sequence number.
    #[error("invalid Last-Event-ID {0:?}: expected a sequence number")]
    BadLastEventId(String),
    /// The query string has an unknown or malformed parameter.
    #[error("invalid query string: {0}")]
    BadQuery(String),
    /// The router was used without [`serve`](super::serve), which runs the hub.
    #[error("the live stream is not running on this server")]
    NotRunning,
}

impl From<StreamError> for ApiError {
    fn from(err: StreamError) -> Self {
        match err {
            StreamError::NotRunning => ApiError::NotFound(err.to_string()),
            _ => ApiError::BadRequest(err.to_string()),
        }
    }
}

/// `GET /api/v1/stream` query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamQuery {
    /// Replay every change after this sequence number.
    since: Option<u64>,
    /// Bearer token (consumed by [`query_token`]; accepted here so it is not "unknown").
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// One numbered change, serialized once and shared by every connection.
#[derive(Debug)]
struct Numbered {
    seq: u64,
    kind: &'static str,
    data: String,
}

/// What a cursor finds in the ring.
#[derive(Debug)]
enum Batch {
    /// Changes after the cursor (empty: up to date).
    Events(Vec<Arc<Numbered>>),
    /// The cursor is before the oldest kept change, or after the newest (the server
    /// restarted): the client must reload; `latest` is where it continues from.
    Resync { latest: u64, reason: &'static str },
}

struct Ring {
    events: VecDeque<Arc<Numbered>>,
    /// Sequence number of the newest change (0: none yet).
    latest: u64,
    /// Most changes kept.
    capacity: usize,
    /// Most bytes of event data kept (the newest change is always kept).
    max_bytes: usize,
    /// Bytes of event data held now.
    bytes: usize,
}

impl Ring {
    fn new(capacity: usize, max_bytes: usize) -> Ring {
        Ring {
            events: VecDeque::with_capacity(capacity.clamp(1, 1024)),
            latest: 0,
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
        }
    }

    fn push(&mut self, kind: &'static str, data: String) -> u64 {
        self.latest += 1;
        self.bytes += data.len();
        self.events.push_back(Arc::new(Numbered {
            seq: self.latest,
            kind,
            data,
        }));
        while self.events.len() > self.capacity
            || (self.bytes > self.max_bytes && self.events.len() > 1)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.data.len();
            }
        }
        self.latest
    }

    fn after(&self, cursor: u64) -> Batch {
        if cursor > self.latest {
            return Batch::Resync {
                latest: self.latest,
                reason: "sequence number from an earlier server run",
            };
        }
        let oldest = self.events.front().map_or(self.latest + 1, |e| e.seq);
        if cursor + 1 < oldest {
            return Batch::Resync {
                latest: self.latest,
                reason: "too far behind: missed changes are no longer kept",
            };
        }
        // Sequence numbers are contiguous in the ring, so the position is arithmetic.
        let start = usize::try_from(cursor + 1 - oldest).unwrap_or(usize::MAX);
        Batch::Events(
            self.events
                .iter()
                .skip(start)
                .take(BATCH)
                .cloned()
                .collect(),
        )
    }
}

/// `hello` event body.
#[derive(Debug, Serialize)]
struct Hello<'a> {
    epoch: &'a str,
    latest: u64,
    ring_capacity: usize,
}

/// The numbered change log behind the stream; see the module doc.
pub struct StreamHub {
    ring: Mutex<Ring>,
    /// Newest sequence number, to wake connections.
    latest: watch::Sender<u64>,
    /// Set once when the server shuts down: every connection ends.
    closed: watch::Sender<bool>,
    /// Identifies this server run (sequence numbers restart with it).
    epoch: String,
}

impl std::fmt::Debug for StreamHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHub")
            .field("epoch", &self.epoch)
            .field("latest", &*self.latest.borrow())
            .finish()
    }
}

impl StreamHub {
    /// An empty hub keeping the last `capacity` changes (at least one) and at most
    /// `max_bytes` of them (the newest is always kept).
    pub fn new(capacity: usize, max_bytes: usize) -> Arc<StreamHub> {
        Arc::new(StreamHub {
            ring: Mutex::new(Ring::new(capacity, max_bytes)),
            latest: watch::channel(0).0,
            closed: watch::channel(false).0,
            epoch: format!("{:x}", chrono::Utc::now().timestamp_micros()),
        })
    }

    /// A hub fed from `state` by a task on the current tokio runtime (ends on [`close`]).
    ///
    /// [`close`]: StreamHub::close
    pub fn start(state: &ApiState) -> Arc<StreamHub> {
        let hub = StreamHub::new(RING_CAPACITY, RING_MAX_BYTES);
        // Subscribe before returning, so no change made after `start` can be missed.
        let feeds = feed::Feeds::subscribe(state);
        tokio::spawn(feeds.run(hub.clone()));
        hub
    }

    /// Appends one change and wakes every connection; returns its sequence number.
    pub fn publish<T: Serialize>(&self, kind: &'static str, value: &T) -> Option<u64> {
        let data = match serde_json::to_string(value) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, kind, "stream event not serializable; dropped");
                return None;
            }
        };
        let seq = self.ring.lock().push(kind, data);
        self.latest.send_replace(seq);
        Some(seq)
    }

    /// Sequence number of the newest change (0: none yet).
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Ends every connection (and the feeder): called when the server starts shutting down,
    /// since graceful shutdown otherwise waits for these never-ending responses.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// A watch that turns true on [`StreamHub::close`].
    pub(super) fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    fn after(&self, cursor: u64) -> Batch {
        self.ring.lock().after(cursor)
    }
}

/// Middleware: on the stream route only, turns `?access_token=T` into `Authorization: Bearer T`
/// (an explicit header wins), so the ordinary auth check applies unchanged.
pub(super) async fn query_token(mut req: Request, next: Next) -> Response {
    if req.uri().path() == STREAM_PATH && !req.headers().contains_key(header::AUTHORIZATION) {
        let token = Query::<std::collections::HashMap<String, String>>::try_from_uri(req.uri())
            .ok()
            .and_then(|Query(mut q)| q.remove("access_token"));
        if let Some(value) = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            req.headers_mut().insert(header::AUTHORIZATION, value);
        }
    }
    next.run(req).await
}

/// `GET /api/v1/stream`.
pub(super) async fn stream(
    caller: Principal,
    hub: Option<Extension<Arc<StreamHub>>>,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Permission::Read, "read the live stream")?;
    let Extension(hub) = hub.ok_or(StreamError::NotRunning)?;
    let q = q
        .map(|Query(q)| q)
        .map_err(|r| StreamError::BadQuery(r.body_text()))?;
    // EventSource resends the last id by itself; it wins over a stale `since` in the URL.
    let from_header = match headers.get("last-event-id") {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or_default().trim();
            Some(
                text.parse::<u64>()
                    .map_err(|_| StreamError::BadLastEventId(text.to_string()))?,
            )
        }
    };
    let cursor = from_header.or(q.since).unwrap_or_else(|| hub.latest());
    let hello = Event::default().event("hello").json_data(Hello {
        epoch: &hub.epoch,
        latest: hub.latest(),
        ring_capacity: RING_CAPACITY,
    });
    let mut pending = VecDeque::new();
    if let Ok(h) = hello {
        pending.push_back(h);
    }
    let conn = Connection {
        latest_rx: hub.latest.subscribe(),
        closed_rx: hub.closed(),
        hub,
        cursor,
        pending,
    };
    let events = futures_util::stream::unfold(conn, |mut conn| async move {
        conn.next().await.map(|ev| (Ok(ev), conn))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEPALIVE)))
}

/// One client's position in the hub.
struct Connection {
    hub: Arc<StreamHub>,
    /// Newest sequence number already sent.
    cursor: u64,
    pending: VecDeque<Event>,
    latest_rx: watch::Receiver<u64>,
    closed_rx: watch::Receiver<bool>,
}

impl Connection {
    /// The next event to send, waiting for one; `None` once the hub is closed.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.closed_rx.borrow() {
                return None;
            }
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            // Mark the current value seen before reading the ring: a change published after
            // this line wakes `changed()` below, so nothing slips between read and wait.
            self.latest_rx.borrow_and_update();
            match self.hub.after(self.cursor) {
                Batch::Events(events) if !events.is_empty() => {
                    for e in events {
                        self.cursor = e.seq;
                        self.pending.push_back(
                            Event::default()
                                .id(e.seq.to_string())
                                .event(e.kind)
                                .data(&e.data),
                        );
                    }
                }
                Batch::Resync { latest, reason } => {
                    self.cursor = latest;
                    let body = serde_json::json!({ "reason": reason, "latest": latest });
                    // The id moves the client's Last-Event-ID past the gap it is told about.
                    self.pending.push_back(
                        Event::default()
                            .id(latest.to_string())
                            .event("resync")
                            .data(body.to_string()),
                    );
                }
                Batch::Events(_) => {
                    tokio::select! {
                        changed = self.latest_rx.changed() => {
                            if changed.is_err() { return None; }
                        }
                        _ = self.closed_rx.changed() => {}
                    }
                }
            }
        }
    }
}
