//! When injected incidents happen: a finite run's whole plan up front, or an endless rotation.
//!
//! Finite: incidents start after the warm-up and end 5 min before the run ends (a silent device
//! goes silent at least 15 min before the end and stays silent). The silent fault is placed
//! first, as late as it fits, so its never-ending silence blocks as little as possible; then
//! the longest incidents, each at the earliest start that fits. If some incident does not fit, the whole
//! plan is retried with other random choices (up to 64 times) and the fullest plan is kept.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::city::{City, Family};
use super::scenario::{Planner, TryOrder};
use super::signatures::{Durations, Planned};
use super::truth::{FaultKind, InjectedKind};
use super::{AutoSchedule, SimOptions};

const MIN: i64 = 60_000;
/// Finite runs: incidents this close in time must be 3 km apart.
const FINITE_GAP_SECS: u64 = 30 * 60;
/// Finite runs: the last incident ends this long before the run does.
const END_MARGIN_MS: i64 = 5 * MIN;
/// A silent device goes silent at least this long before the run ends.
const SILENT_BEFORE_END_MS: i64 = 15 * MIN;
const ATTEMPTS: usize = 256;
/// Endless runs: an incident that does not fit is delayed at most this long, then skipped.
const MAX_DELAY_MS: i64 = 30 * MIN;

fn is_silent(kind: InjectedKind) -> bool {
    kind == InjectedKind::DeviceFault(FaultKind::Silent)
}

/// The whole plan of a finite run, sorted by start (everything drawn from `rng`).
pub(crate) fn plan_finite(city: &City, opts: &SimOptions, rng: ChaCha8Rng) -> Vec<Planned> {
    let start = opts.start.millis();
    let run_end = opts.end_ms();
    let earliest = start.saturating_add(
        i64::try_from(opts.warmup_secs)
            .unwrap_or(0)
            .saturating_mul(1000),
    );
    let durations = Durations::finite();
    let mut kinds = opts.incidents.clone();
    // The silent fault first (it lasts to the end, so it only fits late, where least is
    // placed), then longest first (they are hardest to fit).
    kinds.sort_by_key(|&k| {
        (
            !is_silent(k),
            std::cmp::Reverse(durations_total(&durations, k)),
        )
    });
    let mut rng = rng;
    let mut best: Vec<Planned> = Vec::new();
    for attempt in 0..ATTEMPTS {
        let mut planner = Planner::new(city, rng, durations.clone(), FINITE_GAP_SECS, run_end);
        // Later attempts also try other orders of the kinds.
        let mut order = kinds.clone();
        if attempt >= ATTEMPTS / 8 {
            let silent_first = usize::from(order.first().is_some_and(|&k| is_silent(k)));
            order[silent_first..].shuffle(&mut planner.rng);
        }
        let mut plan = Vec::new();
        for &kind in &order {
            // Staggered starts: incidents far apart could otherwise all start at the same minute.
            let jitter = planner.rng.random_range(0..=4) * MIN;
            let (from, to, try_order) = if is_silent(kind) {
                (
                    earliest,
                    run_end - SILENT_BEFORE_END_MS,
                    TryOrder::LatestFirst,
                )
            } else {
                let total = durations_total(&durations, kind) * 1000;
                (
                    earliest + jitter,
                    run_end - END_MARGIN_MS - total,
                    TryOrder::EarliestFirst,
                )
            };
            if let Some(p) = planner.place(city, kind, from, to, try_order) {
                plan.push(p);
            }
        }
        rng = planner.rng;
        if score(city, &plan) > score(city, &best) {
            best = plan;
        }
        if score(city, &best) == (kinds.len(), true) {
            break;
        }
    }
    if best.len() < kinds.len() {
        tracing::warn!(
            requested = kinds.len(),
            placed = best.len(),
            "simulated incidents do not all fit"
        );
    }
    best.sort_by_key(|p| p.truth.start);
    best
}

/// Placed incidents, then whether every pollution episode has stations of both vendors.
fn score(city: &City, plan: &[Planned]) -> (usize, bool) {
    let vendor = |id: &String| city.sites.iter().find(|s| &s.id == id).map(|s| s.family);
    let mixed = plan
        .iter()
        .filter(|p| p.truth.kind == InjectedKind::PollutionEpisode.name())
        .all(|p| {
            let families: Vec<_> = p.truth.devices.iter().filter_map(vendor).collect();
            families.contains(&Family::StationA) && families.contains(&Family::StationB)
        });
    (plan.len(), mixed)
}

fn durations_total(d: &Durations, kind: InjectedKind) -> i64 {
    d.total_secs(kind).unwrap_or(0)
}

/// An endless run's schedule: incident `k` of kind `rotation[k % len]` starts at
/// `first + k × every` or up to 30 min later when nothing fits then.
#[derive(Debug, Clone)]
pub(crate) struct AutoPlan {
    planner: Planner,
    first_ms: i64,
    every_ms: i64,
    next: i64,
    rotation: Vec<InjectedKind>,
}

impl AutoPlan {
    pub(crate) fn new(
        city: &City,
        opts: &SimOptions,
        auto: &AutoSchedule,
        rng: ChaCha8Rng,
    ) -> Self {
        let durations = Durations::lasting(auto.lasting_secs);
        let warmup = i64::try_from(opts.warmup_secs)
            .unwrap_or(0)
            .saturating_mul(1000);
        AutoPlan {
            planner: Planner::new(city, rng, durations, auto.min_gap_secs, i64::MAX),
            first_ms: opts.start.millis().saturating_add(warmup),
            every_ms: i64::try_from(auto.every_secs.max(60)).unwrap_or(i64::MAX / 4_000) * 1000,
            next: 0,
            rotation: if opts.incidents.is_empty() {
                InjectedKind::one_of_each()
            } else {
                opts.incidents.clone()
            },
        }
    }

    /// Nominal start of the next incident to plan.
    pub(crate) fn next_nominal(&self) -> i64 {
        self.first_ms
            .saturating_add(self.next.saturating_mul(self.every_ms))
    }

    /// Plans the next incident of the rotation (`None` when it did not fit and was skipped).
    pub(crate) fn plan_next(&mut self, city: &City) -> Option<Planned> {
        let nominal = self.next_nominal();
        let len = self.rotation.len().max(1);
        let kind = self.rotation.get(self.next as usize % len).copied();
        self.next += 1;
        self.planner.forget_before(nominal);
        self.planner.place(
            city,
            kind?,
            nominal,
            nominal + MAX_DELAY_MS,
            TryOrder::EarliestFirst,
        )
    }
}
