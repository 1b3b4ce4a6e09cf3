//! The writer task: owns the receiving end of the sink's queue, batches points by size or
//! interval, writes them with influxdb2, and spools what the server does not take.
//!
//! Order is the invariant. While the spool holds anything, new batches are appended to it
//! rather than written, and the spool drains oldest-first, one batch per attempt, retried with
//! exponential backoff. So the server receives batches in the order they were made, and a
//! batch leaves the spool only after the server acknowledged it (204). A batch the server
//! refuses as malformed (400/413/422) is dropped and counted: retrying it would block
//! everything behind it forever. Everything else (connection refused, timeouts, 5xx, 401/403
//! while someone fixes a token) is retried.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use super::point::{Encoder, Record};
use super::spool::Spool;
use super::InfluxConfig;
use crate::telemetry::Metrics;

/// Result of one write request.
enum Outcome {
    /// The server took it.
    Written,
    /// Worth trying again later.
    Retry(String),
    /// The server will never take it.
    Rejected(String),
}

/// Exponential backoff between failed attempts.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min_ms: u64, max_ms: u64) -> Backoff {
        let min = Duration::from_millis(min_ms.max(1));
        Backoff {
            min,
            max: Duration::from_millis(max_ms).max(min),
            next: min,
        }
    }

    /// The delay to wait now; doubles the following one.
    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// State of the writer task.
pub(super) struct Writer {
    pub(super) cfg: InfluxConfig,
    pub(super) client: influxdb2::Client,
    pub(super) encoder: Encoder,
    pub(super) rx: mpsc::Receiver<Record>,
    pub(super) spool: Arc<Mutex<Spool>>,
    pub(super) metrics: Arc<Metrics>,
    pending: Vec<u8>,
    pending_points: usize,
    backoff: Backoff,
    /// When the spool may next be tried (now, unless the last attempt failed).
    retry_at: Instant,
    /// Whether the last write succeeded (for logging transitions only).
    up: bool,
}

impl Writer {
    pub(super) fn new(
        cfg: InfluxConfig,
        client: influxdb2::Client,
        encoder: Encoder,
        rx: mpsc::Receiver<Record>,
        spool: Spool,
        metrics: Arc<Metrics>,
    ) -> Writer {
        let backoff = Backoff::new(cfg.retry_min_ms, cfg.retry_max_ms);
        metrics.influx_spool_bytes.set(spool.bytes() as f64);
        Writer {
            cfg,
            client,
            encoder,
            rx,
            spool: Arc::new(Mutex::new(spool)),
            metrics,
            pending: Vec::new(),
            pending_points: 0,
            backoff,
            retry_at: Instant::now(),
            up: true,
        }
    }

    /// Runs until `shutdown` turns true or every sender is gone, then flushes what is pending
    /// (to the server if it is reachable and nothing is spooled, else to the spool).
    pub(super) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.log_readiness().await;
        let mut tick = tokio::time::interval(self.cfg.flush_interval());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A dropped shutdown sender is not a shutdown: the sink then runs until every handle is
        // gone (the queue closes).
        let mut shutdown_open = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let draining = !self.spool.lock().is_empty();
            tokio::select! {
                changed = shutdown.changed(), if shutdown_open => {
                    shutdown_open = changed.is_ok();
                }
                rec = self.rx.recv() => match rec {
                    Some(rec) => self.add(&rec).await,
                    None => break,
                },
                _ = tick.tick() => self.flush().await,
                () = sleep_until(self.retry_at), if draining => self.drain_one().await,
            }
        }
        // Take what was queued before shutdown: the pipeline counted it as handed over.
        self.rx.close();
        while let Some(rec) = self.rx.recv().await {
            self.add(&rec).await;
        }
        self.flush().await;
        let spool = self.spool.lock();
        tracing::info!(
            spooled_batches = spool.len(),
            spooled_points = spool.points(),
            "influx sink stopped"
        );
    }

    /// `ready()`, not `health()`: VictoriaMetrics answers /health with a non-JSON body that
    /// influxdb2 cannot parse. Only logged: the sink spools until the server is up anyway.
    async fn log_readiness(&self) {
        match tokio::time::timeout(self.cfg.timeout(), self.client.ready()).await {
            Ok(Ok(_)) => tracing::info!(url = %self.cfg.url, "influx sink connected"),
            Ok(Err(e)) => {
                tracing::warn!(url = %self.cfg.url, error = %e, "influx not ready; spooling")
            }
            Err(_) => tracing::warn!(url = %self.cfg.url, "influx readiness timed out; spooling"),
        }
    }

    async fn add(&mut self, rec: &Record) {
        let n = self.encoder.encode(rec, &mut self.pending);
        self.pending_points += n.points;
        if n.skipped > 0 {
            self.metrics
                .influx_dropped_points_total
                .inc_by(["invalid"], n.skipped as u64);
        }
        if self.pending_points >= self.cfg.batch_size {
            self.flush().await;
        }
    }

    /// Sends the pending batch, or spools it behind older batches.
    async fn flush(&mut self) {
        if self.pending_points == 0 {
            self.pending.clear();
            return;
        }
        let body = Bytes::from(std::mem::take(&mut self.pending));
        let points = std::mem::take(&mut self.pending_points);
        if !self.spool.lock().is_empty() {
            self.spool_batch(body, points).await;
            return;
        }
        match self.write(body.clone()).await {
            Outcome::Written => self.written(points),
            Outcome::Retry(reason) => {
                self.failed(&reason);
                self.spool_batch(body, points).await;
            }
            Outcome::Rejected(reason) => self.rejected(points, &reason),
        }
    }

    /// Tries the oldest spooled batch once.
    async fn drain_one(&mut self) {
        let spool = self.spool.clone();
        let oldest = tokio::task::spawn_blocking(move || spool.lock().read_oldest()).await;
        let (file, body) = match oldest {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                // An unreadable file would stop the drain forever: set it aside and count it.
                tracing::error!(error = %e, "spooled batch unreadable; dropped");
                let points = self.pop_oldest().await;
                self.metrics
                    .influx_dropped_points_total
                    .inc_by(["spool_error"], points as u64);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "spool read task failed");
                return;
            }
        };
        match self.write(Bytes::from(body)).await {
            Outcome::Written => {
                self.pop_oldest().await;
                self.written(file.points);
                if self.spool.lock().is_empty() {
                    tracing::info!("influx spool drained");
                }
            }
            Outcome::Retry(reason) => self.failed(&reason),
            Outcome::Rejected(reason) => {
                self.pop_oldest().await;
                self.rejected(file.points, &reason);
            }
        }
    }

    async fn write(&self, body: Bytes) -> Outcome {
        let (org, bucket) = (&self.cfg.org, &self.cfg.bucket);
        let request = self.client.write_line_protocol(org, bucket, body);
        match tokio::time::timeout(self.cfg.timeout(), request).await {
            Ok(Ok(())) => Outcome::Written,
            Ok(Err(influxdb2::RequestError::Http { status, text })) => {
                let reason = format!("http {status}: {}", text.trim());
                match status.as_u16() {
                    400 | 413 | 422 => Outcome::Rejected(reason),
                    _ => Outcome::Retry(reason),
                }
            }
            Ok(Err(e)) => Outcome::Retry(e.to_string()),
            Err(_) => Outcome::Retry(format!("timed out after {} ms", self.cfg.timeout_ms)),
        }
    }

    fn written(&mut self, points: usize) {
        self.metrics
            .influx_points_written_total
            .inc_by(points as u64);
        self.backoff.reset();
        self.retry_at = Instant::now();
        if !self.up {
            tracing::info!("influx writes succeeding again");
            self.up = true;
        }
        self.metrics.influx_up.set(1.0);
    }

    fn failed(&mut self, reason: &str) {
        self.metrics.influx_write_errors_total.inc();
        self.metrics.influx_up.set(0.0);
        let delay = self.backoff.step();
        self.retry_at = Instant::now() + delay;
        if self.up {
            tracing::warn!(error = reason, "influx write failed; spooling and retrying");
            self.up = false;
        } else {
            tracing::debug!(
                error = reason,
                retry_in_ms = delay.as_millis() as u64,
                "influx retry failed"
            );
        }
    }

    fn rejected(&mut self, points: usize, reason: &str) {
        self.metrics.influx_write_errors_total.inc();
        self.metrics
            .influx_dropped_points_total
            .inc_by(["rejected"], points as u64);
        tracing::error!(points, error = reason, "influx rejected a batch; dropped");
        // The server answered, so it is up: carry on with the next batch at once.
        self.retry_at = Instant::now();
    }

    async fn spool_batch(&mut self, body: Bytes, points: usize) {
        let spool = self.spool.clone();
        let pushed = tokio::task::spawn_blocking(move || spool.lock().push(&body, points)).await;
        match pushed {
            Ok(Ok(evicted)) => {
                self.metrics.influx_batches_spooled_total.inc();
                if evicted.points > 0 || evicted.batches > 0 {
                    tracing::warn!(
                        batches = evicted.batches,
                        points = evicted.points,
                        "influx spool full; oldest batches dropped"
                    );
                    self.metrics
                        .influx_dropped_points_total
                        .inc_by(["spool_full"], evicted.points as u64);
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, points, "could not spool influx batch; dropped");
                self.metrics
                    .influx_dropped_points_total
                    .inc_by(["spool_error"], points as u64);
            }
            Err(e) => {
                tracing::error!(error = %e, points, "spool write task failed; batch dropped");
                self.metrics
                    .influx_dropped_points_total
                    .inc_by(["spool_error"], points as u64);
            }
        }
        self.update_spool_gauge();
    }

    /// Deletes the oldest spooled batch; returns its point count.
    async fn pop_oldest(&mut self) -> usize {
        let spool = self.spool.clone();
        let popped = tokio::task::spawn_blocking(move || spool.lock().pop_oldest()).await;
        self.update_spool_gauge();
        match popped {
            Ok(Ok(f)) => f.map_or(0, |f| f.points),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not delete spooled batch");
                0
            }
            Err(e) => {
                tracing::error!(error = %e, "spool delete task failed");
                0
            }
        }
    }

    fn update_spool_gauge(&self) {
        let bytes = self.spool.lock().bytes();
        self.metrics.influx_spool_bytes.set(bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(100, 350);
        let steps: Vec<u128> = (0..4).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(100));
    }
}
