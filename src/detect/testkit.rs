//! Helpers for the detectors' tests: a pressure-logger context, readings at second offsets from
//! a UTC midnight, seeded Gaussian noise; and the tests of the shared plumbing in `common`.

use super::common::{metric_matches, secs_to_ms, Streak};
use super::{Detector, DetectorContext};
use crate::model::{Anomaly, EventTime, Phase, Reading};

/// 2026-11-22T00:00:00Z (a Sunday), so second offsets are also UTC times of day.
pub(crate) const T0_MS: i64 = 1_795_305_600_000;

pub(crate) fn ctx() -> DetectorContext {
    DetectorContext {
        device_id: "PG-0311".into(),
        metric: "pressure_kpa".into(),
        signal: "pressure_drop".into(),
        valid_range: Some((0.0, 1000.0)),
        unit: "kPa".into(),
        interval_secs: 5.0,
    }
}

pub(crate) fn at(secs: f64) -> EventTime {
    EventTime(T0_MS + secs_to_ms(secs))
}

pub(crate) fn reading(secs: f64, value: f64) -> Reading {
    Reading {
        device_id: "PG-0311".into(),
        profile: "pressure-logger".into(),
        metric: "pressure_kpa".into(),
        ts: at(secs),
        value,
        seq: None,
        arrival: at(secs),
    }
}

/// Feeds (second offset, value) pairs; returns every anomaly in order.
pub(crate) fn feed(det: &mut dyn Detector, points: &[(f64, f64)]) -> Vec<Anomaly> {
    points
        .iter()
        .filter_map(|&(s, v)| det.observe(&reading(s, v)))
        .collect()
}

/// `values` at `step_secs` spacing from `start_secs`.
pub(crate) fn series(start_secs: f64, step_secs: f64, values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (start_secs + i as f64 * step_secs, v))
        .collect()
}

/// Deterministic noise: `n` normal samples with mean `mean` and deviation `sd`.
pub(crate) fn noise(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    use rand::SeedableRng;
    use rand_distr_free::normal;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| mean + sd * normal(&mut rng)).collect()
}

/// A standard normal sample by Box–Muller (rand 0.9 without rand_distr).
mod rand_distr_free {
    use rand::Rng;
    pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

pub(crate) fn phases(out: &[Anomaly]) -> Vec<Phase> {
    out.iter().map(|a| a.phase).collect()
}

#[test]
fn metric_patterns() {
    assert!(metric_matches("*", "pm10"));
    assert!(metric_matches("event.*", "event.accident"));
    assert!(!metric_matches("event.*", "eventually"));
    assert!(metric_matches("pm10", "pm10"));
    assert!(!metric_matches("pm10", "pm2_5"));
}

#[test]
fn streak_breaks_on_long_gaps() {
    let mut s = Streak::default();
    assert_eq!(s.hold(at(0.0), 15_000), 0.0);
    assert_eq!(s.hold(at(10.0), 15_000), 10.0);
    assert_eq!(
        s.hold(at(40.0), 15_000),
        0.0,
        "a 30 s gap restarts the streak"
    );
    assert_eq!(s.hold(at(45.0), 15_000), 5.0);
}
