//! Replaying a simulated recording finds each injected incident exactly once and nothing else,
//! and the result does not depend on the number of workers.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use citybrain::app::replay_recording;
use citybrain::backtest::{evaluate, MatchOptions, TruthFile};
use citybrain::dataflow::DataflowConfig;
use citybrain::model::EventTime;
use citybrain::sim::SimOptions;
use citybrain::sink::DeadLetterLog;
use common::*;

fn replay(dir: &std::path::Path) -> citybrain::app::ReplayOutcome {
    replay_with(dir, 2)
}

fn replay_with(dir: &std::path::Path, workers: usize) -> citybrain::app::ReplayOutcome {
    replay_recording(
        &dir.join("recording.ndjson"),
        defs(dir),
        DataflowConfig {
            workers,
            ..DataflowConfig::default()
        },
        Arc::new(DeadLetterLog::in_memory()),
        None,
    )
    .expect("replay runs")
}

#[test]
fn each_injected_incident_is_found_once_and_nothing_else() {
    for seed in [101u64, 202] {
        let dir = tempfile::tempdir().expect("tempdir");
        let start = EventTime::parse_rfc3339("2026-11-22T06:00:00Z").expect("time");
        simulate(
            dir.path(),
            &SimOptions::default_with_seed(seed, start, 2 * 3600),
        );
        let truth: TruthFile = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("truth.json")).expect("truth.json"),
        )
        .expect("truth parses");
        assert_eq!(
            truth.incidents.len(),
            6,
            "one of each kind, three device faults"
        );
        let outcome = replay(dir.path());
        let eval = evaluate(
            &truth.incidents,
            &outcome.incidents,
            &outcome.flaps,
            &MatchOptions::default(),
        );
        let report = eval.to_text(&truth.incidents);
        assert_eq!(
            eval.overall.found, 6,
            "seed {seed}: every injected incident found\n{report}"
        );
        assert_eq!(
            eval.overall.extra, 0,
            "seed {seed}: no false alarm\n{report}"
        );
        assert_eq!(
            eval.overall.duplicates, 0,
            "seed {seed}: no duplicate\n{report}"
        );
        assert_eq!(outcome.incidents.len(), 6, "seed {seed}\n{report}");
        // Messy input was there and was handled.
        assert!(outcome.duplicates > 0, "duplicates were dropped");
        assert!(outcome.dead_letters.get("malformed").copied().unwrap_or(0) > 0);
        // Every incident explains itself: evidence with devices, detectors and reasons.
        for inc in &outcome.incidents {
            assert!(!inc.evidence.is_empty());
            assert!(inc
                .evidence
                .iter()
                .all(|e| !e.reason.is_empty() && !e.detector.is_empty()));
            assert!(inc.opened_at <= inc.detected_at);
        }
        let kinds: BTreeMap<&str, usize> =
            outcome.incidents.iter().fold(BTreeMap::new(), |mut m, i| {
                *m.entry(i.kind.as_str()).or_default() += 1;
                m
            });
        assert_eq!(kinds.get("device_fault"), Some(&3));
    }
}

#[test]
fn replay_result_does_not_depend_on_worker_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = EventTime::parse_rfc3339("2026-11-22T06:00:00Z").expect("time");
    simulate(
        dir.path(),
        &SimOptions::default_with_seed(303, start, 90 * 60),
    );
    let one = replay_with(dir.path(), 1);
    let three = replay_with(dir.path(), 3);
    assert!(!one.incidents.is_empty());
    assert_eq!(essence(&one.incidents), essence(&three.incidents));
    assert_eq!(one.readings, three.readings);
}

#[test]
fn a_clock_years_ahead_and_late_batches_are_dead_letters_not_incidents() {
    use citybrain::ingest::recording::{write_line, RawMessage};
    let dir = tempfile::tempdir().expect("tempdir");
    let start = EventTime::parse_rfc3339("2026-11-22T06:00:00Z").expect("time");
    simulate(
        dir.path(),
        &SimOptions::default_with_seed(404, start, 2 * 3600),
    );
    let clean = replay(dir.path());
    // The same recording with a camera whose clock is set three years ahead, interleaved, and
    // a pressure batch that arrives an hour late.
    let mut messages = read_recording(&dir.path().join("recording.ndjson"));
    let mut extra = 0u64;
    let mut with_rogue = Vec::new();
    for (i, m) in messages.drain(..).enumerate() {
        let arrival = m.arrival;
        with_rogue.push(m);
        if i % 500 == 0 {
            let payload = r#"{"camera_id":"TC-0001","ts":"2029-11-22T08:15:30.250Z","interval_s":10,"lanes":[{"lane":1,"count":12,"avg_speed_kmh":38.5,"occupancy_pct":22.1}]}"#.to_string();
            with_rogue.push(RawMessage {
                arrival,
                topic: "city/traffic/cameras/TC-0001/stats".into(),
                payload: payload.into_bytes(),
            });
            extra += 1;
        }
    }
    let last = with_rogue.last().map(|m| m.arrival).expect("messages");
    let late_t0 = (last.0 - 3_600_000) / 1000;
    with_rogue.push(RawMessage {
        arrival: last,
        topic: "city/water/pressure/PG-0301/up".into(),
        payload: format!(r#"{{"dev":"PG-0301","seq":999999,"t0":{late_t0},"dt":5,"kpa_x10":[4123,4120],"bat_mv":3610}}"#).into_bytes(),
    });
    let mut text = Vec::new();
    for m in &with_rogue {
        write_line(&mut text, m).expect("write");
    }
    std::fs::write(dir.path().join("recording.ndjson"), text).expect("write recording");
    let rogue = replay(dir.path());
    // Each rogue stats message carries 3 readings (count, speed, occupancy), all from the future.
    assert_eq!(
        rogue.dead_letters.get("future").copied(),
        Some(extra * 3),
        "{:?}",
        rogue.dead_letters
    );
    let late_before = clean.dead_letters.get("late").copied().unwrap_or(0);
    assert!(
        rogue.dead_letters.get("late").copied().unwrap_or(0) >= late_before + 2,
        "the hour-late batch is late"
    );
    assert_eq!(
        essence(&rogue.incidents),
        essence(&clean.incidents),
        "event time was not dragged forward"
    );
}
