//! How citybrain's data becomes InfluxDB points: the [`Record`]s the pipeline hands over, and
//! the [`Encoder`] that turns them into line protocol (via influxdb2's `DataPoint`, which does
//! the escaping). The measurements, tags and fields here are documented in `docs/influxdb.md`;
//! change both together.

use std::collections::HashMap;

use influxdb2::models::{DataPoint, WriteDataPoint};

use crate::model::{Anomaly, EventTime, Incident, IncidentStatus, Location, Reading, Severity};

/// One hand-over from the pipeline to the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The readings decoded from one message (sent as one record to keep the hot path to a
    /// single channel operation per message).
    Readings(Vec<Reading>),
    /// An anomaly raised or cleared by a detector.
    Anomaly(Anomaly),
    /// An incident as it stands after a correlator snapshot was applied.
    Incident(IncidentEvent),
}

impl Record {
    /// Points this record becomes (at most; invalid values are skipped when encoding).
    pub fn points(&self) -> usize {
        match self {
            Record::Readings(r) => r.len(),
            Record::Anomaly(_) | Record::Incident(_) => 1,
        }
    }
}

/// The part of an [`Incident`] that is written (not its evidence list, which can be long).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentEvent {
    /// Incident id.
    pub id: String,
    /// Kind (pipeline name).
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Lifecycle status, where known.
    pub status: Option<IncidentStatus>,
    /// Pieces of evidence behind it.
    pub evidence_count: usize,
    /// Where.
    pub location: Location,
    /// Latest change.
    pub updated_at: EventTime,
}

impl From<&Incident> for IncidentEvent {
    fn from(i: &Incident) -> Self {
        IncidentEvent {
            id: i.id.clone(),
            kind: i.kind.clone(),
            severity: i.severity,
            status: Some(i.status),
            evidence_count: i.evidence.len(),
            location: i.location,
            updated_at: i.updated_at,
        }
    }
}

/// Turns records into line protocol, adding the `org`/`bucket` tags and each device's
/// department from the register.
#[derive(Debug, Clone)]
pub struct Encoder {
    org: String,
    bucket: String,
    departments: HashMap<String, String>,
}

/// What one [`Encoder::encode`] call produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoded {
    /// Points appended.
    pub points: usize,
    /// Points left out because a value or time cannot be written (NaN, infinity, a time outside
    /// the nanosecond range): line protocol has no spelling for them, and one bad line would
    /// make the server reject, and the spool retry, the whole batch forever.
    pub skipped: usize,
}

impl Encoder {
    /// An encoder tagging every point with `org` and `bucket`, and readings and anomalies with
    /// the department of their device (`departments`: device id → department).
    pub fn new(org: &str, bucket: &str, departments: HashMap<String, String>) -> Encoder {
        Encoder {
            org: org.to_string(),
            bucket: bucket.to_string(),
            departments,
        }
    }

    /// Appends `record` to `out` as line protocol, one line per point.
    pub fn encode(&self, record: &Record, out: &mut Vec<u8>) -> Encoded {
        let mut n = Encoded::default();
        let mut push = |point: Option<DataPoint>| match point {
            // Writing into a Vec cannot fail; a failure would mean a bug, so skip, don't panic.
            Some(p) if p.write_data_point_to(&mut *out).is_ok() => n.points += 1,
            _ => n.skipped += 1,
        };
        match record {
            Record::Readings(readings) => readings.iter().for_each(|r| push(self.reading(r))),
            Record::Anomaly(a) => push(self.anomaly(a)),
            Record::Incident(i) => push(self.incident(i)),
        }
        n
    }

    fn base(&self, measurement: &str) -> Builder {
        Builder(
            DataPoint::builder(measurement)
                .tag("org", clean_tag(&self.org))
                .tag("bucket", clean_tag(&self.bucket)),
        )
    }

    fn department(&self, device_id: &str) -> Option<&str> {
        self.departments.get(device_id).map(String::as_str)
    }

    fn reading(&self, r: &Reading) -> Option<DataPoint> {
        self.base("reading")
            .tag("device_id", &r.device_id)
            .tag("profile", &r.profile)
            .tag("metric", &r.metric)
            .tag_opt("department", self.department(&r.device_id))
            .finite("value", r.value)?
            .at(r.ts)
    }

    fn anomaly(&self, a: &Anomaly) -> Option<DataPoint> {
        let phase = match a.phase {
            crate::model::Phase::Raised => "raised",
            crate::model::Phase::Cleared => "cleared",
        };
        self.base("anomaly")
            .tag("device_id", &a.device_id)
            .tag("metric", &a.metric)
            .tag("signal", &a.signal)
            .tag("detector", &a.detector)
            .tag("phase", phase)
            .tag_opt("department", self.department(&a.device_id))
            .finite("value", a.value)?
            .finite("score", a.score)?
            .string("reason", &a.reason)
            .at(a.ts)
    }

    fn incident(&self, i: &IncidentEvent) -> Option<DataPoint> {
        self.base("incident")
            .tag("id", &i.id)
            .tag("kind", &i.kind)
            .tag("severity", severity_name(i.severity))
            .tag_opt("status", i.status.map(IncidentStatus::as_str))
            .int("evidence_count", i.evidence_count)
            .finite("lat", i.location.lat)?
            .finite("lon", i.location.lon)?
            .at(i.updated_at)
    }
}

/// Severity as spelled in the API and config.
fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// influxdb2's builder plus the checks line protocol needs that the crate leaves to callers.
struct Builder(influxdb2::models::data_point::DataPointBuilder);

impl Builder {
    /// Line protocol has no empty tag values; a missing tag is the way to say "none".
    fn tag(self, key: &str, value: &str) -> Builder {
        let value = clean_tag(value);
        if value.is_empty() {
            self
        } else {
            Builder(self.0.tag(key, value))
        }
    }

    fn tag_opt(self, key: &str, value: Option<&str>) -> Builder {
        match value {
            Some(v) => self.tag(key, v),
            None => self,
        }
    }

    fn finite(self, key: &str, value: f64) -> Option<Builder> {
        value.is_finite().then(|| Builder(self.0.field(key, value)))
    }

    fn int(self, key: &str, value: usize) -> Builder {
        Builder(self.0.field(key, i64::try_from(value).unwrap_or(i64::MAX)))
    }

    /// The crate escapes only `"` in string fields; backslashes must be doubled too, and a
    /// newline would end the line.
    fn string(self, key: &str, value: &str) -> Builder {
        let v = value.replace('\\', "\\\\").replace(['\n', '\r'], " ");
        Builder(self.0.field(key, v))
    }

    /// Event time in milliseconds becomes nanoseconds (the write API's default precision).
    fn at(self, ts: EventTime) -> Option<DataPoint> {
        let ns = ts.millis().checked_mul(1_000_000)?;
        self.0.timestamp(ns).build().ok()
    }
}

/// The crate escapes `,`, `=` and space in tags but not newlines (which end the line) or a
/// trailing backslash (which would escape the separator after it).
fn clean_tag(v: &str) -> String {
    v.replace(['\n', '\r'], " ").replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Phase;

    fn encoder() -> Encoder {
        let deps = HashMap::from([("PL-1".to_string(), "water".to_string())]);
        Encoder::new("city", "cb", deps)
    }

    fn text(rec: &Record) -> (String, Encoded) {
        let mut out = Vec::new();
        let n = encoder().encode(rec, &mut out);
        (String::from_utf8(out).expect("utf8"), n)
    }

    fn reading(id: &str, value: f64) -> Reading {
        Reading {
            device_id: id.into(),
            profile: "pressure-logger".into(),
            metric: "pressure_kpa".into(),
            ts: EventTime(1_795_000_000_250),
            value,
            seq: None,
            arrival: EventTime(0),
        }
    }

    #[test]
    fn readings_carry_tags_department_and_nanosecond_time() {
        let (lp, n) = text(&Record::Readings(vec![
            reading("PL-1", 372.5),
            reading("X 9", 1.0),
        ]));
        assert_eq!(
            n,
            Encoded {
                points: 2,
                skipped: 0
            }
        );
        let lines: Vec<&str> = lp.lines().collect();
        assert_eq!(
            lines[0],
            "reading,bucket=cb,department=water,device_id=PL-1,metric=pressure_kpa,org=city,\
             profile=pressure-logger value=372.5 1795000000250000000"
        );
        // Unknown device: no department tag; the space in the id is escaped.
        assert!(
            lines[1].starts_with("reading,bucket=cb,device_id=X\\ 9,metric="),
            "{lp}"
        );
        assert!(!lines[1].contains("department"), "{lp}");
    }

    #[test]
    fn non_finite_values_are_skipped_not_written() {
        let (lp, n) = text(&Record::Readings(vec![
            reading("PL-1", f64::NAN),
            reading("PL-1", f64::INFINITY),
            reading("PL-1", 2.0),
        ]));
        assert_eq!(
            n,
            Encoded {
                points: 1,
                skipped: 2
            }
        );
        assert_eq!(lp.lines().count(), 1);
        assert!(!lp.contains("NaN") && !lp.contains("inf"), "{lp}");
    }

    #[test]
    fn anomaly_reason_is_escaped_and_stays_on_one_line() {
        let a = Anomaly {
            device_id: "PL-1".into(),
            metric: "pressure_kpa".into(),
            signal: "pressure_drop".into(),
            detector: "step_drop".into(),
            ts: EventTime(1_000),
            value: 231.0,
            score: 0.8,
            phase: Phase::Raised,
            reason: "drop \"38%\"\nbelow C:\\base".into(),
            arrival: None,
        };
        let (lp, n) = text(&Record::Anomaly(a));
        assert_eq!(n.points, 1);
        assert_eq!(lp.lines().count(), 1, "{lp}");
        assert!(lp.contains("phase=raised"), "{lp}");
        assert!(
            lp.contains(r#"reason="drop \"38%\" below C:\\base",score=0.8,value=231 1000000000"#),
            "{lp}"
        );
    }

    #[test]
    fn incident_tags_id_kind_severity_status() {
        let ev = IncidentEvent {
            id: "inc-1".into(),
            kind: "water_main_burst".into(),
            severity: Severity::High,
            status: Some(IncidentStatus::Open),
            evidence_count: 3,
            location: Location {
                lat: 1.5,
                lon: -2.25,
            },
            updated_at: EventTime(2_000),
        };
        let (lp, _) = text(&Record::Incident(ev));
        assert_eq!(
            lp,
            "incident,bucket=cb,id=inc-1,kind=water_main_burst,org=city,severity=high,\
             status=open evidence_count=3i,lat=1.5,lon=-2.25 2000000000\n"
        );
    }

    #[test]
    fn time_outside_nanosecond_range_is_skipped() {
        let mut r = reading("PL-1", 1.0);
        r.ts = EventTime(i64::MAX / 10);
        let (lp, n) = text(&Record::Readings(vec![r]));
        assert_eq!((lp.as_str(), n.skipped), ("", 1));
    }
}
