//! Shared setup for the benches: the shipped definitions, one deterministic simulated city, its
//! recording decoded into readings, and an interleaved same-run comparison against a baseline.
//!
//! Why the interleaved comparison: the benches run on a shared 2-core machine where absolute
//! times drift by tens of percent between runs. Criterion measures each benchmark in its own time
//! slot, so a neighbour's build can land on one and not the other. [`compare`] instead alternates
//! the contenders round by round (rotating who goes first) and reports each one's median relative
//! to the baseline, which is the number worth comparing across runs.

// Each bench uses a subset of these helpers.
#![allow(dead_code)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use citybrain::dataflow::Definitions;
use citybrain::ingest::decode::decode;
use citybrain::ingest::recording::{open_recording, RawMessage};
use citybrain::model::{EventTime, Reading};
use citybrain::sim::{write_city, SimOptions, SimSummary};

/// Seed of the benchmark city (any fixed value; changing it changes every number).
pub(crate) const CITY_SEED: u64 = 20261122;
/// 2026-11-22T08:00:00Z: a fixed start, so the recording is byte-identical on every run.
pub(crate) const CITY_START: EventTime = EventTime(1_795_334_400_000);
/// One hour: past the 20-minute warm-up, so some injected incidents open and correlation works.
pub(crate) const CITY_DURATION_SECS: u64 = 60 * 60;

/// A path inside the crate (benches run with the package root as working directory, but the
/// manifest dir does not depend on that).
pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The simulated city on disk; the temp dir lives as long as this value.
pub(crate) struct City {
    _dir: tempfile::TempDir,
    /// `recording.ndjson`.
    pub(crate) recording: PathBuf,
    /// Definitions from the shipped `pipelines/` and `device-profiles/` and the city's registers.
    pub(crate) defs: Definitions,
    /// What the simulator wrote.
    pub(crate) summary: SimSummary,
}

/// Writes the benchmark city (seeded, fixed start, one hour) into a temp dir and loads the
/// shipped definitions against its registers. Panics with the cause: a bench cannot run without.
pub(crate) fn city() -> City {
    let dir = tempfile::tempdir().expect("bench setup: create a temp dir");
    let opts = SimOptions::default_with_seed(CITY_SEED, CITY_START, CITY_DURATION_SECS);
    let summary = write_city(dir.path(), &opts).expect("bench setup: write the simulated city");
    let defs = citybrain::app::load_definitions(
        &repo_path("pipelines"),
        &repo_path("device-profiles"),
        &dir.path().join("devices.csv"),
        &dir.path().join("crews.csv"),
    )
    .unwrap_or_else(|e| panic!("bench setup: shipped definitions do not load:\n{e}"));
    City {
        recording: dir.path().join("recording.ndjson"),
        _dir: dir,
        defs,
        summary,
    }
}

/// Every message of a recording (bad lines skipped; the simulator writes none).
pub(crate) fn messages(recording: &Path) -> Vec<RawMessage> {
    open_recording(recording)
        .expect("bench setup: open the recording")
        .filter_map(Result::ok)
        .collect()
}

/// Reads and decodes the recording exactly as `replay_recording` does, without the dataflow.
/// Returns the number of readings decoded (the replay's `readings`).
pub(crate) fn read_and_decode(recording: &Path, defs: &Definitions) -> u64 {
    let reader = open_recording(recording).expect("bench: open the recording");
    let mut readings = 0u64;
    for msg in reader.flatten() {
        let decoded = decode(&defs.profiles, &msg.topic, &msg.payload, msg.arrival);
        readings += decoded.readings.len() as u64;
        black_box(decoded);
    }
    readings
}

/// The recording decoded into one batch of readings per message, as the engine hands them to
/// the dataflow (messages without readings contribute no batch).
pub(crate) fn decoded_batches(recording: &Path, defs: &Definitions) -> Vec<Vec<Reading>> {
    messages(recording)
        .iter()
        .map(|m| decode(&defs.profiles, &m.topic, &m.payload, m.arrival).readings)
        .filter(|b| !b.is_empty())
        .collect()
}

/// One contender of [`compare`]: a name, one unit of work and how many elements it processes.
pub(crate) struct Contender<'a> {
    /// Shown in the table.
    pub(crate) name: String,
    /// Elements (readings, messages) one run processes; times are reported per element.
    pub(crate) elements: u64,
    /// One run (one pass over the input).
    pub(crate) run: Box<dyn FnMut() + 'a>,
}

impl<'a> Contender<'a> {
    /// A contender named `name` processing `elements` elements per call of `run`.
    pub(crate) fn new(name: impl Into<String>, elements: u64, run: impl FnMut() + 'a) -> Self {
        Contender {
            name: name.into(),
            elements: elements.max(1),
            run: Box::new(run),
        }
    }
}

/// Whether the binary runs as a plain benchmark (`cargo bench`), not in criterion's test mode
/// (`cargo test --benches`: one quick pass each), `--list` or `--profile-time` (under a
/// profiler): the comparison is skipped in those modes.
pub(crate) fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--list" || a.starts_with("--profile-time"))
}

/// Runs the contenders interleaved for `rounds` rounds of `iters` runs each (the first one is
/// the baseline), rotating the order every round, and prints each one's median time per element
/// and its ratio to the baseline's. Returns the medians in ns per element, in order.
pub(crate) fn compare(
    title: &str,
    rounds: usize,
    iters: usize,
    contenders: &mut [Contender<'_>],
) -> Vec<f64> {
    let n = contenders.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); n];
    for c in contenders.iter_mut() {
        (c.run)(); // warm-up: caches, allocator, lazily built routes
    }
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let c = &mut contenders[i];
            let started = Instant::now();
            for _ in 0..iters {
                (c.run)();
            }
            let per_element =
                started.elapsed().as_nanos() as f64 / (iters as u64 * c.elements) as f64;
            samples[i].push(per_element);
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    println!("\n== {title}: interleaved, {rounds} rounds x {iters} runs, median time per element");
    for (c, m) in contenders.iter().zip(&medians) {
        println!(
            "  {:<28} {:>12} /elem  {:>14.0} elem/s   ratio to {}: {:.2}",
            c.name,
            human_ns(*m),
            1e9 / m,
            contenders[0].name,
            m / medians[0]
        );
    }
    medians
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `1234.5` ns → `1.23 µs`.
pub(crate) fn human_ns(ns: f64) -> String {
    match ns {
        x if x >= 1e9 => format!("{:.3} s", x / 1e9),
        x if x >= 1e6 => format!("{:.2} ms", x / 1e6),
        x if x >= 1e3 => format!("{:.2} µs", x / 1e3),
        x => format!("{x:.1} ns"),
    }
}
