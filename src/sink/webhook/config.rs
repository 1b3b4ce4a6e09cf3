//! Webhook settings (`webhooks:` in the app config) and their validation.

use serde::{Deserialize, Serialize};

use crate::ingest::mqtt::Secret;

/// Which events a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEventKind {
    /// `incident.changed`: an incident opened, grew or moved along its lifecycle.
    Incident,
    /// `dispatch.changed`: a dispatch was sent or answered.
    Dispatch,
    /// `dispatch.escalated`: a crew declined or did not answer, or no crew was available.
    Escalation,
}

/// One webhook (`webhooks:` in the app config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name in logs and metric labels (`ops-bridge`); unique.
    pub name: String,
    /// URL events are POSTed to (`http://` or `https://`). Redirects are not followed.
    pub url: String,
    /// Shared secret the receiver verifies the signature with.
    pub secret: Secret,
    /// Event kinds to send (`incident`, `dispatch`, `escalation`); empty or absent: all.
    #[serde(default)]
    pub events: Vec<WebhookEventKind>,
    /// Events queued for this webhook; when full the oldest is dropped and counted.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Attempts per event before it is dropped and counted; 0: retry until delivered.
    #[serde(default)]
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles per failure up to `retry_max_ms`.
    #[serde(default = "default_retry_min_ms")]
    pub retry_min_ms: u64,
    /// Longest retry delay in milliseconds.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Longest a single POST may take before it counts as failed, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_queue_capacity() -> usize {
    1000
}
fn default_retry_min_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    10_000
}

impl WebhookConfig {
    /// A webhook with the default delivery settings.
    pub fn new(name: &str, url: &str, secret: &str) -> WebhookConfig {
        WebhookConfig {
            name: name.into(),
            url: url.into(),
            secret: Secret::new(secret),
            events: Vec::new(),
            queue_capacity: default_queue_capacity(),
            max_attempts: 0,
            retry_min_ms: default_retry_min_ms(),
            retry_max_ms: default_retry_max_ms(),
            timeout_ms: default_timeout_ms(),
        }
    }

    /// Problems as (field path, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |f: &str, m: String| errs.push((f.to_string(), m));
        if self.name.trim().is_empty() {
            err("name", "must not be empty".into());
        }
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
        if self.secret.expose().len() < 16 {
            err("secret", "must be at least 16 characters".into());
        }
        if !(1..=1_000_000).contains(&self.queue_capacity) {
            err(
                "queue_capacity",
                format!("{} is not between 1 and 1000000", self.queue_capacity),
            );
        }
        if self.retry_min_ms == 0 || self.retry_min_ms > self.retry_max_ms {
            err(
                "retry_min_ms",
                "must be at least 1 and at most retry_max_ms".into(),
            );
        }
        if self.retry_max_ms > 3_600_000 {
            err(
                "retry_max_ms",
                format!("{} is more than an hour", self.retry_max_ms),
            );
        }
        if !(1..=300_000).contains(&self.timeout_ms) {
            err(
                "timeout_ms",
                format!("{} is not between 1 and 300000", self.timeout_ms),
            );
        }
        errs
    }

    pub(super) fn wants(&self, kind: WebhookEventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_fields() {
        let mut cfg = WebhookConfig::new("", "ftp://x", "short");
        cfg.queue_capacity = 0;
        cfg.retry_min_ms = 0;
        let fields: Vec<String> = cfg.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            vec!["name", "url", "secret", "queue_capacity", "retry_min_ms"]
        );
        assert!(WebhookConfig::new("a", "https://h/x", "0123456789abcdef")
            .validate()
            .is_empty());
        let yaml = "{name: a, url: 'http://h', secret: s, retries: 3}";
        assert!(
            crate::config::load_yaml_str::<WebhookConfig>(std::path::Path::new("x"), yaml).is_err()
        );
    }
}
