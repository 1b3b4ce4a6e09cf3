//! Tests of the registry: config shape (serde/YAML), validation through the enum, the input guard
//! with metric patterns, determinism and no-panic on hostile input for every detector.

use std::path::Path;

use rand::{Rng, SeedableRng};

use super::testkit::{ctx, reading};
use super::*;
use crate::model::Phase;

fn from_json(s: &str) -> Result<DetectorConfig, serde_json::Error> {
    serde_json::from_str(s)
}

/// One config per type, every field at a non-default value where it has one.
fn all_configs() -> Vec<DetectorConfig> {
    let yaml = [
        "type: threshold\nabove: 450\nbelow: 250\nhysteresis: 5\nmin_duration_secs: 30",
        "type: step\ndirection: down\nchange_pct: 20\nbaseline_secs: 600\nmin_duration_secs: 20\nmin_baseline_samples: 5\nmax_alarm_secs: 3600",
        "type: rate_of_change\nmax_rate_per_min: 10\ndirection: down\nmin_duration_secs: 10",
        "type: spike\nwindow_samples: 30\nmethod: ewma\nthreshold: 5\ndirection: up\nmin_samples: 10\nmin_scale: 0.5",
        "type: seasonal\nperiod: week\nbucket_mins: 30\ndeviation_pct: 20\nz: 4\ndirection: down\nmin_days: 2\newma_alpha: 0.3\nutc_offset_mins: 480\nmin_duration_secs: 60\nmin_scale: 1",
        "type: cusum\nk: 0.5\nh: 6\ndirection: both\nwarmup_samples: 20\nmax_alarm_secs: 7200\nmin_scale: 0.1",
        "type: flatline\ntolerance: 0.1\nmin_duration_secs: 60",
        "type: silence\nafter_secs: 30",
        "type: out_of_range\nmin: 0\nmax: 900\nmin_samples: 2",
        "type: event\nmin_confidence: 0.5\ncooldown_secs: 10",
    ];
    yaml.iter()
        .map(|y| {
            crate::config::load_yaml_str::<DetectorConfig>(Path::new("t.yaml"), y)
                .unwrap_or_else(|e| panic!("{y}: {e}"))
        })
        .collect()
}

#[test]
fn yaml_shapes_parse_validate_and_round_trip() {
    let names: Vec<&str> = all_configs().iter().map(|c| c.type_name()).collect();
    assert_eq!(
        names,
        vec![
            "threshold",
            "step",
            "rate_of_change",
            "spike",
            "seasonal",
            "cusum",
            "flatline",
            "silence",
            "out_of_range",
            "event"
        ]
    );
    for c in all_configs() {
        assert_eq!(c.validate(), Vec::<(String, String)>::new(), "{c:?}");
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert!(
            json.starts_with(&format!("{{\"type\":\"{}\"", c.type_name())),
            "{json}"
        );
        assert_eq!(from_json(&json).ok(), Some(c));
    }
}

#[test]
fn defaults_fill_in() {
    let c = from_json(r#"{"type":"step","change_pct":25}"#).ok();
    let expected = StepConfig {
        direction: Direction::Down,
        baseline_secs: 1800.0,
        change_pct: 25.0,
        min_duration_secs: 30.0,
        min_baseline_samples: 10,
        max_alarm_secs: None,
    };
    assert_eq!(c, Some(DetectorConfig::Step(expected)));
    let c = from_json(r#"{"type":"silence"}"#).ok();
    assert_eq!(
        c,
        Some(DetectorConfig::Silence(SilenceConfig {
            after_secs: None,
            factor: 3.0
        }))
    );
}

#[test]
fn unknown_fields_types_and_missing_required_fields_are_rejected() {
    let e = from_json(r#"{"type":"threshold","above":5,"min_duration":30}"#).err();
    assert!(e.is_some_and(|e| e.to_string().contains("unknown field `min_duration`")));
    assert!(from_json(r#"{"type":"zscore"}"#).is_err());
    assert!(
        from_json(r#"{"type":"step"}"#).is_err(),
        "change_pct is required"
    );
    assert!(
        from_json(r#"{"type":"flatline"}"#).is_err(),
        "min_duration_secs is required"
    );
    assert!(from_json(r#"{"type":"spike","method":"median"}"#).is_err());
    let yaml = "type: step\nchange_pct: 20\nbaseline_mins: 30\n";
    let e = crate::config::load_yaml_str::<DetectorConfig>(Path::new("p.yaml"), yaml).err();
    assert!(
        e.is_some_and(|e| e.field == "baseline_mins"),
        "YAML names the field"
    );
}

#[test]
fn validate_reports_every_problem_with_its_field() {
    let c = from_json(r#"{"type":"threshold","above":100,"below":200,"min_duration_secs":-3}"#);
    let p = c.map(|c| c.validate()).unwrap_or_default();
    assert_eq!(
        p,
        vec![
            (
                "min_duration_secs".to_string(),
                "must be >= 0, got -3".to_string()
            ),
            (
                "below".to_string(),
                "must be less than `above` (100), got 200".to_string()
            ),
        ]
    );
    let c = from_json(r#"{"type":"step","change_pct":20,"direction":"both","baseline_secs":-1}"#);
    assert_eq!(c.map(|c| c.validate().len()).ok(), Some(2));
}

#[test]
fn a_wildcard_metric_keeps_one_state_per_metric() {
    let ctx = DetectorContext {
        metric: "*".into(),
        unit: String::new(),
        ..ctx()
    };
    let cfg = DetectorConfig::Flatline(FlatlineConfig {
        tolerance: 0.0,
        min_duration_secs: 20.0,
    });
    let mut d = build(&cfg, &ctx);
    let mut out = Vec::new();
    for i in 0..10 {
        let t = i as f64 * 5.0;
        // pm10 is frozen, pm2_5 moves; interleaved they would never look frozen.
        out.extend(d.observe(&Reading {
            metric: "pm10".into(),
            ..reading(t, 51.0)
        }));
        out.extend(d.observe(&Reading {
            metric: "pm2_5".into(),
            ..reading(t, i as f64)
        }));
    }
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].metric.as_str(), out[0].phase),
        ("pm10", Phase::Raised)
    );
    let exact = build(&cfg, &super::testkit::ctx());
    let mut exact = exact;
    let other = Reading {
        metric: "bat_mv".into(),
        ..reading(0.0, 1.0)
    };
    assert!(
        exact.observe(&other).is_none(),
        "another metric never reaches the state"
    );
}

/// A hostile stream: normal data, NaN/inf, huge values, duplicates, gaps, steps.
fn hostile(seed: u64) -> Vec<Reading> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0.0;
    let mut out = Vec::new();
    for i in 0..3000 {
        t += match rng.random_range(0..100) {
            0 => 0.0,
            1 => 3600.0,
            _ => 5.0,
        };
        let v = match rng.random_range(0..200) {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => -1e308,
            3 => 1e308,
            _ => 400.0 + if i > 1500 { -150.0 } else { 0.0 } + rng.random_range(-5.0..5.0),
        };
        let metric = if rng.random_range(0..10) == 0 {
            "event.accident"
        } else {
            "pressure_kpa"
        };
        out.push(Reading {
            metric: metric.into(),
            ..reading(t, v)
        });
    }
    out
}

fn run(cfg: &DetectorConfig, ctx: &DetectorContext, input: &[Reading]) -> Vec<Anomaly> {
    let mut d = build(cfg, ctx);
    let mut out = Vec::new();
    for (i, r) in input.iter().enumerate() {
        out.extend(d.observe(r));
        if i % 7 == 0 {
            out.extend(d.on_watermark(EventTime(r.ts.0 - 2000)));
        }
    }
    out
}

#[test]
fn every_detector_is_deterministic_and_survives_hostile_input() {
    let input = hostile(42);
    for metric in ["pressure_kpa", "*"] {
        let ctx = DetectorContext {
            metric: metric.into(),
            ..ctx()
        };
        for cfg in all_configs() {
            let a = run(&cfg, &ctx, &input);
            assert_eq!(a, run(&cfg, &ctx, &input), "{}", cfg.type_name());
            for x in &a {
                assert!((0.0..=1.0).contains(&x.score), "{x:?}");
                assert!(x.value.is_finite(), "{x:?}");
                assert_eq!(x.detector, cfg.type_name());
            }
        }
    }
}

#[test]
fn invalid_configs_build_without_panicking() {
    let bad = [
        r#"{"type":"threshold"}"#,
        r#"{"type":"step","change_pct":-10,"baseline_secs":0,"min_baseline_samples":0}"#,
        r#"{"type":"rate_of_change","max_rate_per_min":0}"#,
        r#"{"type":"spike","window_samples":0,"threshold":0,"min_samples":0}"#,
        r#"{"type":"spike","window_secs":-5,"method":"ewma"}"#,
        r#"{"type":"seasonal","bucket_mins":0,"ewma_alpha":5}"#,
        r#"{"type":"cusum","h":-1,"warmup_samples":0}"#,
        r#"{"type":"flatline","min_duration_secs":-1,"tolerance":-1}"#,
        r#"{"type":"silence","after_secs":-1,"factor":-2}"#,
        r#"{"type":"out_of_range","min":10,"max":1,"min_samples":0}"#,
        r#"{"type":"event","min_confidence":7,"cooldown_secs":-9}"#,
    ];
    let input = hostile(7);
    for json in bad {
        let cfg = from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert!(!cfg.validate().is_empty(), "{json} should not validate");
        let _ = run(&cfg, &ctx(), &input);
    }
}
