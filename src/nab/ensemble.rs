//! The streaming NAB scorer: an ensemble of [`crate::detect`] detectors whose per-reading
//! grades ([`Detector::score`]) are turned into one anomaly score in [0, 1].
//!
//! Per reading, for each member:
//! 1. feed the value (or the change since the previous reading) to the detector and take its
//!    trigger ratio `r` ([`trigger_ratio`] of the grade); a reading it does not grade (warm-up)
//!    gives no evidence;
//! 2. optionally sustain it (CUSUM: `s = max(0, s + min(r, clip) − k)`);
//! 3. novelty `x / (x + best)`, `best` the largest evidence the member has seen on this stream
//!    before (0 during the member's first `warmup_graded` graded readings). 0.5 means "as unusual
//!    as the most unusual reading so far"; a record is above 0.5.
//!
//! Why records: every NAB stream has its own scale, noise and habits (daily spikes, zeros); one
//! corpus-wide threshold only works on a score that means the same everywhere. "Beats what this
//! stream has done before" does, and record-breaking gets rarer as a stream ages (about ln n in n
//! readings of noise), which keeps false positives down. Then the ensemble score is the members'
//! largest novelty, reported only when it beats the combined score of each of the previous
//! `escalation_rows` readings (else 0): NAB counts one detection per window and every extra
//! alarm outside a window as a false positive. Each score depends only on readings up to and
//! including its own: nothing looks ahead, nothing knows the stream's length.

use std::collections::VecDeque;

use crate::detect::{build, trigger_ratio, Detector, DetectorContext};
use crate::model::{EventTime, Reading};

use super::config::{EnsembleConfig, Input, MemberConfig, SustainConfig};

/// Largest trigger ratio used (a grade that rounds to 1 would be +inf).
const MAX_RATIO: f64 = 1e300;

/// Metric name the readings carry (the detectors watch it).
const METRIC: &str = "value";

struct Member {
    detector: Box<dyn Detector>,
    input: Input,
    sustain: Option<SustainConfig>,
    warmup: usize,
    previous: Option<f64>,
    sum: f64,
    graded: usize,
    best: f64,
}

impl Member {
    fn new(cfg: &MemberConfig, stream: &str) -> Self {
        let ctx = DetectorContext {
            device_id: stream.to_string(),
            metric: METRIC.into(),
            signal: cfg.name.clone(),
            valid_range: None,
            unit: String::new(),
            // Unknown: NAB streams have no declared interval (no detector used here needs it).
            interval_secs: 0.0,
        };
        Member {
            detector: build(&cfg.detector, &ctx),
            input: cfg.input,
            sustain: cfg.sustain,
            warmup: cfg.warmup_graded,
            previous: None,
            sum: 0.0,
            graded: 0,
            best: 0.0,
        }
    }

    /// The member's novelty for this reading, in [0, 1).
    fn novelty(&mut self, reading: &mut Reading) -> f64 {
        let value = reading.value;
        let fed = match self.input {
            Input::Value => Some(value),
            Input::Diff => self.previous.map(|p| value - p),
        };
        if value.is_finite() {
            self.previous = Some(value);
        }
        let Some(fed) = fed else { return 0.0 };
        reading.value = fed;
        self.detector.observe(reading);
        reading.value = value;
        let Some(grade) = self.detector.score() else {
            return 0.0;
        };
        let ratio = trigger_ratio(grade).min(MAX_RATIO);
        let evidence = match self.sustain {
            Some(s) => {
                self.sum = (self.sum + ratio.min(s.clip) - s.k).max(0.0);
                self.sum
            }
            None => ratio,
        };
        self.graded += 1;
        let novelty = if self.graded > self.warmup && evidence > 0.0 {
            // x / (x + best), written so that huge values cannot overflow.
            1.0 / (1.0 + self.best / evidence)
        } else {
            0.0
        };
        self.best = self.best.max(evidence);
        novelty
    }
}

/// The ensemble for one stream. Feed readings in order with [`Ensemble::score`].
pub struct Ensemble {
    members: Vec<Member>,
    recent: VecDeque<f64>,
    escalation_rows: usize,
    reading: Reading,
}

impl Ensemble {
    /// A fresh ensemble for the stream called `stream` (used as the device id).
    pub fn new(cfg: &EnsembleConfig, stream: &str) -> Self {
        Ensemble {
            members: cfg.members.iter().map(|m| Member::new(m, stream)).collect(),
            recent: VecDeque::with_capacity(cfg.escalation_rows + 1),
            escalation_rows: cfg.escalation_rows,
            reading: Reading {
                device_id: stream.to_string(),
                profile: "nab".into(),
                metric: METRIC.into(),
                ts: EventTime(0),
                value: 0.0,
                seq: None,
                arrival: EventTime(0),
            },
        }
    }

    /// The anomaly score in [0, 1] of the next reading (event time `ts`, value `value`).
    pub fn score(&mut self, ts: EventTime, value: f64) -> f64 {
        self.reading.ts = ts;
        self.reading.arrival = ts;
        self.reading.value = value;
        let mut combined = 0.0f64;
        for m in &mut self.members {
            combined = combined.max(m.novelty(&mut self.reading));
        }
        let beaten = self.recent.iter().copied().fold(0.0f64, f64::max);
        let out = if combined > beaten { combined } else { 0.0 };
        if self.escalation_rows > 0 {
            self.recent.push_back(combined);
            if self.recent.len() > self.escalation_rows {
                self.recent.pop_front();
            }
        }
        out.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nab::config::EnsembleConfig;

    fn noise(n: usize, seed: u64) -> Vec<f64> {
        // xorshift: deterministic, no dependency on the rand crate's stream stability.
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 10_000) as f64 / 10_000.0
            })
            .collect()
    }

    fn scores(values: &[f64]) -> Vec<f64> {
        let cfg = EnsembleConfig::load(None).expect("built-in config");
        let mut e = Ensemble::new(&cfg, "test");
        values
            .iter()
            .enumerate()
            .map(|(i, v)| e.score(EventTime(i as i64 * 300_000), *v))
            .collect()
    }

    #[test]
    fn a_late_spike_scores_highest_and_only_once() {
        let mut values: Vec<f64> = noise(3000, 7).iter().map(|x| 50.0 + x).collect();
        values[2500] = 80.0;
        let s = scores(&values);
        assert!(s.iter().all(|x| (0.0..=1.0).contains(x)));
        let top = s.iter().copied().fold(0.0, f64::max);
        assert_eq!(s[2500], top, "the spike must be the top score");
        assert!(s[2500] > 0.9, "{}", s[2500]);
        let after = s[2501..2600].iter().copied().fold(0.0, f64::max);
        assert!(
            after < 0.5,
            "no second alarm right after the spike: {after}"
        );
        // Noise alone rarely beats its own record late in the stream.
        let late_noise = s[1000..2500].iter().filter(|x| **x > 0.5).count();
        assert!(late_noise <= 5, "{late_noise} noise records");
    }

    /// The contract of `Detector::score` the ensemble relies on, through the public `build`.
    #[test]
    fn spike_and_seasonal_grade_every_reading_after_warm_up() {
        use crate::detect::{DetectorConfig, SeasonalConfig, SpikeConfig};
        let yaml = |t: &str| -> DetectorConfig {
            crate::config::load_yaml_str(std::path::Path::new("t.yaml"), t).expect("detector")
        };
        let ctx = DetectorContext {
            device_id: "d".into(),
            metric: METRIC.into(),
            signal: "s".into(),
            valid_range: None,
            unit: String::new(),
            interval_secs: 0.0,
        };
        let at = |i: usize, v: f64| Reading {
            device_id: "d".into(),
            profile: "p".into(),
            metric: METRIC.into(),
            ts: EventTime(i as i64 * 3_600_000),
            value: v,
            seq: None,
            arrival: EventTime(0),
        };
        let spike: DetectorConfig =
            yaml("{type: spike, window_samples: 50, threshold: 2, direction: up}");
        assert!(matches!(spike, DetectorConfig::Spike(SpikeConfig { .. })));
        let mut d = build(&spike, &ctx);
        let base = noise(60, 11);
        for (i, v) in base.iter().enumerate() {
            d.observe(&at(i, 10.0 + v));
            assert_eq!(
                d.score().is_some(),
                i >= 20,
                "graded only after min_samples ({i})"
            );
        }
        d.observe(&at(60, 100.0));
        let up = d.score().expect("graded");
        assert!(
            up > 0.99 && up < 1.0,
            "huge z: close to but below 1, got {up}"
        );
        assert!(trigger_ratio(up) > 50.0, "{up}");
        d.observe(&at(61, -100.0));
        assert_eq!(d.score(), Some(0.0), "the unwatched direction grades 0");
        d.observe(&at(61, 10.0));
        assert_eq!(
            d.score(),
            None,
            "a duplicate timestamp is dropped by the guard"
        );

        let seasonal: DetectorConfig = yaml("{type: seasonal, z: 3, min_days: 2}");
        assert!(matches!(
            seasonal,
            DetectorConfig::Seasonal(SeasonalConfig { .. })
        ));
        let mut d = build(&seasonal, &ctx);
        let daily = noise(24 * 4, 5);
        for (i, v) in daily.iter().enumerate() {
            d.observe(&at(i, 50.0 + (i % 24) as f64 + v));
            assert_eq!(d.score().is_some(), i >= 48, "graded from day 3 ({i})");
        }
        d.observe(&at(24 * 4, 500.0));
        assert!(d.score().is_some_and(|s| s > 0.9), "{:?}", d.score());
    }

    #[test]
    fn trigger_ratio_inverts_the_grade() {
        for r in [0.0, 0.5, 1.0, 3.0, 1e6] {
            let s = r / (1.0 + r);
            assert!((trigger_ratio(s) - r).abs() <= 1e-9 * r.max(1.0), "{r}");
        }
        assert_eq!(trigger_ratio(1.0), f64::INFINITY);
        assert_eq!(trigger_ratio(f64::NAN), 0.0);
    }

    #[test]
    fn a_constant_stream_never_alarms() {
        let s = scores(&vec![45.0; 2000]);
        assert!(s.iter().all(|x| *x == 0.0), "{:?}", &s[..10]);
    }

    #[test]
    fn non_finite_values_do_not_poison_the_scores() {
        let mut values: Vec<f64> = noise(600, 3).iter().map(|x| 10.0 + x).collect();
        values[300] = f64::NAN;
        values[301] = f64::INFINITY;
        let s = scores(&values);
        assert!(s.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
    }
}
