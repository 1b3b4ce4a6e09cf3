//! Where and when injected incidents go: candidate devices per kind and the spacing rule.
//!
//! Placement rule: two incidents whose time spans come within the gap of each other (30 min for
//! finite runs) use devices at least 3 km apart, so each one is found once and alone. A finite
//! plan is searched with random restarts until every requested incident fits; an endless plan
//! places one incident at a time, delaying it while nothing fits.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::city::{City, Family};
use super::signatures::{Durations, Planned};
use super::truth::{FaultKind, InjectedKind};

const MIN_APART_M: f64 = 3000.0;
const MIN: i64 = 60_000;

/// In which order `Planner::place` tries start times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryOrder {
    EarliestFirst,
    LatestFirst,
}

#[derive(Debug, Clone)]
struct Busy {
    from: i64,
    to: i64,
    sites: Vec<usize>,
}

/// Places incidents one by one, keeping what is already placed to respect the spacing rule.
#[derive(Debug, Clone)]
pub(crate) struct Planner {
    pub(crate) rng: ChaCha8Rng,
    durations: Durations,
    gap_ms: i64,
    /// End of the run (`i64::MAX`: endless).
    run_end: i64,
    /// Finite runs use each device for one incident at most.
    forbid_reuse: bool,
    busy: Vec<Busy>,
    /// Pairwise distances between sites (m), computed once.
    dist: Vec<Vec<f64>>,
    silent_count: usize,
    out_of_range_count: usize,
}

impl Planner {
    pub(crate) fn new(
        city: &City,
        rng: ChaCha8Rng,
        durations: Durations,
        gap_secs: u64,
        run_end: i64,
    ) -> Self {
        let s = &city.sites;
        let dist = s
            .iter()
            .map(|a| {
                s.iter()
                    .map(|b| a.location.distance_m(&b.location))
                    .collect()
            })
            .collect();
        Planner {
            rng,
            durations,
            gap_ms: i64::try_from(gap_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4),
            run_end,
            forbid_reuse: run_end != i64::MAX,
            busy: Vec::new(),
            dist,
            silent_count: 0,
            out_of_range_count: 0,
        }
    }

    /// Drops placements that can no longer conflict with anything starting at `t` or later.
    pub(crate) fn forget_before(&mut self, t: i64) {
        let gap = self.gap_ms;
        self.busy.retain(|b| b.to.saturating_add(gap) > t);
    }

    /// Places `kind` with a start in `[earliest, latest]` (whole minutes, tried in `order`),
    /// or `None` when no placement respects the spacing rule.
    pub(crate) fn place(
        &mut self,
        city: &City,
        kind: InjectedKind,
        earliest: i64,
        latest: i64,
        order: TryOrder,
    ) -> Option<Planned> {
        let candidates = self.candidates(city, kind);
        let steps = if latest < earliest {
            0
        } else {
            (latest - earliest) / MIN + 1
        };
        let mut starts: Vec<i64> = (0..steps).map(|k| earliest + k * MIN).collect();
        match order {
            TryOrder::EarliestFirst => {}
            TryOrder::LatestFirst => starts.reverse(),
        }
        for t in starts {
            let end = match self.durations.total_secs(kind) {
                Some(secs) => t.saturating_add(secs * 1000),
                None => self.run_end,
            };
            if let Some(c) = candidates.iter().find(|c| !self.conflicts(t, end, c)) {
                let planned = self
                    .durations
                    .build(city, kind, (t, end), c, &mut self.rng)?;
                self.busy.push(Busy {
                    from: t,
                    to: end,
                    sites: c.clone(),
                });
                return Some(planned);
            }
        }
        None
    }

    fn conflicts(&self, from: i64, to: i64, sites: &[usize]) -> bool {
        self.busy.iter().any(|b| {
            let shared = sites.iter().any(|s| b.sites.contains(s));
            if self.forbid_reuse && shared {
                return true;
            }
            let near_in_time =
                from < b.to.saturating_add(self.gap_ms) && b.from < to.saturating_add(self.gap_ms);
            near_in_time
                && sites
                    .iter()
                    .any(|&a| b.sites.iter().any(|&o| self.dist[a][o] < MIN_APART_M))
        })
    }

    /// Every device set that could carry `kind`, in tiers of preference (each tier shuffled).
    fn candidates(&mut self, city: &City, kind: InjectedKind) -> Vec<Vec<usize>> {
        let of = |f: &dyn Fn(Family) -> bool| -> Vec<Vec<usize>> {
            let ids = city
                .sites
                .iter()
                .enumerate()
                .filter(|(_, s)| s.usable() && f(s.family));
            ids.map(|(i, _)| vec![i]).collect()
        };
        let cameras = of(&|f| f == Family::Camera);
        let loggers = of(&|f| f == Family::Logger);
        let stations = of(&|f| f.is_station());
        let tiers = match kind {
            InjectedKind::WaterMainBurst => vec![loggers
                .iter()
                .flat_map(|l| cameras.iter().map(move |c| vec![l[0], c[0]]))
                .filter(|p| (150.0..=400.0).contains(&self.dist[p[0]][p[1]]))
                .collect()],
            InjectedKind::TrafficAccident => vec![cameras],
            InjectedKind::PollutionEpisode => self.station_groups(city, &stations),
            InjectedKind::DeviceFault(FaultKind::Frozen) => vec![loggers],
            // Silent and out-of-range alternate between loggers and stations.
            InjectedKind::DeviceFault(FaultKind::Silent) => {
                self.silent_count += 1;
                if self.silent_count % 2 == 1 {
                    vec![loggers, stations]
                } else {
                    vec![stations, loggers]
                }
            }
            InjectedKind::DeviceFault(FaultKind::OutOfRange) => {
                self.out_of_range_count += 1;
                if self.out_of_range_count % 2 == 1 {
                    vec![stations, loggers]
                } else {
                    vec![loggers, stations]
                }
            }
        };
        let mut out = Vec::new();
        for mut tier in tiers {
            tier.shuffle(&mut self.rng);
            out.extend(tier);
        }
        out
    }

    /// Groups of 2 or 3 stations pairwise 2–5 km apart: both vendors first, the randomly chosen
    /// size first.
    fn station_groups(&mut self, city: &City, stations: &[Vec<usize>]) -> Vec<Vec<Vec<usize>>> {
        let ok = |a: usize, b: usize| (2000.0..=5000.0).contains(&self.dist[a][b]);
        let stations: Vec<usize> = stations.iter().map(|s| s[0]).collect();
        let (mut pairs, mut triples) = (Vec::new(), Vec::new());
        for (i, &a) in stations.iter().enumerate() {
            for (j, &b) in stations.iter().enumerate().skip(i + 1) {
                if ok(a, b) {
                    pairs.push(vec![a, b]);
                    let thirds = stations
                        .iter()
                        .skip(j + 1)
                        .filter(|&&c| ok(a, c) && ok(b, c));
                    triples.extend(thirds.map(|&c| vec![a, b, c]));
                }
            }
        }
        let both = |g: &Vec<usize>| {
            g.iter().any(|&s| city.sites[s].family == Family::StationA)
                && g.iter().any(|&s| city.sites[s].family == Family::StationB)
        };
        let split = |groups: Vec<Vec<usize>>| -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
            groups.into_iter().partition(both)
        };
        let ((pm, po), (tm, to)) = (split(pairs), split(triples));
        if self.rng.random_bool(0.5) {
            vec![tm, pm, to, po]
        } else {
            vec![pm, tm, po, to]
        }
    }
}
