//! Files of a finite run: the registers (`devices.csv`, `crews.csv`), the recording
//! (`recording.ndjson`, the contract's format) and the ground truth (`truth.json`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{SimError, SimOptions, Simulation};
use crate::ingest::recording::{write_line, RawMessage};
use crate::model::{Crew, Device, EventTime};

/// The recording is pulled from the generator this much event time at a time (bounded memory).
const CHUNK_MS: i64 = 10 * 60_000;

/// What `write_city` wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimSummary {
    /// Lines of `recording.ndjson`.
    pub messages: u64,
    /// Malformed messages among them.
    pub malformed: u64,
    /// Duplicate deliveries among them.
    pub duplicates: u64,
    /// Injected incidents in `truth.json`.
    pub incidents: usize,
    /// Rows of `devices.csv`.
    pub devices: usize,
    /// Arrival of the last message.
    pub last_arrival: Option<EventTime>,
}

/// Writes `devices.csv`, `crews.csv`, `recording.ndjson` and `truth.json` of a finite run into
/// `dir` (created if missing). Same options → byte-identical files.
pub fn write_city(dir: &Path, opts: &SimOptions) -> Result<SimSummary, SimError> {
    if opts.is_endless() {
        return Err(SimError::InvalidOptions(
            "an endless run cannot be written to files".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut sim = Simulation::new(opts.clone());
    let devices_path = dir.join("devices.csv");
    write_file(
        &devices_path,
        &devices_csv(&sim.city().devices).map_err(csv_err(&devices_path))?,
    )?;
    let crews_path = dir.join("crews.csv");
    write_file(
        &crews_path,
        &crews_csv(&sim.city().crews).map_err(csv_err(&crews_path))?,
    )?;

    let rec_path = dir.join("recording.ndjson");
    let io_err = |source| SimError::Io {
        path: rec_path.clone(),
        source,
    };
    let mut out = BufWriter::new(File::create(&rec_path).map_err(io_err)?);
    let mut last_arrival = None;
    let mut write_all =
        |msgs: Vec<RawMessage>, out: &mut BufWriter<File>| -> Result<(), SimError> {
            for m in &msgs {
                write_line(out, m).map_err(io_err)?;
                last_arrival = Some(m.arrival);
            }
            Ok(())
        };
    let end = opts.end_ms();
    let mut cursor = opts.start.millis();
    while cursor < end {
        cursor = cursor.saturating_add(CHUNK_MS).min(end);
        write_all(sim.next_until(EventTime(cursor)), &mut out)?;
    }
    write_all(sim.drain(), &mut out)?;
    out.flush().map_err(io_err)?;

    let truth = sim.truth();
    let json = serde_json::to_vec_pretty(truth).map_err(|source| SimError::Json {
        what: "truth",
        source,
    })?;
    write_file(&dir.join("truth.json"), &json)?;
    Ok(SimSummary {
        messages: truth.messages,
        malformed: truth.malformed,
        duplicates: truth.duplicates,
        incidents: truth.incidents.len(),
        devices: sim.city().devices.len(),
        last_arrival,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    std::fs::write(path, bytes).map_err(|source| SimError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> SimError {
    let path: PathBuf = path.to_path_buf();
    move |source| SimError::Csv {
        path: path.clone(),
        source,
    }
}

/// Coordinates as the GIS exports them: 4 decimals.
fn coord(v: f64) -> String {
    format!("{v:.4}")
}

fn into_bytes(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, csv::Error> {
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// `devices.csv`: `device_id,profile,lat,lon,department,district` with a header row.
pub(crate) fn devices_csv(devices: &[Device]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "device_id",
        "profile",
        "lat",
        "lon",
        "department",
        "district",
    ])?;
    for d in devices {
        let (lat, lon) = (coord(d.location.lat), coord(d.location.lon));
        w.write_record([
            &d.device_id,
            &d.profile,
            &lat,
            &lon,
            &d.department,
            &d.district,
        ])?;
    }
    into_bytes(w)
}

/// `crews.csv`: `crew_id,department,home_lat,home_lon,skills` (skills joined with `;`).
pub(crate) fn crews_csv(crews: &[Crew]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["crew_id", "department", "home_lat", "home_lon", "skills"])?;
    for c in crews {
        let (lat, lon) = (coord(c.home.lat), coord(c.home.lon));
        w.write_record([&c.crew_id, &c.department, &lat, &lon, &c.skills.join(";")])?;
    }
    into_bytes(w)
}
