//! The contract's recording format (`shared/contracts/devices.md`, "Recordings"): one JSON object
//! per line, in arrival order, `{"t_ms":…,"topic":…,"payload":"<utf8>"}`, with `payload_b64`
//! (standard base64) instead of `payload` when the payload is not valid UTF-8.
//!
//! This module owns [`RawMessage`] (what crossed the broker, also produced by the live MQTT
//! source), writing one line, and reading a recording back. Reading is tolerant: a bad line yields
//! an error naming its 1-based line number and the iteration carries on with the next line, so one
//! corrupt line never hides the rest of a recording. Blank lines are skipped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::model::EventTime;

/// One message as it crossed the broker: when it arrived, on which topic, with which bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Arrival time (wall clock when received live, `t_ms` when replayed).
    pub arrival: EventTime,
    /// MQTT topic.
    pub topic: String,
    /// Payload bytes, unchanged.
    pub payload: Vec<u8>,
}

/// Errors opening or reading a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file could not be opened.
    #[error("cannot open recording {path}: {source}")]
    Open {
        /// File that failed.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// One line is not a valid recording line; iteration continues after it.
    #[error("line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading failed; iteration stops after this error.
    #[error("line {line}: read failed: {source}")]
    Read {
        /// 1-based number of the line being read.
        line: u64,
        /// Why.
        source: io::Error,
    },
}

/// A line as written (borrows the message).
#[derive(Serialize)]
struct LineOut<'a> {
    t_ms: i64,
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
}

/// A line as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    t_ms: i64,
    topic: String,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    payload_b64: Option<String>,
}

/// Writes `m` as one recording line (with the trailing newline).
pub fn write_line(w: &mut impl Write, m: &RawMessage) -> io::Result<()> {
    let (payload, payload_b64) = match std::str::from_utf8(&m.payload) {
        Ok(s) => (Some(s), None),
        Err(_) => (None, Some(B64.encode(&m.payload))),
    };
    let line = LineOut {
        t_ms: m.arrival.millis(),
        topic: &m.topic,
        payload,
        payload_b64,
    };
    serde_json::to_writer(&mut *w, &line).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// Parses one recording line (without its newline).
pub fn parse_line(line: &str) -> Result<RawMessage, String> {
    let l: LineIn = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let payload = match (l.payload, l.payload_b64) {
        (Some(p), None) => p.into_bytes(),
        (None, Some(b)) => B64
            .decode(b.as_bytes())
            .map_err(|e| format!("payload_b64: {e}"))?,
        (Some(_), Some(_)) => return Err("both payload and payload_b64 present".into()),
        (None, None) => return Err("missing payload (or payload_b64)".into()),
    };
    if l.topic.is_empty() {
        return Err("empty topic".into());
    }
    Ok(RawMessage {
        arrival: EventTime(l.t_ms),
        topic: l.topic,
        payload,
    })
}

/// Iterates the messages of a recording; see the module docs for error handling.
pub struct RecordingReader<R: BufRead> {
    inner: R,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> RecordingReader<R> {
    /// Reads a recording from any buffered reader.
    pub fn new(inner: R) -> Self {
        RecordingReader {
            inner,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// Number of lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line
    }
}

impl<R: BufRead> Iterator for RecordingReader<R> {
    type Item = Result<RawMessage, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            let n = match self.inner.read_until(b'\n', &mut self.buf) {
                Ok(n) => n,
                Err(source) => {
                    self.done = true;
                    return Some(Err(RecordingError::Read {
                        line: self.line + 1,
                        source,
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                return None;
            }
            self.line += 1;
            let line = self.line;
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t.trim(),
                Err(e) => {
                    let reason = format!("not UTF-8: {e}");
                    return Some(Err(RecordingError::BadLine { line, reason }));
                }
            };
            if text.is_empty() {
                continue;
            }
            return Some(
                parse_line(text).map_err(|reason| RecordingError::BadLine { line, reason }),
            );
        }
        None
    }
}

/// Opens a recording file.
pub fn open_recording(path: &Path) -> Result<RecordingReader<BufReader<File>>, RecordingError> {
    let file = File::open(path).map_err(|source| RecordingError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok(RecordingReader::new(BufReader::new(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: i64, topic: &str, payload: &[u8]) -> RawMessage {
        RawMessage {
            arrival: EventTime(t),
            topic: topic.into(),
            payload: payload.to_vec(),
        }
    }

    fn read_all(bytes: &[u8]) -> Vec<Result<RawMessage, RecordingError>> {
        RecordingReader::new(bytes).collect()
    }

    #[test]
    fn utf8_payload_is_written_as_the_contract_shows() {
        let mut out = Vec::new();
        let m = msg(
            1795335330250,
            "city/traffic/cameras/TC-0042/stats",
            br#"{"camera_id":"TC-0042"}"#,
        );
        write_line(&mut out, &m).expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "{\"t_ms\":1795335330250,\"topic\":\"city/traffic/cameras/TC-0042/stats\",\
             \"payload\":\"{\\\"camera_id\\\":\\\"TC-0042\\\"}\"}\n"
        );
    }

    #[test]
    fn round_trip_keeps_order_bytes_and_times_including_non_utf8() {
        let msgs = vec![
            msg(1, "city/a", b"hello"),
            msg(2, "city/b", &[0xff, 0x00, 0xfe, b'x']),
            msg(2, "city/c", b""),
            msg(-5, "city/d", "naïve ✓ \n \"quoted\"".as_bytes()),
            msg(3, "city/e", &[0xc3]), // truncated UTF-8 sequence
        ];
        let mut out = Vec::new();
        for m in &msgs {
            write_line(&mut out, m).expect("writes");
        }
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.lines().count(), msgs.len());
        assert!(text
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("\"payload_b64\":\"/wD+eA==\"")));
        let back: Vec<RawMessage> = read_all(&out)
            .into_iter()
            .map(|r| r.expect("valid line"))
            .collect();
        assert_eq!(back, msgs);
    }

    #[test]
    fn bad_lines_are_reported_with_line_numbers_and_iteration_continues() {
        let input = b"{\"t_ms\":1,\"topic\":\"city/a\",\"payload\":\"x\"}\n\
            not json\n\
            \n\
            {\"t_ms\":2,\"topic\":\"city/a\"}\n\
            {\"t_ms\":3,\"topic\":\"city/a\",\"payload\":\"x\",\"payload_b64\":\"eA==\"}\n\
            {\"t_ms\":4,\"topic\":\"city/a\",\"payload_b64\":\"!!\"}\n\
            {\"t_ms\":5,\"topic\":\"city/a\",\"payload\":\"x\",\"extra\":1}\n\
            \xff\xfe\n\
            {\"t_ms\":6,\"topic\":\"city/z\",\"payload_b64\":\"AAE=\"}";
        let results = read_all(input);
        let bad: Vec<u64> = results
            .iter()
            .filter_map(|r| match r {
                Err(RecordingError::BadLine { line, .. }) => Some(*line),
                _ => None,
            })
            .collect();
        assert_eq!(bad, vec![2, 4, 5, 6, 7, 8]);
        let good: Vec<RawMessage> = results.into_iter().filter_map(Result::ok).collect();
        assert_eq!(
            good,
            vec![msg(1, "city/a", b"x"), msg(6, "city/z", &[0, 1])]
        );
        let err = read_all(b"\n{")
            .into_iter()
            .find_map(Result::err)
            .expect("an error");
        assert!(err.to_string().starts_with("line 2: invalid JSON"), "{err}");
    }

    #[test]
    fn open_recording_reads_a_file_and_names_a_missing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rec.ndjson");
        let mut f = File::create(&path).expect("create");
        write_line(&mut f, &msg(7, "city/x", b"{}")).expect("writes");
        drop(f);
        let got: Vec<_> = open_recording(&path)
            .expect("opens")
            .filter_map(Result::ok)
            .collect();
        assert_eq!(got, vec![msg(7, "city/x", b"{}")]);
        match open_recording(&dir.path().join("missing.ndjson")) {
            Err(e @ RecordingError::Open { .. }) => assert!(e.to_string().contains("missing")),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("missing file opened"),
        }
    }
}
