//! The city's asset registers: `devices.csv` (where each device is, who owns it, which profile
//! decodes it) and `crews.csv` (field crews, their home base and skills), exported nightly from
//! the GIS with the header rows of `shared/contracts/devices.md`.
//!
//! Loading checks every row and reports every problem at once, each with file, 1-based line (the
//! header is line 1) and column name. Locations and ownership come from here, never from payloads.

use std::collections::BTreeMap;
use std::path::Path;

use super::profile::ProfileSet;
use super::{ConfigError, ConfigErrors};
use crate::model::{Crew, Device, Location};

/// Header of `devices.csv`, exactly.
pub const DEVICES_HEADER: [&str; 6] = [
    "device_id",
    "profile",
    "lat",
    "lon",
    "department",
    "district",
];
/// Header of `crews.csv`, exactly.
pub const CREWS_HEADER: [&str; 5] = ["crew_id", "department", "home_lat", "home_lon", "skills"];

/// Registered devices and crews, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    /// Devices by device id.
    pub devices: BTreeMap<String, Device>,
    /// Crews by crew id.
    pub crews: BTreeMap<String, Crew>,
}

impl Registry {
    /// Loads both registers; with `profiles`, every device's profile must exist.
    pub fn load(
        devices_csv: &Path,
        crews_csv: &Path,
        profiles: Option<&ProfileSet>,
    ) -> Result<Registry, ConfigErrors> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| {
                ConfigError::new(
                    p.display().to_string(),
                    None,
                    "",
                    format!("cannot read: {e}"),
                )
            })
        };
        let (devices, crews) = (read(devices_csv), read(crews_csv));
        let (devices, crews) = match (devices, crews) {
            (Ok(d), Ok(c)) => (d, c),
            (d, c) => return Err(ConfigErrors(d.err().into_iter().chain(c.err()).collect())),
        };
        let dname = devices_csv.display().to_string();
        let cname = crews_csv.display().to_string();
        Registry::from_csv_str(&dname, &devices, &cname, &crews, profiles)
    }

    /// Parses register texts (`*_file` names the source in errors).
    pub fn from_csv_str(
        devices_file: &str,
        devices_text: &str,
        crews_file: &str,
        crews_text: &str,
        profiles: Option<&ProfileSet>,
    ) -> Result<Registry, ConfigErrors> {
        let mut errors = Vec::new();
        let mut reg = Registry::default();
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        for row in rows(devices_file, devices_text, &DEVICES_HEADER, &mut errors) {
            let mut cx = RowCx {
                file: devices_file,
                row: &row,
                errors: &mut errors,
            };
            let (id, profile) = (cx.id(0), cx.text(1));
            let location = cx.location(2, 3);
            let (department, district) = (cx.text(4), row.fields[5].clone());
            if let (Some(set), Some(p)) = (profiles, &profile) {
                if set.get(p).is_none() {
                    let known = set.names().join(", ");
                    cx.err(1, format!("unknown profile {p:?} (known: {known})"));
                }
            }
            let (Some(device_id), Some(profile), Some(location), Some(department)) =
                (id, profile, location, department)
            else {
                continue;
            };
            if let Some(line) = first_line.insert(device_id.clone(), row.line) {
                cx.err(
                    0,
                    format!("duplicate device_id {device_id:?} (first on line {line})"),
                );
                continue;
            }
            let device = Device {
                device_id: device_id.clone(),
                profile,
                location,
                department,
                district,
            };
            reg.devices.insert(device_id, device);
        }
        // Row order within a file (shape errors were found before the field checks).
        errors.sort_by_key(|e| e.line);
        let crew_errors_from = errors.len();
        first_line.clear();
        for row in rows(crews_file, crews_text, &CREWS_HEADER, &mut errors) {
            let mut cx = RowCx {
                file: crews_file,
                row: &row,
                errors: &mut errors,
            };
            let (id, department, home) = (cx.id(0), cx.text(1), cx.location(2, 3));
            let skills: Vec<String> = row.fields[4]
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let (Some(crew_id), Some(department), Some(home)) = (id, department, home) else {
                continue;
            };
            if let Some(line) = first_line.insert(crew_id.clone(), row.line) {
                cx.err(
                    0,
                    format!("duplicate crew_id {crew_id:?} (first on line {line})"),
                );
                continue;
            }
            reg.crews.insert(
                crew_id.clone(),
                Crew {
                    crew_id,
                    department,
                    home,
                    skills,
                },
            );
        }
        errors[crew_errors_from..].sort_by_key(|e| e.line);
        if errors.is_empty() {
            Ok(reg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// A registry from values made in code (later duplicates replace earlier ones).
    pub fn from_parts(devices: Vec<Device>, crews: Vec<Crew>) -> Registry {
        Registry {
            devices: devices
                .into_iter()
                .map(|d| (d.device_id.clone(), d))
                .collect(),
            crews: crews.into_iter().map(|c| (c.crew_id.clone(), c)).collect(),
        }
    }

    /// The device registered as `id`.
    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    /// The crew registered as `id`.
    pub fn crew(&self, id: &str) -> Option<&Crew> {
        self.crews.get(id)
    }
}

/// One data row with its line and the header it is read against.
struct Row {
    line: usize,
    header: &'static [&'static str],
    fields: Vec<String>,
}

/// The data rows of a register with the right number of fields; header and shape problems go to
/// `errors`. A wrong header stops the file (its columns cannot be trusted).
fn rows(
    file: &str,
    text: &str,
    header: &'static [&'static str],
    errors: &mut Vec<ConfigError>,
) -> Vec<Row> {
    // GIS exports often start with a UTF-8 byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut saw_header = false;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                errors.push(ConfigError::new(
                    file,
                    line,
                    "",
                    format!("unreadable CSV: {e}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if !saw_header {
            saw_header = true;
            if record.iter().ne(header.iter().copied()) {
                let got: Vec<&str> = record.iter().collect();
                let msg = format!(
                    "header must be exactly {:?}, got {:?}",
                    header.join(","),
                    got.join(",")
                );
                errors.push(ConfigError::new(file, Some(line), "header", msg));
                return Vec::new();
            }
            continue;
        }
        if record.len() != header.len() {
            let msg = format!(
                "expected {} fields ({}), got {}",
                header.len(),
                header.join(","),
                record.len()
            );
            errors.push(ConfigError::new(file, Some(line), "", msg));
            continue;
        }
        out.push(Row {
            line,
            header,
            fields: record.iter().map(String::from).collect(),
        });
    }
    if !saw_header {
        errors.push(ConfigError::new(
            file,
            Some(1),
            "header",
            "empty file: missing header row",
        ));
    }
    out
}

/// Checks on one row, errors naming the row's line and the column.
struct RowCx<'a> {
    file: &'a str,
    row: &'a Row,
    errors: &'a mut Vec<ConfigError>,
}

impl RowCx<'_> {
    fn err(&mut self, col: usize, message: String) {
        let column = self.row.header[col];
        self.errors.push(ConfigError::new(
            self.file,
            Some(self.row.line),
            column,
            message,
        ));
    }

    /// A non-empty field.
    fn text(&mut self, col: usize) -> Option<String> {
        let v = &self.row.fields[col];
        if v.is_empty() {
            self.err(col, "must not be empty".to_string());
            return None;
        }
        Some(v.clone())
    }

    /// An id: non-empty, no whitespace inside (ids appear in MQTT topic levels).
    fn id(&mut self, col: usize) -> Option<String> {
        let v = self.text(col)?;
        if v.contains(char::is_whitespace) || v.contains(['/', '+', '#']) {
            self.err(
                col,
                format!("id {v:?} must not contain whitespace, '/', '+' or '#'"),
            );
            return None;
        }
        Some(v)
    }

    /// A coordinate in [-limit, limit] degrees.
    fn degrees(&mut self, col: usize, limit: f64) -> Option<f64> {
        let v = &self.row.fields[col];
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x.abs() <= limit => Some(x),
            Ok(_) => {
                self.err(col, format!("{v} is outside [-{limit}, {limit}]"));
                None
            }
            Err(_) => {
                self.err(col, format!("{v:?} is not a number"));
                None
            }
        }
    }

    fn location(&mut self, lat_col: usize, lon_col: usize) -> Option<Location> {
        let (lat, lon) = (self.degrees(lat_col, 90.0), self.degrees(lon_col, 180.0));
        Some(Location {
            lat: lat?,
            lon: lon?,
        })
    }
}

#[cfg(test)]
mod tests;
