//! End-to-end replay throughput, in readings per second.
//!
//! Isolates: `citybrain::app::replay_recording` (read the recording → decode through the shipped
//! `device-profiles/` → input gate → timely detectors and correlation from the shipped
//! `pipelines/` → incident store) over a deterministic one-hour simulated city (seed
//! `common::CITY_SEED`, fixed start), at 1 and 2 timely workers. The city is generated once,
//! before any measurement, into a temp dir.
//!
//! Baseline, measured in the same run: the same recording only read and decoded (no dataflow,
//! no engine threads). The interleaved comparison printed at the end gives replay / decode-only,
//! which is the number to compare across runs on a noisy shared machine.
//!
//! Run: `cargo bench --bench replay_throughput -- --noplot`

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use citybrain::app::replay_recording;
use citybrain::dataflow::DataflowConfig;
use citybrain::sink::DeadLetterLog;
use common::{City, Contender};
use criterion::{BenchmarkId, Criterion, Throughput};

/// One full replay with `workers` timely workers; returns the readings it decoded.
fn replay(city: &City, workers: usize) -> u64 {
    let cfg = DataflowConfig {
        workers,
        ..DataflowConfig::default()
    };
    let outcome = replay_recording(
        &city.recording,
        city.defs.clone(),
        cfg,
        Arc::new(DeadLetterLog::in_memory()),
        None,
    )
    .unwrap_or_else(|e| panic!("replay failed: {e:#}"));
    let readings = outcome.readings;
    black_box(outcome);
    readings
}

fn main() {
    let city = common::city();
    let readings = common::read_and_decode(&city.recording, &city.defs);
    // Honesty checks: the replay decodes exactly what the baseline does, and the recording
    // exercises correlation (otherwise the end-to-end number would flatter the pipeline).
    let probe = replay_recording(
        &city.recording,
        city.defs.clone(),
        DataflowConfig::default(),
        Arc::new(DeadLetterLog::in_memory()),
        None,
    )
    .unwrap_or_else(|e| panic!("replay failed: {e:#}"));
    assert_eq!(
        probe.readings, readings,
        "replay and baseline decode differently"
    );
    assert!(
        !probe.incidents.is_empty(),
        "the bench city must open incidents"
    );
    println!(
        "bench city: {} messages ({} malformed, {} duplicates), {} readings, {} devices, \
         {} injected incidents, {} incidents found by the replay",
        city.summary.messages,
        city.summary.malformed,
        city.summary.duplicates,
        readings,
        city.summary.devices,
        city.summary.incidents,
        probe.incidents.len()
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(readings));
    group.bench_function("decode_only", |b| {
        b.iter(|| common::read_and_decode(&city.recording, &city.defs))
    });
    for workers in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("replay_recording", format!("{workers}_workers")),
            &workers,
            |b, &w| b.iter(|| replay(&city, w)),
        );
    }
    group.finish();
    c.final_summary();

    if common::bench_mode() {
        common::compare(
            "replay vs decode-only (elements = readings)",
            7,
            1,
            &mut [
                Contender::new("decode_only", readings, || {
                    black_box(common::read_and_decode(&city.recording, &city.defs));
                }),
                Contender::new("replay_recording/1_workers", readings, || {
                    black_box(replay(&city, 1));
                }),
                Contender::new("replay_recording/2_workers", readings, || {
                    black_box(replay(&city, 2));
                }),
            ],
        );
    }
}
