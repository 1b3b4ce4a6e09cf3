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

fn replay(dir: &std::path::Path, workers: usize) -> citybrain::app::ReplayOutcome {
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
        let outcome = replay(dir.path(), 2);
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
    let one = replay(dir.path(), 1);
    let three = replay(dir.path(), 3);
    assert!(!one.incidents.is_empty());
    assert_eq!(essence(&one.incidents), essence(&three.incidents));
    assert_eq!(one.readings, three.readings);
}
