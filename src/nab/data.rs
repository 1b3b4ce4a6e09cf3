//! NAB files: reading a data file (`timestamp,value`) and writing a result file
//! (`timestamp,value,anomaly_score`).
//!
//! Timestamps are naive `YYYY-MM-DD HH:MM:SS` (optionally with fractional seconds), read as UTC
//! for the detectors' event time and copied through to the result unchanged, as is the value's
//! text. A bad row is an error naming the file and the 1-based line, never a panic.

use std::io::{Read, Write};
use std::path::Path;

use chrono::NaiveDateTime;

use super::NabError;
use crate::model::EventTime;

/// One row of a data file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The timestamp exactly as written.
    pub timestamp: String,
    /// Its event time (the naive time read as UTC).
    pub ts: EventTime,
    /// The value exactly as written.
    pub value_text: String,
    /// The value.
    pub value: f64,
}

/// Reads a data file.
pub fn read_file(path: &Path) -> Result<Vec<Row>, NabError> {
    let file = std::fs::File::open(path).map_err(|e| NabError::io(path, e))?;
    read_rows(path, file)
}

/// Reads data rows from `input`; `path` names it in errors.
pub fn read_rows(path: &Path, input: impl Read) -> Result<Vec<Row>, NabError> {
    let bad = |line: u64, message: String| NabError::BadRow {
        file: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| bad(1, format!("unreadable header: {e}")))?
        .clone();
    let names: Vec<&str> = header.iter().collect();
    if names.first() != Some(&"timestamp") || names.get(1) != Some(&"value") {
        return Err(bad(
            1,
            format!(
                "header must start with `timestamp,value`, got `{}`",
                names.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(line, format!("unreadable row: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() < 2 {
            return Err(bad(
                line,
                format!("expected `timestamp,value`, got {} field(s)", record.len()),
            ));
        }
        let (timestamp, value_text) = (&record[0], &record[1]);
        let ts = parse_timestamp(timestamp).ok_or_else(|| {
            bad(
                line,
                format!("timestamp `{timestamp}` is not `YYYY-MM-DD HH:MM:SS`"),
            )
        })?;
        let value: f64 = value_text
            .parse()
            .map_err(|_| bad(line, format!("value `{value_text}` is not a number")))?;
        rows.push(Row {
            timestamp: timestamp.to_string(),
            ts,
            value_text: value_text.to_string(),
            value,
        });
    }
    Ok(rows)
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` (or with a `T`) as UTC milliseconds.
fn parse_timestamp(s: &str) -> Option<EventTime> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| EventTime(t.and_utc().timestamp_millis()))
}

/// Writes a result file: the header, then one row per data row with its score.
pub fn write_results(path: &Path, rows: &[Row], scores: &[f64]) -> Result<(), NabError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| NabError::io(dir, e))?;
    }
    let file = std::fs::File::create(path).map_err(|e| NabError::io(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut write = || -> std::io::Result<()> {
        writeln!(out, "timestamp,value,anomaly_score")?;
        for (row, score) in rows.iter().zip(scores) {
            writeln!(out, "{},{},{}", row.timestamp, row.value_text, score)?;
        }
        out.flush()
    };
    write().map_err(|e| NabError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Row>, NabError> {
        read_rows(Path::new("cat/f.csv"), text.as_bytes())
    }

    #[test]
    fn reads_rows_and_keeps_the_text() {
        let rows = read("timestamp,value\n2014-04-01 00:00:00,20.5\n2014-04-01 00:05:00,1e3\n")
            .expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].timestamp, "2014-04-01 00:00:00");
        assert_eq!(rows[0].ts, EventTime(1_396_310_400_000));
        assert_eq!(rows[1].ts.0 - rows[0].ts.0, 300_000);
        assert_eq!(rows[1].value, 1000.0);
        assert_eq!(rows[1].value_text, "1e3");
    }

    #[test]
    fn a_bad_value_names_file_and_line() {
        let err = read("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n")
            .expect_err("bad value");
        let msg = err.to_string();
        assert!(msg.contains("cat/f.csv:3"), "{msg}");
        assert!(msg.contains("`abc`"), "{msg}");
    }

    #[test]
    fn a_bad_timestamp_names_file_and_line() {
        let err = read("timestamp,value\n2014-04-01 00:00:00,1\n04/01/2014,2\n")
            .expect_err("bad timestamp");
        assert!(err.to_string().contains("cat/f.csv:3"), "{err}");
        assert!(err.to_string().contains("04/01/2014"), "{err}");
    }

    #[test]
    fn a_short_row_and_a_wrong_header_are_errors() {
        let err = read("timestamp,value\n2014-04-01 00:00:00\n").expect_err("short row");
        assert!(err.to_string().contains("cat/f.csv:2"), "{err}");
        let err = read("time,val\n2014-04-01 00:00:00,1\n").expect_err("header");
        assert!(err.to_string().contains("cat/f.csv:1"), "{err}");
        let err = read("").expect_err("empty file");
        assert!(err.to_string().contains("cat/f.csv:1"), "{err}");
    }

    #[test]
    fn results_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = read("timestamp,value\n2014-04-01 00:00:00,20\n").expect("valid");
        let path = dir.path().join("cat/f.csv");
        write_results(&path, &rows, &[0.25]).expect("written");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(
            text,
            "timestamp,value,anomaly_score\n2014-04-01 00:00:00,20,0.25\n"
        );
    }
}
