//! Per-reading cost of each detector type.
//!
//! Isolates: one detector instance, built by `citybrain::detect::build` (so value detectors sit
//! behind their input guard, as in production), driven exactly as `DetectorBank::observe` drives
//! it: `on_watermark(reading.ts)` then `observe(reading)` for every reading, collecting the
//! anomalies. No bank lookup, no dataflow. Construction is outside the timing.
//!
//! Input: a seeded stream (ChaCha8, `SEED`) of one pressure logger, 5-s samples for 4 days
//! (69 120 readings): a daily cycle with noise, a 10-minute burst (pressure at 55 %) every 8 h,
//! a 20-minute frozen value and two 10-minute outages per day, and single-sample dips. `event`
//! gets its own stream of camera events (one per 30 s, random confidence). The setup checks that
//! every detector fires on its stream, so the state transitions are part of what is measured.
//!
//! Baseline, measured in the same run: the same loop over a no-op `Detector`. The interleaved
//! comparison printed at the end gives each detector's cost relative to that loop.
//!
//! Run: `cargo bench --bench detectors -- --noplot`

mod common;

use std::hint::black_box;
use std::time::Duration;

use citybrain::detect::{build, Detector, DetectorConfig, DetectorContext};
use citybrain::model::{Anomaly, EventTime, Reading};
use common::Contender;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 7;
const START_MS: i64 = common::CITY_START.0;
const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 4;

/// Detector configs as a pipeline would write them: the parameters of the shipped signals
/// `pressure_drop` (step), `sensor_frozen` (flatline), `device_silent` (silence) and
/// `accident_event` (event); the others are set for this pressure stream (the shipped threshold
/// watches PM2.5; spike, seasonal and cusum are not in the shipped pipelines).
const DETECTORS: [(&str, &str); 8] = [
    (
        "threshold",
        r#"{"type":"threshold","below":300.0,"hysteresis":10.0,"min_duration_secs":30}"#,
    ),
    (
        "step",
        r#"{"type":"step","direction":"down","baseline_secs":600,"change_pct":25,"min_duration_secs":30,"min_baseline_samples":24}"#,
    ),
    (
        "spike",
        r#"{"type":"spike","window_samples":60,"threshold":6.0}"#,
    ),
    (
        "seasonal",
        r#"{"type":"seasonal","bucket_mins":60,"deviation_pct":25,"min_days":2}"#,
    ),
    ("cusum", r#"{"type":"cusum","k":0.5,"h":12.0}"#),
    (
        "flatline",
        r#"{"type":"flatline","tolerance":0.0,"min_duration_secs":900}"#,
    ),
    ("silence", r#"{"type":"silence","factor":5.0}"#),
    ("event", r#"{"type":"event","min_confidence":0.5}"#),
];

/// The baseline: a detector that does nothing.
struct Noop;

impl Detector for Noop {
    fn observe(&mut self, _reading: &Reading) -> Option<Anomaly> {
        None
    }
}

fn reading(metric: &str, ts: i64, value: f64) -> Reading {
    Reading {
        device_id: "PG-0311".into(),
        profile: "pressure-logger".into(),
        metric: metric.into(),
        ts: EventTime(ts),
        value,
        seq: None,
        arrival: EventTime(ts),
    }
}

/// The pressure stream described in the header.
fn pressure_stream() -> Vec<Reading> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut out = Vec::new();
    let mut frozen_at = None;
    for i in 0..DAYS * DAY_MS / 5_000 {
        let t = START_MS + i * 5_000;
        let in_day = (t - START_MS) % DAY_MS;
        let min_of_day = in_day / 60_000;
        // Outages at 03:00 and 15:00 for 10 minutes: no reading at all.
        if (180..190).contains(&min_of_day) || (900..910).contains(&min_of_day) {
            continue;
        }
        let phase = in_day as f64 / DAY_MS as f64 * std::f64::consts::TAU;
        let mut v = 400.0 + 40.0 * phase.sin() + rng.random_range(-2.0..2.0);
        // A burst every 8 h, starting 2 h in, for 10 minutes.
        if (t - START_MS) % (8 * 3_600_000) >= 2 * 3_600_000
            && (t - START_MS) % (8 * 3_600_000) < 2 * 3_600_000 + 600_000
        {
            v *= 0.55;
        }
        if rng.random_bool(0.3 / 720.0) {
            v *= 0.75; // a single-sample dip: not an incident, a spike
        }
        // Frozen from 09:00 for 20 minutes.
        if (540..560).contains(&min_of_day) {
            v = *frozen_at.get_or_insert(v);
        } else {
            frozen_at = None;
        }
        out.push(reading("pressure_kpa", t, v));
    }
    out
}

/// One camera event every 30 s with a random confidence.
fn event_stream() -> Vec<Reading> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + 1);
    (0..DAYS * DAY_MS / 30_000)
        .map(|i| {
            reading(
                "event.accident",
                START_MS + i * 30_000,
                rng.random_range(0.1..1.0),
            )
        })
        .collect()
}

fn context(name: &str, metric: &str) -> DetectorContext {
    DetectorContext {
        device_id: "PG-0311".into(),
        metric: metric.into(),
        signal: format!("bench_{name}"),
        valid_range: (metric == "pressure_kpa").then_some((0.0, 1600.0)),
        unit: if metric == "pressure_kpa" {
            "kPa".into()
        } else {
            String::new()
        },
        // The pressure-logger profile's interval (one upload a minute), as the bank passes it.
        interval_secs: 60.0,
    }
}

/// The bank's per-instance loop; returns the number of anomalies.
fn drive(detector: &mut dyn Detector, stream: &[Reading], out: &mut Vec<Anomaly>) -> usize {
    out.clear();
    for r in stream {
        out.extend(detector.on_watermark(r.ts));
        if let Some(a) = detector.observe(r) {
            out.push(a);
        }
    }
    out.len()
}

/// A detector under test: name, how to build a fresh instance, its stream.
struct Case<'a> {
    name: &'static str,
    make: Box<dyn Fn() -> Box<dyn Detector> + 'a>,
    stream: &'a [Reading],
}

fn main() {
    let pressure = pressure_stream();
    let events = event_stream();
    let mut cases = vec![Case {
        name: "noop",
        make: Box::new(|| Box::new(Noop) as Box<dyn Detector>),
        stream: &pressure,
    }];
    for (name, json) in DETECTORS {
        let cfg: DetectorConfig = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("{name}: config does not parse: {e}"));
        let problems = cfg.validate();
        assert!(problems.is_empty(), "{name}: invalid config {problems:?}");
        let (metric, stream) = match name {
            "event" => ("event.accident", &events),
            "silence" => ("*", &pressure),
            _ => ("pressure_kpa", &pressure),
        };
        let ctx = context(name, metric);
        cases.push(Case {
            name,
            make: Box::new(move || build(&cfg, &ctx)),
            stream,
        });
    }
    // Honesty check: each detector fires on its stream (the no-op never does).
    let mut out = Vec::new();
    for case in &cases {
        let fired = drive(&mut *(case.make)(), case.stream, &mut out);
        println!(
            "{:<10} {:>6} readings -> {:>4} anomalies",
            case.name,
            case.stream.len(),
            fired
        );
        assert!(
            (case.name == "noop") == (fired == 0),
            "{}: the stream must make it fire",
            case.name
        );
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = c.benchmark_group("detector");
    for case in &cases {
        group.throughput(Throughput::Elements(case.stream.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            let mut out = Vec::new();
            b.iter_batched(
                || (case.make)(),
                |mut d| drive(&mut *d, case.stream, &mut out),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    c.final_summary();

    if common::bench_mode() {
        // Here each run also builds its detector: one construction per stream, negligible.
        let mut contenders: Vec<Contender<'_>> = cases
            .iter()
            .map(|case| {
                let mut out = Vec::new();
                Contender::new(case.name, case.stream.len() as u64, move || {
                    black_box(drive(&mut *(case.make)(), case.stream, &mut out));
                })
            })
            .collect();
        common::compare(
            "detectors vs no-op loop (elements = readings)",
            9,
            3,
            &mut contenders,
        );
    }
}
