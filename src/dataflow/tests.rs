//! Oracle tests: seeded random streams through the timely dataflow with 1 and several workers,
//! compared with a plain single-threaded loop over the same gate, detectors and correlator.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::config::pipeline::PipelineSet;
use crate::config::profile::ProfileSet;
use crate::config::registers::Registry;
use crate::correlate::{Correlate, Correlator};
use crate::model::{Device, Location};

fn defs() -> Definitions {
    let root = env!("CARGO_MANIFEST_DIR");
    let profiles = ProfileSet::load_dir(&std::path::Path::new(root).join("device-profiles"))
        .expect("shipped profiles load");
    let pipelines = PipelineSet::load_dir(
        &std::path::Path::new(root).join("pipelines"),
        Some(&profiles),
    )
    .expect("shipped pipelines load");
    let dev = |id: &str, profile: &str, dept: &str, lat: f64, lon: f64| Device {
        device_id: id.into(),
        profile: profile.into(),
        location: Location { lat, lon },
        department: dept.into(),
        district: "Xihu".into(),
    };
    let registry = Registry::from_parts(
        vec![
            dev("PG-1", "pressure-logger", "water", 30.2745, 120.1548),
            dev("PG-2", "pressure-logger", "water", 30.2900, 120.1700),
            dev("TC-1", "traffic-camera", "traffic", 30.2760, 120.1560),
            dev("TC-2", "traffic-camera", "traffic", 30.2910, 120.1710),
            dev("AQ-1", "air-senml", "environment", 30.2700, 120.1500),
            dev("AQ-2", "air-senml", "environment", 30.2900, 120.1800),
        ],
        vec![],
    );
    Definitions {
        pipelines: Arc::new(pipelines),
        profiles: Arc::new(profiles),
        registry: Arc::new(registry),
        open_incidents: Vec::new(),
    }
}

fn reading(device: &str, profile: &str, metric: &str, ts: i64, value: f64) -> Reading {
    Reading {
        device_id: device.into(),
        profile: profile.into(),
        metric: metric.into(),
        ts: EventTime(ts),
        value,
        seq: None,
        arrival: EventTime(ts),
    }
}

/// Two hours of six devices with random bursts, pollution, accidents, silences, frozen values,
/// out-of-range values, duplicates, and arrival jitter/lateness; in arrival order, batched.
fn random_stream(seed: u64) -> Vec<Vec<Reading>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start: i64 = 1_795_300_000_000;
    let end = start + 2 * 3600 * 1000;
    let mut all: Vec<Reading> = Vec::new();
    // Random event windows per device.
    let window = |rng: &mut ChaCha8Rng| {
        let s = start + rng.random_range(20 * 60_000..90 * 60_000);
        (s, s + rng.random_range(5 * 60_000..30 * 60_000))
    };
    for id in ["PG-1", "PG-2"] {
        let (ds, de) = window(&mut rng);
        let (ss, se) = window(&mut rng);
        let frozen = rng.random_bool(0.3);
        let mut t = start;
        while t < end {
            if !(ss..se).contains(&t) || !rng.random_bool(0.5) {
                let mut v = 400.0 + rng.random_range(-2.0..2.0);
                if (ds..de).contains(&t) {
                    v *= 0.55;
                }
                if frozen && t > se {
                    v = 411.1;
                }
                if rng.random_bool(0.002) {
                    v = 0.0;
                }
                all.push(reading(id, "pressure-logger", "pressure_kpa", t, v));
            }
            t += 5_000;
        }
    }
    for id in ["TC-1", "TC-2"] {
        let (ds, de) = window(&mut rng);
        let mut t = start;
        while t < end {
            let slow = (ds..de).contains(&t);
            let speed = if slow { 12.0 } else { 50.0 } + rng.random_range(-3.0..3.0);
            let occ = if slow { 40.0 } else { 15.0 } + rng.random_range(-2.0..2.0);
            all.push(reading(id, "traffic-camera", "avg_speed_kmh", t, speed));
            all.push(reading(id, "traffic-camera", "occupancy_pct", t, occ));
            if rng.random_bool(0.01) {
                let kind = if rng.random_bool(0.5) {
                    "event.accident"
                } else {
                    "event.water_on_road"
                };
                all.push(reading(
                    id,
                    "traffic-camera",
                    kind,
                    t + 1,
                    rng.random_range(0.2..1.0),
                ));
            }
            t += 10_000;
        }
    }
    for id in ["AQ-1", "AQ-2"] {
        let (ps, pe) = window(&mut rng);
        let mut t = start;
        while t < end {
            let v = if (ps..pe).contains(&t) { 120.0 } else { 30.0 } + rng.random_range(-5.0..5.0);
            all.push(reading(id, "air-senml", "pm2_5", t, v));
            t += 60_000;
        }
    }
    // Arrival: device time + delay (sometimes minutes late), duplicates now and then.
    for r in &mut all {
        let late = if rng.random_bool(0.02) {
            rng.random_range(60_000..400_000)
        } else {
            0
        };
        r.arrival = EventTime(r.ts.0 + rng.random_range(0..3_000) + late);
    }
    let dups: Vec<Reading> = all
        .iter()
        .filter(|_| rng.random_bool(0.01))
        .cloned()
        .collect();
    all.extend(dups);
    all.sort_by_key(|r| r.arrival);
    let mut batches = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let n = rng.random_range(1..40).min(all.len() - i);
        batches.push(all[i..i + n].to_vec());
        i += n;
    }
    batches
}

/// The same semantics as the dataflow, as one plain loop.
fn oracle(
    cfg: &DataflowConfig,
    defs: &Definitions,
    batches: &[Vec<Reading>],
) -> (Vec<Anomaly>, Vec<IncidentSnapshot>) {
    let mut gate = InputGate::new(cfg);
    let mut accepted: Vec<Reading> = Vec::new();
    for r in batches.iter().flatten() {
        if gate.classify(r) == Verdict::Accept {
            accepted.push(r.clone());
        }
    }
    let final_ms = gate.watermark().map_or(0, |w| tick_of(w) as i64 * TICK_MS);
    accepted.sort_by(reading_order);
    let mut bank = DetectorBank::new(defs.pipelines.clone(), defs.profiles.clone());
    let mut anomalies = Vec::new();
    let (before, after): (Vec<_>, Vec<_>) = accepted.into_iter().partition(|r| r.ts.0 < final_ms);
    for r in &before {
        bank.observe(r, &mut anomalies);
    }
    bank.on_watermark(EventTime(final_ms), &mut anomalies);
    for r in &after {
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

fn last_per_id(
    snaps: impl IntoIterator<Item = IncidentSnapshot>,
) -> BTreeMap<String, IncidentSnapshot> {
    snaps.into_iter().map(|s| (s.id.clone(), s)).collect()
}

fn dataflow_result(
    workers: usize,
    defs: &Definitions,
    batches: &[Vec<Reading>],
) -> (Vec<Anomaly>, BTreeMap<String, IncidentSnapshot>) {
    let cfg = DataflowConfig {
        workers,
        ..DataflowConfig::default()
    };
    let out = run_to_end(cfg, defs.clone(), batches.to_vec()).expect("dataflow runs");
    let mut anomalies = Vec::new();
    let mut snaps = Vec::new();
    for o in out {
        match o {
            Output::Anomaly(a) => anomalies.push(a),
            Output::Incident(s) => snaps.push(s),
            _ => {}
        }
    }
    anomalies.sort_by(anomaly_order);
    (anomalies, last_per_id(snaps))
}

#[test]
fn dataflow_equals_plain_loop_for_any_worker_count() {
    let defs = defs();
    let cfg = DataflowConfig::default();
    let mut incidents_seen = 0;
    for seed in 1..=4u64 {
        let batches = random_stream(seed);
        let (want_anoms, want_snaps) = oracle(&cfg, &defs, &batches);
        let want = last_per_id(want_snaps);
        assert!(
            !want_anoms.is_empty(),
            "seed {seed}: the stream must exercise the detectors"
        );
        incidents_seen += want.len();
        for workers in [1, 3] {
            let (anoms, snaps) = dataflow_result(workers, &defs, &batches);
            assert_eq!(
                anoms, want_anoms,
                "seed {seed}, {workers} workers: anomalies differ"
            );
            assert_eq!(
                snaps, want,
                "seed {seed}, {workers} workers: incidents differ"
            );
        }
    }
    assert!(
        incidents_seen >= 4,
        "the random streams must open incidents, saw {incidents_seen}"
    );
}

#[test]
fn batching_does_not_change_the_result() {
    // Same arrival order, different batch boundaries (as fast or slow arrival would give).
    let defs = defs();
    let batches = random_stream(9);
    let singles: Vec<Vec<Reading>> = batches.iter().flatten().map(|r| vec![r.clone()]).collect();
    let one_batch: Vec<Vec<Reading>> = vec![batches.iter().flatten().cloned().collect()];
    let a = dataflow_result(2, &defs, &batches);
    let b = dataflow_result(2, &defs, &singles);
    let c = dataflow_result(2, &defs, &one_batch);
    assert_eq!(a, b);
    assert_eq!(a, c);
}

/// A pressure stream that freezes (exact same value) from `freeze_at_s` on, every 5 s.
fn frozen_logger(start_s: i64, freeze_at_s: i64, end_s: i64) -> Vec<Reading> {
    (0..)
        .map(|i| start_s + i * 5)
        .take_while(|t| *t < end_s)
        .map(|t| {
            let v = if t >= freeze_at_s {
                411.1
            } else {
                400.0 + (t % 7) as f64
            };
            reading("PG-1", "pressure-logger", "pressure_kpa", t * 1000, v)
        })
        .collect()
}

#[test]
fn reload_keeps_state_of_unchanged_detectors_and_rebuilds_changed_ones() {
    let defs = defs();
    let mut bank = DetectorBank::new(defs.pipelines.clone(), defs.profiles.clone());
    let mut out = Vec::new();
    let start = 1_795_300_000;
    // 10 of the 15 frozen minutes `sensor_frozen` needs, then a reload that changes another
    // signal (pressure_drop) only.
    let stream = frozen_logger(start, start + 600, start + 1600);
    let (before, after): (Vec<_>, Vec<_>) = stream
        .into_iter()
        .partition(|r| r.ts.0 < (start + 1200) * 1000);
    for r in &before {
        bank.observe(r, &mut out);
    }
    assert!(
        out.iter().all(|a| a.signal != "sensor_frozen"),
        "not frozen long enough yet"
    );
    let mut changed = (*defs.pipelines).clone();
    if let Some(s) = changed.signals.get_mut("pressure_drop") {
        if let crate::detect::DetectorConfig::Step(c) = &mut s.detector {
            c.change_pct = 40.0;
        }
    }
    let before_count = bank.instances();
    bank.reload(Arc::new(changed), defs.profiles.clone());
    assert_eq!(
        bank.instances(),
        before_count - 1,
        "only the changed signal's detector is dropped"
    );
    for r in &after {
        bank.observe(r, &mut out);
    }
    let frozen: Vec<_> = out.iter().filter(|a| a.signal == "sensor_frozen").collect();
    assert_eq!(
        frozen.len(),
        1,
        "the flatline detector kept its 10 minutes: {out:#?}"
    );
    let ts = frozen[0].ts.0 / 1000;
    assert!(
        (start + 1500..=start + 1505).contains(&ts),
        "fires 15 min after freezing: {ts}"
    );
}

#[test]
fn reload_through_the_dataflow_applies_from_the_watermark_on() {
    let defs = defs();
    let (in_tx, in_rx) = crossbeam_channel::bounded(16);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let reloads = ReloadHandle::new(defs.pipelines.clone(), defs.profiles.clone());
    let cfg = DataflowConfig {
        workers: 2,
        ..DataflowConfig::default()
    };
    let handle =
        spawn_with_reloads(cfg, defs.clone(), reloads.clone(), in_rx, out_tx).expect("spawn");
    // Remove every incident rule except device_fault: a pollution episode after the reload must
    // not open, while the stations' state carries on.
    let mut only_faults = (*defs.pipelines).clone();
    only_faults.rules.retain(|r| r.kind == "device_fault");
    let start = 1_795_300_000_000i64;
    let pm = |id: &str, t: i64, v: f64| reading(id, "air-senml", "pm2_5", t, v);
    let mut early = Vec::new();
    for i in 0..30 {
        early.push(pm("AQ-1", start + i * 60_000, 30.0));
        early.push(pm("AQ-2", start + i * 60_000, 30.0));
    }
    in_tx.send(Input::Readings(early)).expect("send");
    // Let the watermark move, then reload.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let v = reloads.publish(Arc::new(only_faults), defs.profiles.clone());
    assert_eq!(v, 1);
    let mut late = Vec::new();
    for i in 30..90 {
        late.push(pm("AQ-1", start + i * 60_000, 120.0));
        late.push(pm("AQ-2", start + i * 60_000, 120.0));
    }
    in_tx.send(Input::Readings(late)).expect("send");
    drop(in_tx);
    handle.join().expect("join").expect("dataflow ok");
    let outputs: Vec<Output> = out_rx.try_iter().collect();
    let raised = outputs
        .iter()
        .filter(|o| matches!(o, Output::Anomaly(a) if a.signal == "pm25_high"))
        .count();
    assert!(raised >= 2, "the pm25 detectors kept running: {raised}");
    let pollution = outputs
        .iter()
        .filter(|o| matches!(o, Output::Incident(s) if s.kind == "pollution_episode"))
        .count();
    assert_eq!(pollution, 0, "the removed rule no longer opens incidents");
}
