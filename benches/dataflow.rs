//! Dataflow overhead: the timely dataflow vs the same work as one plain loop.
//!
//! Isolates: `citybrain::dataflow::run_to_end` (input thread, gate, exchange by device id,
//! per-tick buffering and sorting, detector operator, correlation on worker 0, output channel)
//! at 1 and 2 workers, over the readings of the deterministic one-hour simulated city (decoded
//! once, before any measurement, one batch per message as the engine sends them).
//!
//! Baseline, measured in the same run: the plain single-threaded loop of the dataflow's oracle
//! test (`src/dataflow/tests.rs`): the same `InputGate`, a sort, one `DetectorBank`, sorted
//! anomalies into one `Correlator`. The setup checks both produce the same anomalies. The
//! interleaved comparison printed at the end gives dataflow / plain loop: the cost of timely.
//!
//! Run: `cargo bench --bench dataflow -- --noplot`

mod common;

use std::hint::black_box;
use std::time::Duration;

use citybrain::correlate::{Correlate, Correlator};
use citybrain::dataflow::{
    anomaly_order, reading_order, run_to_end, tick_of, DataflowConfig, Definitions, DetectorBank,
    InputGate, Output, Verdict, TICK_MS,
};
use citybrain::model::{Anomaly, EventTime, IncidentSnapshot, Reading};
use common::Contender;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};

/// The dataflow's semantics as one loop (mirrors `oracle` in `src/dataflow/tests.rs`).
fn plain_loop(
    cfg: &DataflowConfig,
    defs: &Definitions,
    batches: Vec<Vec<Reading>>,
) -> (Vec<Anomaly>, Vec<IncidentSnapshot>) {
    let mut gate = InputGate::new(cfg);
    let mut accepted: Vec<Reading> = batches
        .into_iter()
        .flatten()
        .filter(|r| gate.classify(r) == Verdict::Accept)
        .collect();
    let final_ms = gate.watermark().map_or(0, |w| tick_of(w) as i64 * TICK_MS);
    accepted.sort_by(reading_order);
    let mut bank = DetectorBank::new(defs.pipelines.clone(), defs.profiles.clone());
    let mut anomalies = Vec::new();
    let split = accepted.partition_point(|r| r.ts.0 < final_ms);
    for r in &accepted[..split] {
        bank.observe(r, &mut anomalies);
    }
    bank.on_watermark(EventTime(final_ms), &mut anomalies);
    for r in &accepted[split..] {
        bank.observe(r, &mut anomalies);
    }
    anomalies.sort_by(anomaly_order);
    let mut corr = Correlator::new(&defs.pipelines, defs.registry.clone());
    let mut snaps = Vec::new();
    let mut final_done = false;
    for a in &anomalies {
        if !final_done && a.ts.0 >= final_ms {
            corr.on_watermark(EventTime(final_ms), &mut snaps);
            final_done = true;
        }
        corr.on_watermark(a.ts, &mut snaps);
        corr.ingest(a.clone(), &mut snaps);
    }
    if !final_done {
        corr.on_watermark(EventTime(final_ms), &mut snaps);
    }
    (anomalies, snaps)
}

fn dataflow(workers: usize, defs: &Definitions, batches: Vec<Vec<Reading>>) -> Vec<Output> {
    let cfg = DataflowConfig {
        workers,
        ..DataflowConfig::default()
    };
    run_to_end(cfg, defs.clone(), batches).unwrap_or_else(|e| panic!("dataflow failed: {e}"))
}

fn main() {
    let city = common::city();
    let batches = common::decoded_batches(&city.recording, &city.defs);
    let readings: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let cfg = DataflowConfig::default();

    // Honesty check: the loop and the dataflow do the same work, and that work includes
    // detection and correlation.
    let (want, snaps) = plain_loop(&cfg, &city.defs, batches.clone());
    for workers in [1, 2] {
        let mut got: Vec<Anomaly> = dataflow(workers, &city.defs, batches.clone())
            .into_iter()
            .filter_map(|o| match o {
                Output::Anomaly(a) => Some(a),
                _ => None,
            })
            .collect();
        got.sort_by(anomaly_order);
        assert!(
            got == want,
            "{workers} workers: the dataflow and the loop disagree"
        );
    }
    assert!(!snaps.is_empty(), "the bench city must open incidents");
    println!(
        "{} batches, {readings} readings -> {} anomalies, {} incident snapshots",
        batches.len(),
        want.len(),
        snaps.len()
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .configure_from_args();
    let mut group = c.benchmark_group("dataflow");
    group.throughput(Throughput::Elements(readings));
    group.bench_function("plain_loop", |b| {
        b.iter_batched(
            || batches.clone(),
            |input| plain_loop(&cfg, &city.defs, input),
            BatchSize::PerIteration,
        )
    });
    for workers in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("run_to_end", format!("{workers}_workers")),
            &workers,
            |b, &w| {
                b.iter_batched(
                    || batches.clone(),
                    |input| dataflow(w, &city.defs, input),
                    BatchSize::PerIteration,
                )
            },
        );
    }
    group.finish();
    c.final_summary();

    if common::bench_mode() {
        // Each run clones its input here (inside the timing, for every contender alike).
        common::compare(
            "dataflow vs plain loop (elements = readings)",
            7,
            1,
            &mut [
                Contender::new("plain_loop", readings, || {
                    black_box(plain_loop(&cfg, &city.defs, batches.clone()));
                }),
                Contender::new("run_to_end/1_workers", readings, || {
                    black_box(dataflow(1, &city.defs, batches.clone()));
                }),
                Contender::new("run_to_end/2_workers", readings, || {
                    black_box(dataflow(2, &city.defs, batches.clone()));
                }),
                // What the clone above costs, to subtract from each line if it matters.
                Contender::new("input_clone_only", readings, || {
                    black_box(batches.clone());
                }),
            ],
        );
    }
}
