//! One device's behaviour over time: its clock, its schedule, and what it sends at each tick.
//!
//! A tick at true time `T` only produces messages sent at `T` or later (camera events are
//! drawn for the coming 10 s), so once the engine has run every tick up to `T` it knows every
//! message that can arrive by `T`. Device timestamps are the true time plus the device's fixed
//! clock skew; schedules follow the device's own clock (stations report at whole minutes and
//! loggers sample at whole seconds, as their clocks see them).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::city::{Family, Model, Site};
use super::effects::Effects;
use super::payload;
use super::signals::AirSample;
use super::NoiseOptions;

const CAMERA_PERIOD_MS: i64 = 10_000;
const MINUTE_MS: i64 = 60_000;
/// Logger sampling period (s) and samples per upload.
const LOGGER_DT_S: i64 = 5;
const LOGGER_BATCH: i64 = 12;
const EVENT_KINDS: [&str; 6] = [
    "stopped_vehicle",
    "accident",
    "wrong_way",
    "pedestrian_on_road",
    "water_on_road",
    "congestion",
];

/// A rate or probability from the options: non-finite or negative is zero.
pub(crate) fn sane(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

fn prob(p: f64) -> f64 {
    sane(p).min(1.0)
}

/// A message leaving a device; the engine adds network delay and duplicates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outgoing {
    pub(crate) send_ms: i64,
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    /// QoS 1 (may be delivered twice).
    pub(crate) qos1: bool,
    /// Network delay range (ms, inclusive).
    pub(crate) delay_ms: (i64, i64),
    /// Extra delay of a late batch.
    pub(crate) extra_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Camera,
    /// SenML minutes waiting to go out together, and how many to gather.
    StationA {
        held: Vec<(i64, AirSample)>,
        gather: usize,
    },
    StationB,
    /// Next batch's first sample (logger clock, s), upload sequence, battery.
    Logger {
        t0_s: i64,
        seq: u64,
        uploads: i64,
        bat0_mv: i64,
    },
}

fn outgoing(
    send_ms: i64,
    topic: String,
    payload: Vec<u8>,
    qos1: bool,
    delay_ms: (i64, i64),
) -> Outgoing {
    Outgoing {
        send_ms,
        topic,
        payload,
        qos1,
        delay_ms,
        extra_ms: 0,
    }
}

/// A publishing device's runtime state.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) rng: ChaCha8Rng,
    /// Device clock minus true time.
    skew_ms: i64,
    /// Second of the minute the device reports at (its clock).
    offset_ms: i64,
    pub(crate) effects: Effects,
    state: State,
}

impl Node {
    pub(crate) fn new(site: &Site, mut rng: ChaCha8Rng, noise: &NoiseOptions) -> Node {
        let skew_s = (rng.random::<f64>() * 2.0 - 1.0) * sane(noise.clock_skew_max_secs);
        let skew_ms = (skew_s * 1000.0).round() as i64;
        let (offset_ms, state) = match site.family {
            Family::Camera => (rng.random_range(0..CAMERA_PERIOD_MS), State::Camera),
            Family::StationA => (
                rng.random_range(0..60) * 1000,
                State::StationA {
                    held: Vec::new(),
                    gather: 1,
                },
            ),
            Family::StationB => (0, State::StationB),
            Family::Logger => {
                let seq = rng.random_range(1000..5000);
                let bat0_mv = rng.random_range(3560..3640);
                (
                    rng.random_range(0..12) * 5000,
                    State::Logger {
                        t0_s: 0,
                        seq,
                        uploads: 0,
                        bat0_mv,
                    },
                )
            }
        };
        Node {
            rng,
            skew_ms,
            offset_ms,
            effects: Effects::default(),
            state,
        }
    }

    /// The device clock's reading at true time `t`.
    pub(crate) fn device_ms(&self, t: i64) -> i64 {
        t + self.skew_ms
    }

    /// True time of the first tick at or after `start_ms`.
    pub(crate) fn first_due(&mut self, start_ms: i64) -> i64 {
        if let State::Camera = self.state {
            return start_ms + self.offset_ms;
        }
        // First minute boundary (+ offset) of the device clock at or after the start.
        let dev = start_ms + self.skew_ms - self.offset_ms;
        let dev = dev.div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS + self.offset_ms;
        if let State::Logger { t0_s, .. } = &mut self.state {
            // The first upload carries the minute before it.
            *t0_s = (dev - MINUTE_MS) / 1000;
        }
        dev - self.skew_ms
    }

    /// Runs the tick due at true time `t`, appending messages; returns the next tick's time.
    pub(crate) fn tick(
        &mut self,
        site: &Site,
        t: i64,
        noise: &NoiseOptions,
        out: &mut Vec<Outgoing>,
    ) -> i64 {
        self.effects.prune(t - 3_600_000);
        match &site.model {
            Model::Camera(m) => {
                if !self.effects.silent(t) {
                    let (speed, occ) = self.effects.traffic(t);
                    let lanes = m.lane_stats(t, speed, occ, &mut self.rng);
                    let body = payload::camera_stats(&site.id, t + self.skew_ms, &lanes);
                    out.push(outgoing(
                        t,
                        payload::stats_topic(&site.id),
                        body,
                        false,
                        (50, 2000),
                    ));
                }
                self.camera_events(site, m.lanes, t, noise, out);
                t + CAMERA_PERIOD_MS
            }
            Model::Air(m) => {
                let effects = &self.effects;
                let sample = m.sample(t, |v| effects.pm25(t, v), &mut self.rng);
                let silent = self.effects.silent(t);
                let dev_ms = t + self.skew_ms;
                let topic = payload::data_topic(site.family, &site.id);
                match &mut self.state {
                    State::StationA { held, gather } if !silent => {
                        // Now and then the station keeps 2–3 minutes and sends them as one pack.
                        if held.is_empty() {
                            *gather = if self.rng.random_bool(0.10) {
                                self.rng.random_range(2..=3)
                            } else {
                                1
                            };
                        }
                        held.push((dev_ms, sample));
                        if held.len() >= *gather {
                            let body = payload::senml_pack(&site.id, held);
                            held.clear();
                            out.push(outgoing(t, topic, body, true, (50, 2000)));
                        }
                    }
                    State::StationA { held, .. } => held.clear(),
                    _ if !silent => {
                        let body = payload::vendor_b(&site.id, dev_ms, &sample);
                        out.push(outgoing(t, topic, body, false, (50, 2000)));
                    }
                    _ => {}
                }
                t + MINUTE_MS
            }
            Model::Pressure(m) => {
                let State::Logger { t0_s, .. } = self.state else {
                    return t + MINUTE_MS;
                };
                let p_dip = prob(noise.single_dips_per_logger_hour / 720.0);
                let samples: Vec<i64> = (0..LOGGER_BATCH)
                    .map(|k| {
                        let at = (t0_s + k * LOGGER_DT_S) * 1000 - self.skew_ms;
                        let v = self
                            .effects
                            .pressure_x10(at, m.sample_kpa(at, &mut self.rng));
                        // A single-sample dip, never inside an incident (it would blur it).
                        let dip = self.rng.random_bool(p_dip)
                            && !self.effects.touches(at - MINUTE_MS, at + MINUTE_MS);
                        if dip {
                            (v as f64 * self.rng.random_range(0.70..0.80)).round() as i64
                        } else {
                            v
                        }
                    })
                    .collect();
                let late = self.rng.random_bool(prob(noise.late_batch_rate));
                let extra_ms = if late {
                    self.rng.random_range(60_000..=180_000)
                } else {
                    0
                };
                let silent = self.effects.silent(t);
                if let State::Logger {
                    t0_s,
                    seq,
                    uploads,
                    bat0_mv,
                } = &mut self.state
                {
                    let first = *t0_s;
                    *t0_s += LOGGER_BATCH * LOGGER_DT_S;
                    if !silent {
                        *seq += 1;
                        *uploads += 1;
                        let bat = *bat0_mv - *uploads / 20;
                        let body = payload::logger_up(&site.id, *seq, first, samples, bat);
                        let topic = payload::data_topic(Family::Logger, &site.id);
                        let mut o = outgoing(t, topic, body, true, (500, 5000));
                        o.extra_ms = extra_ms;
                        out.push(o);
                    }
                }
                t + MINUTE_MS
            }
        }
    }

    /// Incident events and low-confidence noise events of the next 10 s.
    fn camera_events(
        &mut self,
        site: &Site,
        lanes: u8,
        t: i64,
        noise: &NoiseOptions,
        out: &mut Vec<Outgoing>,
    ) {
        let mut events = self.effects.camera_events(t, t + CAMERA_PERIOD_MS);
        let p = prob(noise.low_conf_events_per_camera_hour * CAMERA_PERIOD_MS as f64 / 3_600_000.0);
        if self.rng.random_bool(p) {
            let at = t + self.rng.random_range(0..CAMERA_PERIOD_MS);
            let kind = EVENT_KINDS[self.rng.random_range(0..EVENT_KINDS.len())];
            let lane = self.rng.random_range(1..=lanes.max(1));
            // Low confidence only: accident/water_on_road above 0.45 come from incidents alone.
            events.push((at, kind, lane, self.rng.random_range(0.15..0.45)));
        }
        events.sort_by_key(|e| e.0);
        for (at, kind, lane, confidence) in events {
            if self.effects.silent(at) {
                continue;
            }
            let body = payload::camera_event(&site.id, at + self.skew_ms, kind, lane, confidence);
            out.push(outgoing(
                at,
                payload::events_topic(&site.id),
                body,
                true,
                (50, 2000),
            ));
        }
    }

    /// The family-specific valid payload a malformed message is cut from.
    pub(crate) fn sample_payload(site: &Site, t: i64, rng: &mut ChaCha8Rng) -> Vec<u8> {
        match &site.model {
            Model::Camera(m) => payload::camera_stats(&site.id, t, &m.lane_stats(t, 1.0, 1.0, rng)),
            Model::Air(m) if site.family == Family::StationA => {
                payload::senml_pack(&site.id, &[((t / 1000) * 1000, m.sample(t, |v| v, rng))])
            }
            Model::Air(m) => payload::vendor_b(&site.id, t, &m.sample(t, |v| v, rng)),
            Model::Pressure(m) => {
                let kpa = (0..LOGGER_BATCH)
                    .map(|_| (m.sample_kpa(t, rng) * 10.0).round() as i64)
                    .collect();
                payload::logger_up(&site.id, rng.random_range(1000..9000), t / 1000, kpa, 3590)
            }
        }
    }
}
