//! The dead-letter record: every message or reading that could not be used, with its reason.
//!
//! Kept three ways: an optional append-only NDJSON file (one `DeadLetter` per line, for
//! engineers to inspect and re-drive), the most recent entries in memory (for the API), and a
//! count per reason (for metrics and the replay summary). Writing never blocks the pipeline on
//! anything slower than a buffered file write, and an I/O error is logged, never fatal.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use parking_lot::Mutex;

use crate::model::DeadLetter;

/// Most recent dead letters kept in memory.
const RECENT: usize = 1000;

/// The dead-letter record.
#[derive(Debug, Default)]
pub struct DeadLetterLog {
    file: Option<Mutex<BufWriter<File>>>,
    recent: Mutex<VecDeque<DeadLetter>>,
    counts: Mutex<BTreeMap<String, u64>>,
}

impl DeadLetterLog {
    /// In memory only.
    pub fn in_memory() -> DeadLetterLog {
        DeadLetterLog::default()
    }

    /// Also appending to `path` (created if missing).
    pub fn with_file(path: &Path) -> std::io::Result<DeadLetterLog> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(DeadLetterLog {
            file: Some(Mutex::new(BufWriter::new(f))),
            ..Default::default()
        })
    }

    /// Records one dead letter.
    pub fn record(&self, dl: DeadLetter) {
        *self.counts.lock().entry(dl.reason.clone()).or_insert(0) += 1;
        if let Some(file) = &self.file {
            let mut w = file.lock();
            let line = serde_json::to_string(&dl).unwrap_or_default();
            if let Err(e) = writeln!(w, "{line}") {
                tracing::warn!(error = %e, "dead-letter file write failed");
            }
        }
        let mut recent = self.recent.lock();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(dl);
    }

    /// Counts per reason.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().clone()
    }

    /// Total recorded.
    pub fn total(&self) -> u64 {
        self.counts.lock().values().sum()
    }

    /// Most recent first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<DeadLetter> {
        self.recent
            .lock()
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }

    /// Flushes the file, if any.
    pub fn flush(&self) {
        if let Some(file) = &self.file {
            if let Err(e) = file.lock().flush() {
                tracing::warn!(error = %e, "dead-letter file flush failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventTime;

    fn dl(reason: &str) -> DeadLetter {
        DeadLetter {
            arrival: EventTime(1),
            topic: "city/x".into(),
            reason: reason.into(),
            detail: "bad".into(),
            payload: "{".into(),
        }
    }

    #[test]
    fn counts_keeps_recent_and_writes_ndjson() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dl.ndjson");
        let log = DeadLetterLog::with_file(&path).expect("open");
        log.record(dl("malformed"));
        log.record(dl("malformed"));
        log.record(dl("late"));
        log.flush();
        assert_eq!(log.counts().get("malformed"), Some(&2));
        assert_eq!(log.total(), 3);
        assert_eq!(log.recent(1)[0].reason, "late");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<DeadLetter> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].reason, "late");
    }
}
