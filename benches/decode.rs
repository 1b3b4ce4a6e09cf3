//! Decode throughput per device family.
//!
//! Isolates: `citybrain::ingest::decode::decode` (topic match → UTF-8 check → one
//! `serde_json::Value` parse → compiled field paths, timestamps, unit conversions → `Reading`s)
//! through the shipped `device-profiles/`, on the exact example payloads of
//! `shared/contracts/devices.md` (camera stats, camera event, SenML pack, vendor B, pressure
//! batch), one message per iteration, allocating its output as `Engine::submit` does.
//!
//! Baseline, measured in the same run: `serde_json::from_slice::<serde_json::Value>` of the same
//! payload, i.e. the parse that decoding cannot avoid. The interleaved comparison printed at the
//! end gives decode / parse-only per family: what profile-driven decoding costs on top of JSON.
//!
//! Run: `cargo bench --bench decode -- --noplot`

mod common;

use std::hint::black_box;
use std::time::Duration;

use citybrain::config::profile::ProfileSet;
use citybrain::ingest::decode::decode;
use citybrain::model::EventTime;
use common::Contender;
use criterion::{BenchmarkId, Criterion, Throughput};

/// A contract example: family name, topic, payload, arrival (epoch ms, near the payload's time).
struct Example {
    family: &'static str,
    topic: &'static str,
    payload: &'static str,
    arrival: EventTime,
}

/// The payloads of `shared/contracts/devices.md`, copied verbatim (whitespace aside).
const EXAMPLES: [Example; 5] = [
    Example {
        family: "camera_stats",
        topic: "city/traffic/cameras/TC-0042/stats",
        payload: r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:15:30.250Z","interval_s":10,"lanes":[{"lane":1,"count":12,"avg_speed_kmh":38.5,"occupancy_pct":22.1},{"lane":2,"count":9,"avg_speed_kmh":41.0,"occupancy_pct":18.4}]}"#,
        arrival: EventTime(1_795_335_330_400),
    },
    Example {
        family: "camera_event",
        topic: "city/traffic/cameras/TC-0042/events",
        payload: r#"{"camera_id":"TC-0042","ts":"2026-11-22T08:16:02.100Z","type":"stopped_vehicle","lane":2,"confidence":0.91}"#,
        arrival: EventTime(1_795_335_362_200),
    },
    Example {
        family: "senml_pack",
        topic: "city/env/AQ-0107/senml",
        payload: r#"[{"bn":"urn:dev:env:AQ-0107:","bt":1795335330.0,"n":"pm2_5","u":"ug/m3","v":35.2},{"n":"pm10","u":"ug/m3","v":51.0},{"n":"no2","u":"ppb","v":21.0},{"n":"o3","u":"ppb","v":30.4},{"n":"noise_laeq","u":"dB","v":62.1},{"n":"temp","u":"Cel","v":14.2},{"n":"humidity","u":"%RH","v":55.0},{"n":"rain","u":"mm/h","v":0.0}]"#,
        arrival: EventTime(1_795_335_331_000),
    },
    Example {
        family: "vendor_b",
        topic: "city/env/vendor-b/AQ-2201",
        payload: r#"{"station":"AQ-2201","time":"2026-11-22 16:15:00+08:00","PM2.5":35,"PM10":52,"NO2":40.1,"O3":59.8,"unit":"ug/m3"}"#,
        arrival: EventTime(1_795_335_301_000),
    },
    Example {
        family: "pressure_batch",
        topic: "city/water/pressure/PG-0311/up",
        payload: r#"{"dev":"PG-0311","seq":1842,"t0":1795335330,"dt":5,"kpa_x10":[4123,4120,4118,4121,4119,4117,4120,4122,4118,4116,4119,4121],"bat_mv":3610}"#,
        arrival: EventTime(1_795_335_392_000),
    },
];

fn main() {
    let profiles = ProfileSet::load_dir(&common::repo_path("device-profiles"))
        .unwrap_or_else(|e| panic!("shipped device profiles do not load:\n{e}"));
    // Honesty check: every example decodes cleanly into readings, so the bench measures the
    // normal path and not an early dead-letter exit.
    for ex in &EXAMPLES {
        let d = decode(&profiles, ex.topic, ex.payload.as_bytes(), ex.arrival);
        assert!(
            d.dead.is_empty() && !d.readings.is_empty(),
            "{}: expected readings and no dead letters, got {d:?}",
            ex.family
        );
        println!(
            "{:<15} {:>4} bytes -> {:>2} readings",
            ex.family,
            ex.payload.len(),
            d.readings.len()
        );
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("decode");
    for ex in &EXAMPLES {
        let bytes = ex.payload.as_bytes();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse_only", ex.family), bytes, |b, p| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(p)))
        });
        group.bench_with_input(BenchmarkId::new("decode", ex.family), bytes, |b, p| {
            b.iter(|| decode(&profiles, ex.topic, black_box(p), ex.arrival))
        });
    }
    group.finish();
    c.final_summary();

    if common::bench_mode() {
        for ex in &EXAMPLES {
            let bytes = ex.payload.as_bytes();
            common::compare(
                &format!("decode vs parse-only, {} (elements = messages)", ex.family),
                15,
                20_000,
                &mut [
                    Contender::new("parse_only", 1, || {
                        let _ = black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                            bytes,
                        )));
                    }),
                    Contender::new("decode", 1, || {
                        black_box(decode(&profiles, ex.topic, black_box(bytes), ex.arrival));
                    }),
                ],
            );
        }
    }
}
