//! The `influx:` config block ([`InfluxConfig`]) and its validation. Absent means the sink is
//! off; present, every field but `url`, `org` and `bucket` has a default.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ingest::mqtt::Secret;

/// Where and how the InfluxDB sink writes (InfluxDB v2 write API, or anything that speaks it,
/// such as VictoriaMetrics).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Base URL of the server (`http://influx.city.local:8086`); `/api/v2/write` is appended.
    pub url: String,
    /// Organisation to write to. Also written as the `org` tag on every point, because
    /// VictoriaMetrics ignores the query parameter.
    pub org: String,
    /// Bucket to write to. Also written as the `bucket` tag on every point (same reason).
    pub bucket: String,
    /// API token (`Authorization: Token ...`); leave out for servers without auth.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Points per write request; a batch is sent when it is this big or `flush_interval_ms`
    /// has passed, whichever comes first.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest time a point waits in memory before its batch is sent, in milliseconds.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Directory for batches that could not be written (one fsync'd line-protocol file per
    /// batch). Batches found here at start-up are sent first, so a restart loses nothing.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Upper bound on the spool's size on disk, in bytes. When a new batch would pass it the
    /// oldest batches are deleted and counted in
    /// `citybrain_influx_dropped_points_total{reason="spool_full"}`.
    #[serde(default = "default_max_spool_bytes")]
    pub max_spool_bytes: u64,
    /// First delay before retrying after a failed write, in milliseconds; doubles on each
    /// further failure up to `retry_max_ms`, and resets after a successful write.
    #[serde(default = "default_retry_min_ms")]
    pub retry_min_ms: u64,
    /// Longest delay between retries, in milliseconds (also bounds how long after the server
    /// comes back the spool starts draining).
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Records (a message's readings, an anomaly or an incident change) queued between the
    /// pipeline and the writer. When full the pipeline drops instead of waiting, counted in
    /// `citybrain_influx_dropped_points_total{reason="queue_full"}`.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Longest a single write request may take before it counts as failed, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_batch_size() -> usize {
    5000
}
fn default_flush_interval_ms() -> u64 {
    1000
}
fn default_spool_dir() -> PathBuf {
    PathBuf::from("./spool")
}
fn default_max_spool_bytes() -> u64 {
    // 1 GiB: at ~120 bytes a point, about 9 million points (hours of a city at full rate).
    1 << 30
}
fn default_retry_min_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    30_000
}
fn default_queue_capacity() -> usize {
    10_000
}
fn default_timeout_ms() -> u64 {
    10_000
}

impl InfluxConfig {
    /// A config with every default, for `url`, `org` and `bucket`.
    pub fn new(url: impl Into<String>, org: impl Into<String>, bucket: impl Into<String>) -> Self {
        InfluxConfig {
            url: url.into(),
            org: org.into(),
            bucket: bucket.into(),
            token: None,
            batch_size: default_batch_size(),
            flush_interval_ms: default_flush_interval_ms(),
            spool_dir: default_spool_dir(),
            max_spool_bytes: default_max_spool_bytes(),
            retry_min_ms: default_retry_min_ms(),
            retry_max_ms: default_retry_max_ms(),
            queue_capacity: default_queue_capacity(),
            timeout_ms: default_timeout_ms(),
        }
    }

    /// Every problem as `(field, message)`; empty when valid. Checked before anything is built
    /// because influxdb2 panics on an unparsable URL and tokio on a zero-capacity channel.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |field: &str, msg: String| errs.push((field.to_string(), msg));
        match url::Url::parse(&self.url) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                err(
                    "url",
                    format!("{:?} must start with http:// or https://", self.url),
                );
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                err("url", format!("{:?} has no host", self.url));
            }
            Ok(_) => {}
            Err(e) => err("url", format!("{:?} is not a URL: {e}", self.url)),
        }
        if self.org.trim().is_empty() {
            err("org", "must not be empty".into());
        }
        if self.bucket.trim().is_empty() {
            err("bucket", "must not be empty".into());
        }
        if !(1..=1_000_000).contains(&self.batch_size) {
            err(
                "batch_size",
                format!("{} is not between 1 and 1000000", self.batch_size),
            );
        }
        if !(1..=3_600_000).contains(&self.flush_interval_ms) {
            err(
                "flush_interval_ms",
                format!("{} is not between 1 and 3600000", self.flush_interval_ms),
            );
        }
        if self.spool_dir.as_os_str().is_empty() {
            err("spool_dir", "must not be empty".into());
        }
        if self.max_spool_bytes < 1 << 20 {
            err(
                "max_spool_bytes",
                format!("{} is below 1 MiB (1048576)", self.max_spool_bytes),
            );
        }
        if self.retry_min_ms == 0 {
            err("retry_min_ms", "must be at least 1".into());
        }
        if self.retry_max_ms < self.retry_min_ms {
            err(
                "retry_max_ms",
                format!(
                    "{} is below retry_min_ms ({})",
                    self.retry_max_ms, self.retry_min_ms
                ),
            );
        }
        if !(1..=10_000_000).contains(&self.queue_capacity) {
            err(
                "queue_capacity",
                format!("{} is not between 1 and 10000000", self.queue_capacity),
            );
        }
        if self.timeout_ms == 0 {
            err("timeout_ms", "must be at least 1".into());
        }
        errs
    }

    pub(super) fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms.max(1))
    }

    pub(super) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_block_gets_defaults_and_token_is_redacted() {
        let yaml = "url: http://127.0.0.1:8086\norg: city\nbucket: citybrain\ntoken: s3cret\n";
        let cfg: InfluxConfig = serde_saphyr::from_str(yaml).expect("parses");
        assert_eq!(cfg.batch_size, 5000);
        assert_eq!(cfg.flush_interval_ms, 1000);
        assert_eq!(cfg.spool_dir, PathBuf::from("./spool"));
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert_eq!(cfg.token.as_ref().map(Secret::expose), Some("s3cret"));
    }

    #[test]
    fn app_config_block_is_optional_validated_and_path_resolved() {
        use crate::config::app::AppConfig;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("citybrain.yaml");
        std::fs::write(&path, "api: {listen: \"127.0.0.1:9\"}\n").expect("write");
        assert_eq!(
            AppConfig::load(&path).expect("loads").influx,
            None,
            "off by default"
        );
        let block = "influx:\n  url: http://127.0.0.1:8428\n  org: city\n  bucket: cb\n  \
                     spool_dir: spool\n";
        std::fs::write(&path, block).expect("write");
        let cfg = AppConfig::load(&path).expect("loads").influx.expect("on");
        assert_eq!(cfg.spool_dir, dir.path().join("spool"));
        std::fs::write(
            &path,
            format!("{block}  retry_min_ms: 500\n  retry_max_ms: 100\n"),
        )
        .expect("write");
        let errs = AppConfig::load(&path).expect_err("invalid").0;
        assert!(
            errs.iter()
                .any(|e| e.field == "influx.retry_max_ms" && e.line == Some(7)),
            "{errs:?}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let yaml = "url: http://x\norg: o\nbucket: b\nbatch: 5\n";
        assert!(serde_saphyr::from_str::<InfluxConfig>(yaml).is_err());
    }

    #[test]
    fn every_bad_value_is_reported() {
        let mut cfg = InfluxConfig::new("influx:8086 nope", " ", "");
        cfg.batch_size = 0;
        cfg.flush_interval_ms = 0;
        cfg.max_spool_bytes = 10;
        cfg.retry_min_ms = 0;
        cfg.retry_max_ms = 0;
        cfg.queue_capacity = 0;
        cfg.timeout_ms = 0;
        cfg.retry_min_ms = 5;
        cfg.retry_max_ms = 4;
        let fields: Vec<String> = cfg.validate().into_iter().map(|(f, _)| f).collect();
        for f in [
            "url",
            "org",
            "bucket",
            "batch_size",
            "flush_interval_ms",
            "max_spool_bytes",
            "retry_max_ms",
            "queue_capacity",
            "timeout_ms",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} not in {fields:?}");
        }
        assert!(!InfluxConfig::new("ftp://x", "o", "b").validate().is_empty());
        assert!(!InfluxConfig::new("http://", "o", "b").validate().is_empty());
    }
}
