//! What each injected incident looks like in the data: its timings, and the per-device effects
//! and truth of one placement (the pipelines are tuned to these signatures).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::city::{City, Model};
use super::effects::Effect;
use super::truth::{FaultKind, InjectedKind, TruthIncident};
use crate::model::{EventTime, Location};

/// Incident timings, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Durations {
    burst: i64,
    burst_camera: i64,
    /// First water_on_road event after t0, and between events: uniform in this range.
    burst_events: (i64, i64),
    accident: i64,
    pollution_ramp: i64,
    pollution_plateau: i64,
    frozen: i64,
    out_of_range: i64,
    /// `None`: silent until the end of the run.
    silent: Option<i64>,
}

impl Durations {
    /// Finite runs: the full signatures.
    pub(crate) fn finite() -> Self {
        Durations {
            burst: 1800,
            burst_camera: 1200,
            burst_events: (60, 180),
            accident: 900,
            pollution_ramp: 300,
            pollution_plateau: 2700,
            frozen: 2100,
            out_of_range: 1200,
            silent: None,
        }
    }

    /// Endless runs: every incident lasts `secs` (camera effects of a burst two thirds of it).
    pub(crate) fn lasting(secs: u64) -> Self {
        let l = i64::try_from(secs.max(240)).unwrap_or(i64::MAX / 4_000);
        let ramp = (l / 6).min(300);
        Durations {
            burst: l,
            burst_camera: l * 2 / 3,
            burst_events: (60, 120),
            accident: l,
            pollution_ramp: ramp,
            pollution_plateau: l - 2 * ramp,
            frozen: l,
            out_of_range: l,
            silent: Some(l),
        }
    }

    /// Seconds from start to end (`None`: until the end of the run).
    pub(crate) fn total_secs(&self, kind: InjectedKind) -> Option<i64> {
        Some(match kind {
            InjectedKind::WaterMainBurst => self.burst,
            InjectedKind::TrafficAccident => self.accident,
            InjectedKind::PollutionEpisode => 2 * self.pollution_ramp + self.pollution_plateau,
            InjectedKind::DeviceFault(FaultKind::Frozen) => self.frozen,
            InjectedKind::DeviceFault(FaultKind::OutOfRange) => self.out_of_range,
            InjectedKind::DeviceFault(FaultKind::Silent) => return self.silent,
        })
    }
}

/// A planned incident: its truth and what it does to which site (index into `City::sites`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planned {
    pub(crate) truth: TruthIncident,
    pub(crate) effects: Vec<(usize, Effect)>,
}

impl Durations {
    /// Effects and truth of `kind` on `sites` (a candidate set for that kind) over `[t0, end)`;
    /// `None` if the sites do not fit the kind.
    pub(crate) fn build(
        &self,
        city: &City,
        kind: InjectedKind,
        (t0, end): (i64, i64),
        sites: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Option<Planned> {
        let effects = match (kind, sites) {
            (InjectedKind::WaterMainBurst, &[logger, camera]) => {
                self.burst(city, logger, camera, t0, end, rng)
            }
            (InjectedKind::TrafficAccident, &[camera]) => accident(city, camera, t0, end, rng),
            (InjectedKind::PollutionEpisode, [_, _, ..]) => {
                let ramp_ms = self.pollution_ramp * 1000;
                let episode = |s: &usize| {
                    let target = rng.random_range(90.0..150.0);
                    (
                        *s,
                        Effect::Pm25Episode {
                            from: t0,
                            to: end,
                            ramp_ms,
                            target,
                        },
                    )
                };
                sites.iter().map(episode).collect()
            }
            (InjectedKind::DeviceFault(fault), &[s]) => {
                let until_run_end = self.silent.is_none();
                vec![(s, fault_effect(city, fault, s, t0, end, until_run_end)?)]
            }
            _ => return None,
        };
        let site = |i: &usize| city.sites.get(*i);
        let locs: Vec<Location> = sites.iter().filter_map(site).map(|s| s.location).collect();
        let n = locs.len().max(1) as f64;
        let centroid = Location {
            lat: locs.iter().map(|l| l.lat).sum::<f64>() / n,
            lon: locs.iter().map(|l| l.lon).sum::<f64>() / n,
        };
        let mut departments: Vec<String> = sites
            .iter()
            .filter_map(site)
            .map(|s| s.family.department().to_string())
            .collect();
        departments.sort();
        departments.dedup();
        let truth = TruthIncident {
            kind: kind.name().to_string(),
            fault: match kind {
                InjectedKind::DeviceFault(f) => Some(f),
                _ => None,
            },
            start: EventTime(t0),
            end: EventTime(end),
            // A pollution episode is where its stations are; anything else at its first device.
            location: match kind {
                InjectedKind::PollutionEpisode => centroid,
                _ => locs.first().copied().unwrap_or(centroid),
            },
            devices: sites
                .iter()
                .filter_map(site)
                .map(|s| s.id.clone())
                .collect(),
            departments,
        };
        Some(Planned { truth, effects })
    }

    /// The logger's pressure collapses at t0; a minute later the camera's road slows, and
    /// water-on-road events follow every 1–3 min (finite runs) while the road is slow.
    fn burst(
        &self,
        city: &City,
        logger: usize,
        camera: usize,
        t0: i64,
        end: i64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<(usize, Effect)> {
        let factor = rng.random_range(0.50..0.65);
        let mut effects = vec![(
            logger,
            Effect::PressureFactor {
                from: t0,
                to: end,
                factor,
            },
        )];
        let from = t0 + 60_000;
        let to = from + self.burst_camera * 1000;
        let speed_factor = rng.random_range(0.25..0.40);
        let occupancy_factor = rng.random_range(1.5..2.0);
        effects.push((
            camera,
            Effect::Traffic {
                from,
                to,
                speed_factor,
                occupancy_factor,
            },
        ));
        let lanes = lanes_of(city, camera);
        let (lo, hi) = self.burst_events;
        let first = t0 + rng.random_range(lo..=hi) * 1000;
        let mut at = first;
        while at < first + self.burst_camera * 1000 {
            let lane = rng.random_range(1..=lanes);
            let confidence = rng.random_range(0.7..0.95);
            let kind = "water_on_road";
            effects.push((
                camera,
                Effect::CameraEvent {
                    at,
                    kind,
                    lane,
                    confidence,
                },
            ));
            at += rng.random_range(lo..=hi) * 1000;
        }
        effects
    }
}

/// One or two confident `accident` events 20 s apart, and the road nearly stops until `end`.
fn accident(
    city: &City,
    camera: usize,
    t0: i64,
    end: i64,
    rng: &mut ChaCha8Rng,
) -> Vec<(usize, Effect)> {
    let lane = rng.random_range(1..=lanes_of(city, camera));
    let n_events = if rng.random_bool(0.5) { 2 } else { 1 };
    let mut effects: Vec<(usize, Effect)> = (0..n_events)
        .map(|k| {
            let confidence = rng.random_range(0.85..0.98);
            let at = t0 + k * 20_000;
            (
                camera,
                Effect::CameraEvent {
                    at,
                    kind: "accident",
                    lane,
                    confidence,
                },
            )
        })
        .collect();
    let speed_factor = rng.random_range(0.10..0.25);
    let occupancy_factor = rng.random_range(2.0..3.0);
    effects.push((
        camera,
        Effect::Traffic {
            from: t0,
            to: end,
            speed_factor,
            occupancy_factor,
        },
    ));
    effects
}

/// A silent device (to the run's end when `until_run_end`), a logger frozen on its mean at
/// t0, or an out-of-range sentinel (logger `kpa_x10` 0, station PM2.5 9999).
fn fault_effect(
    city: &City,
    fault: FaultKind,
    site: usize,
    t0: i64,
    end: i64,
    until_run_end: bool,
) -> Option<Effect> {
    let model = &city.sites.get(site)?.model;
    Some(match (fault, model) {
        (FaultKind::Silent, _) => Effect::Silent {
            from: t0,
            to: if until_run_end { i64::MAX } else { end },
        },
        (FaultKind::Frozen, Model::Pressure(p)) => {
            let kpa_x10 = (p.mean_kpa(t0) * 10.0).round() as i64;
            Effect::PressureFixed {
                from: t0,
                to: end,
                kpa_x10,
            }
        }
        (FaultKind::OutOfRange, Model::Pressure(_)) => Effect::PressureFixed {
            from: t0,
            to: end,
            kpa_x10: 0,
        },
        (FaultKind::OutOfRange, Model::Air(_)) => Effect::Pm25Fixed {
            from: t0,
            to: end,
            value: 9999.0,
        },
        _ => return None,
    })
}

fn lanes_of(city: &City, camera: usize) -> u8 {
    match city.sites.get(camera).map(|s| &s.model) {
        Some(Model::Camera(c)) => c.lanes.max(1),
        _ => 1,
    }
}
