//! Tests of the simulator's output: determinism, contract shapes, registers, counts.
//! Incident signatures and schedules are in `tests_scenario.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::validate::{parse_topic, validate};
use super::*;

/// 00:00 UTC = 08:00 in Hangzhou: the run starts in the morning rush.
pub(super) fn t0() -> EventTime {
    EventTime::parse_rfc3339("2026-11-22T00:00:00Z").unwrap_or_default()
}

pub(super) struct Run {
    pub(super) opts: SimOptions,
    pub(super) msgs: Vec<RawMessage>,
    pub(super) truth: Truth,
    pub(super) city: City,
}

/// Runs a whole finite simulation in uneven chunks.
pub(super) fn run(opts: SimOptions) -> Run {
    let mut sim = Simulation::new(opts.clone());
    let mut msgs = Vec::new();
    let mut t = opts.start.millis();
    while t < opts.end_ms() {
        t += 7 * 60_000 + 1234;
        msgs.extend(sim.next_until(EventTime(t)));
    }
    msgs.extend(sim.drain());
    Run {
        opts,
        msgs,
        truth: sim.truth().clone(),
        city: sim.city().clone(),
    }
}

/// The default 2 h scenario, shared by the tests that only read it.
pub(super) fn default_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run(SimOptions::default_with_seed(7, t0(), 2 * 3600)))
}

fn files(dir: &std::path::Path) -> Vec<Vec<u8>> {
    ["devices.csv", "crews.csv", "recording.ndjson", "truth.json"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).expect("file written"))
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let opts = |seed| SimOptions::default_with_seed(seed, t0(), 40 * 60);
    let (a, b, c) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write_city(a.path(), &opts(11)).expect("written");
    write_city(b.path(), &opts(11)).expect("written");
    write_city(c.path(), &opts(12)).expect("written");
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert!(fa == fb, "same seed must give identical files");
    assert_ne!(fa[0], fc[0], "devices.csv should depend on the seed");
    assert_ne!(fa[2], fc[2], "recording should depend on the seed");
}

#[test]
fn chunking_of_next_until_does_not_change_the_output() {
    let opts = SimOptions::default_with_seed(5, t0(), 30 * 60);
    let mut one = Simulation::new(opts.clone());
    let mut whole = one.next_until(EventTime(opts.end_ms()));
    whole.extend(one.drain());
    let mut many = Simulation::new(opts.clone());
    let mut pieces = Vec::new();
    let mut t = opts.start.millis() - 5000;
    while t < opts.end_ms() + 600_000 {
        pieces.extend(many.next_until(EventTime(t)));
        t += 2_345;
    }
    pieces.extend(many.drain());
    assert_eq!(whole.len(), pieces.len());
    assert!(whole == pieces);
}

#[test]
fn every_payload_matches_the_contract_except_the_counted_malformed_ones() {
    let r = default_run();
    let bad: Vec<_> = r
        .msgs
        .iter()
        .filter(|m| validate(&m.topic, &m.payload).is_err())
        .collect();
    assert_eq!(
        bad.len() as u64,
        r.truth.malformed,
        "first bad: {:?}",
        bad.first().map(|m| String::from_utf8_lossy(&m.payload))
    );
    assert!(
        r.truth.malformed >= 3,
        "6/h over 2 h should give some malformed, got {}",
        r.truth.malformed
    );
    for m in bad {
        // Malformed payloads still come on real device topics.
        let (id, _) = parse_topic(&m.topic).expect("device topic");
        assert!(r.city.device(id).is_some(), "malformed from unknown {id}");
    }
}

#[test]
fn arrivals_never_go_back_but_late_logger_batches_are_overtaken() {
    let r = default_run();
    assert!(r.msgs.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    let mut last_seq: HashMap<&str, i64> = HashMap::new();
    let mut overtaken = 0;
    for m in &r.msgs {
        let Some((id, "logger")) = parse_topic(&m.topic) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
            continue;
        };
        let Some(seq) = v.get("seq").and_then(Value::as_i64) else {
            continue;
        };
        let prev = last_seq.entry(id).or_insert(seq);
        if seq < *prev {
            overtaken += 1;
        }
        *prev = (*prev).max(seq);
    }
    assert!(
        overtaken >= 5,
        "a 3 % late rate should reorder some uploads, got {overtaken}"
    );
}

#[test]
fn two_hour_default_run_is_small_and_counts_are_consistent() {
    let r = default_run();
    let n = r.msgs.len() as u64;
    assert!((15_000..60_000).contains(&n), "{n} messages");
    assert_eq!(r.truth.messages, n);
    let mut seen = HashSet::new();
    let repeated: Vec<&RawMessage> = r
        .msgs
        .iter()
        .filter(|m| !seen.insert((&m.topic, &m.payload)))
        .collect();
    assert_eq!(repeated.len() as u64, r.truth.duplicates);
    assert!(
        r.truth.duplicates > 10,
        "1 % of QoS-1 messages should be duplicated"
    );
    // Only QoS-1 topics (events, SenML, logger uploads) are delivered twice.
    assert!(repeated
        .iter()
        .all(|m| !m.topic.contains("vendor-b") && !m.topic.ends_with("/stats")));
}

#[test]
fn registers_never_reporting_and_unregistered_devices() {
    #[derive(Deserialize)]
    struct DeviceRow {
        device_id: String,
        profile: String,
        lat: f64,
        lon: f64,
        department: String,
        district: String,
    }
    #[derive(Deserialize)]
    struct CrewRow {
        crew_id: String,
        department: String,
        home_lat: f64,
        home_lon: f64,
        skills: String,
    }
    let dir = tempfile::tempdir().expect("tmp");
    let opts = SimOptions::default_with_seed(3, t0(), 25 * 60);
    let summary = write_city(dir.path(), &opts).expect("written");
    let mut rd = csv::Reader::from_path(dir.path().join("devices.csv")).expect("devices.csv");
    let header: Vec<String> = rd
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        [
            "device_id",
            "profile",
            "lat",
            "lon",
            "department",
            "district"
        ]
    );
    let rows: Vec<DeviceRow> = rd
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("rows parse");
    assert_eq!(rows.len(), 24 + 6 + 4 + 16 + 1);
    assert_eq!(summary.devices, rows.len());
    for d in &rows {
        let ok = match d.profile.as_str() {
            "traffic-camera" => d.device_id.starts_with("TC-0") && d.department == "traffic",
            "air-senml" => d.device_id.starts_with("AQ-01") && d.department == "environment",
            "air-vendor-b" => d.device_id.starts_with("AQ-22") && d.department == "environment",
            "pressure-logger" => d.device_id.starts_with("PG-03") && d.department == "water",
            _ => false,
        };
        assert!(ok && !d.district.is_empty(), "{}", d.device_id);
        assert!((30.24..30.30).contains(&d.lat) && (120.12..120.20).contains(&d.lon));
    }
    let mut rc = csv::Reader::from_path(dir.path().join("crews.csv")).expect("crews.csv");
    let header: Vec<String> = rc
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        ["crew_id", "department", "home_lat", "home_lon", "skills"]
    );
    let crews: Vec<CrewRow> = rc
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("rows parse");
    assert_eq!(crews.len(), 9);
    assert!(crews
        .iter()
        .any(|c| c.crew_id == "W-01" && c.department == "water" && c.skills == "valve;excavation"));
    assert!(crews
        .iter()
        .all(|c| (30.24..30.30).contains(&c.home_lat) && (120.12..120.20).contains(&c.home_lon)));

    let ids: HashSet<String> = rows.iter().map(|d| d.device_id.clone()).collect();
    let truth: Truth =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).expect("truth"))
            .expect("parses");
    assert_eq!(truth.unregistered, ["TC-9901"]);
    assert_eq!(truth.never_reporting.len(), 1);
    let rec = std::fs::read_to_string(dir.path().join("recording.ndjson")).expect("recording");
    let lines: Vec<Value> = rec
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect();
    assert_eq!(lines.len() as u64, truth.messages);
    let topics: HashSet<&str> = lines.iter().filter_map(|l| l["topic"].as_str()).collect();
    let publishes = |id: &str| {
        topics
            .iter()
            .any(|t| parse_topic(t).is_some_and(|(d, _)| d == id))
    };
    assert!(truth
        .never_reporting
        .iter()
        .all(|d| ids.contains(d) && !publishes(d)));
    assert!(truth
        .unregistered
        .iter()
        .all(|d| !ids.contains(d) && publishes(d)));
    // Every registered device but the never-reporting ones publishes.
    assert!(ids
        .iter()
        .filter(|d| !truth.never_reporting.contains(d))
        .all(|d| publishes(d)));
    for l in &lines {
        let has_text = l.get("payload").is_some_and(Value::is_string);
        let has_b64 = l.get("payload_b64").is_some_and(Value::is_string);
        assert!(l["t_ms"].is_i64() && has_text != has_b64, "{l}");
    }
}

#[test]
fn silent_options_give_clean_data() {
    let mut opts = SimOptions::default_with_seed(9, t0(), 20 * 60);
    opts.noise = NoiseOptions::none();
    let r = run(opts);
    assert_eq!(r.truth.malformed + r.truth.duplicates, 0);
    assert!(r
        .msgs
        .iter()
        .all(|m| validate(&m.topic, &m.payload).is_ok()));
    assert!(
        !r.msgs.iter().any(|m| m.topic.ends_with("/events")),
        "no incident yet, no noise events"
    );
}
