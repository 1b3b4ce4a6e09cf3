//! Tests of the `seasonal` detector: a learned daily dip, off-pattern drops, warm-up, local time
//! and weekly buckets, and the usual edge cases.

use super::super::testkit::{at, ctx, feed, noise, phases};
use super::super::{build, DetectorConfig};
use super::*;
use crate::detect::Detector;
use crate::model::Phase;

const DAY: f64 = 86_400.0;

fn cfg() -> SeasonalConfig {
    SeasonalConfig {
        period: Period::Day,
        bucket_mins: 60,
        deviation_pct: Some(15.0),
        z: Some(4.0),
        direction: Direction::Both,
        min_days: 3,
        ewma_alpha: 0.2,
        utc_offset_mins: 0,
        min_duration_secs: 600.0,
        min_scale: None,
    }
}

/// A logger reporting every 5 minutes.
fn det(c: SeasonalConfig) -> Box<dyn Detector> {
    build(
        &DetectorConfig::Seasonal(c),
        &DetectorContext {
            interval_secs: 300.0,
            ..ctx()
        },
    )
}

/// `days` of 5-minute pressure readings: 400 kPa, 300 kPa from 07:00 to 09:00, σ 3 kPa.
fn daily(seed: u64, first_day: usize, days: usize) -> Vec<(f64, f64)> {
    let n = days * 288;
    let eps = noise(seed, n, 0.0, 3.0);
    (0..n)
        .map(|i| {
            let t = (first_day * 288 + i) as f64 * 300.0;
            let hour = (t % DAY) / 3600.0;
            let base = if (7.0..9.0).contains(&hour) {
                300.0
            } else {
                400.0
            };
            (t, base + eps[i])
        })
        .collect()
}

#[test]
fn the_daily_dip_is_learned_and_an_off_pattern_drop_raises() {
    let mut d = det(cfg());
    let out = feed(d.as_mut(), &daily(1, 0, 7));
    assert!(out.is_empty(), "the 07:00-09:00 dip is normal: {out:?}");
    // Day 7: normal until 14:00, then 250 kPa for an hour, then normal again.
    let pts: Vec<(f64, f64)> = daily(2, 7, 1)
        .into_iter()
        .map(|(t, v)| {
            if (14.0..15.0).contains(&((t % DAY) / 3600.0)) {
                (t, v - 150.0)
            } else {
                (t, v)
            }
        })
        .collect();
    let out = feed(d.as_mut(), &pts);
    assert_eq!(phases(&out), vec![Phase::Raised, Phase::Cleared], "{out:?}");
    assert_eq!(
        out[0].ts,
        at(7.0 * DAY + 14.0 * 3600.0 + 600.0),
        "14:00 + 10 min held"
    );
    assert!(
        out[0].reason.contains("below the 14:00 baseline of "),
        "{}",
        out[0].reason
    );
    assert!(
        out[0].reason.starts_with("pressure_kpa 2"),
        "{}",
        out[0].reason
    );
    assert_eq!(out[1].ts, at(7.0 * DAY + 15.0 * 3600.0));
}

#[test]
fn nothing_is_judged_before_min_days() {
    let mut d = det(SeasonalConfig {
        min_duration_secs: 0.0,
        ..cfg()
    });
    let mut pts = daily(3, 0, 3);
    // Day 2 (only 2 days learned): 14:00 at 100 kPa.
    for p in pts
        .iter_mut()
        .filter(|p| (p.0 - 2.0 * DAY - 14.0 * 3600.0).abs() < 1.0)
    {
        p.1 = 100.0;
    }
    assert!(feed(d.as_mut(), &pts).is_empty());
    let out = feed(d.as_mut(), &[(3.0 * DAY + 14.0 * 3600.0, 100.0)]);
    assert_eq!(
        out.len(),
        1,
        "day 3 judges: one 100 kPa sample on day 2 widened σ, not enough to hide this"
    );
}

#[test]
fn local_time_and_weekly_labels() {
    let c = SeasonalConfig {
        utc_offset_mins: 480,
        period: Period::Week,
        min_days: 1,
        min_duration_secs: 0.0,
        ..cfg()
    };
    let mut d = det(c);
    // T0 is Sunday 2026-11-22 00:00Z = Sun 08:00 in UTC+8; a week later the same bucket.
    let mut pts: Vec<(f64, f64)> = (0..12).map(|i| (i as f64 * 300.0, 400.0)).collect();
    pts.push((7.0 * DAY, 200.0));
    let out = feed(d.as_mut(), &pts);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].reason.contains("the Sun 08:00 baseline"),
        "{}",
        out[0].reason
    );
}

#[test]
fn nan_gaps_duplicates_and_constant_input() {
    let mut d = det(SeasonalConfig {
        min_duration_secs: 0.0,
        z: None,
        ..cfg()
    });
    let mut pts: Vec<(f64, f64)> = (0..4 * 24).map(|h| (h as f64 * 3600.0, 400.0)).collect();
    pts.push((4.0 * DAY, f64::NAN));
    pts.push((4.0 * DAY + 1.0, 401.0));
    pts.push((4.0 * DAY + 1.0, 100.0)); // duplicate ts: ignored
    assert!(
        feed(d.as_mut(), &pts).is_empty(),
        "constant input: σ floored, nothing fires"
    );
    let out = feed(d.as_mut(), &[(4.0 * DAY + 2.0, 300.0)]);
    assert_eq!(out.len(), 1);
    assert!(
        out[0]
            .reason
            .contains("25% below the 00:00 baseline of 400.0 kPa"),
        "{}",
        out[0].reason
    );
}

#[test]
fn a_single_outlier_or_readings_across_a_gap_do_not_hold_the_duration() {
    let mut d = det(cfg()); // 600 s duration; 5-minute interval, so gaps over 15 min break it
    assert!(feed(d.as_mut(), &daily(4, 0, 4)).is_empty());
    let h = |hour: f64| 4.0 * DAY + hour * 3600.0;
    let pts = [
        (h(14.0), 100.0), // a single outlier
        (h(14.0) + 300.0, 400.0),
        (h(16.0), 250.0),
        (h(16.0) + 1200.0, 250.0), // 20 min later: not seen in between
        (h(16.0) + 1500.0, 400.0),
    ];
    assert!(feed(d.as_mut(), &pts).is_empty());
    let pts = [
        (h(17.0), 250.0),
        (h(17.0) + 300.0, 250.0),
        (h(17.0) + 600.0, 250.0),
    ];
    let out = feed(d.as_mut(), &pts);
    assert_eq!(phases(&out), vec![Phase::Raised]);
    assert_eq!(out[0].ts, at(h(17.0) + 600.0));
}

#[test]
fn validate_catches_bad_buckets_and_missing_criteria() {
    let mut p = Vec::new();
    SeasonalConfig {
        bucket_mins: 7,
        deviation_pct: None,
        z: None,
        ewma_alpha: 0.0,
        ..cfg()
    }
    .validate(&mut p);
    let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, vec!["bucket_mins", "deviation_pct", "ewma_alpha"]);
}
