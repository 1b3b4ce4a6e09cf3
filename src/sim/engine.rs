//! The streaming generator: runs device ticks in true-time order and hands out messages in
//! arrival order.
//!
//! Every source (device, malformed-message source, endless planner) has a due time in one heap,
//! ties broken by a fixed source order, so the sequence of ticks (and every random draw) is the
//! same however `next_until` is chunked. A tick at `T` only sends at `T` or later and arrival is
//! never before sending, so after running every tick due by `until` every message arriving by
//! `until` is known: those are released, ordered by (arrival, generation order).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::city::City;
use super::devices::{sane, Node, Outgoing};
use super::payload;
use super::schedule::{plan_finite, AutoPlan};
use super::signatures::Planned;
use super::truth::Truth;
use super::SimOptions;
use crate::ingest::recording::RawMessage;
use crate::model::EventTime;

/// Endless runs plan an incident this long before its nominal start.
const PLAN_AHEAD_MS: i64 = 120_000;
/// Malformed messages avoid devices with an incident this close (their signature stays clean).
const MALFORMED_CLEARANCE_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Planner,
    Malformed,
    Device(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Normal,
    Duplicate,
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    arrival: i64,
    order: u64,
    topic: String,
    payload: Vec<u8>,
    class: Class,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.arrival, self.order).cmp(&(other.arrival, other.order))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Messages generated but not yet arrived.
#[derive(Debug, Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Pending>>,
    order: u64,
}

impl Queue {
    fn push(&mut self, arrival: i64, topic: String, payload: Vec<u8>, class: Class) {
        self.order += 1;
        self.heap.push(Reverse(Pending {
            arrival,
            order: self.order,
            topic,
            payload,
            class,
        }));
    }

    /// Adds network delay (and maybe a duplicate) drawn from the sender's `rng`.
    fn send(&mut self, o: Outgoing, rng: &mut ChaCha8Rng, duplicate_rate: f64) {
        let (lo, hi) = o.delay_ms;
        let arrival = o.send_ms + rng.random_range(lo..=hi.max(lo)) + o.extra_ms;
        let duplicate = o.qos1 && rng.random_bool(duplicate_rate);
        if duplicate {
            let again = arrival + rng.random_range(10..=500);
            self.push(again, o.topic.clone(), o.payload.clone(), Class::Duplicate);
        }
        self.push(arrival, o.topic, o.payload, Class::Normal);
    }
}

/// A running simulated city. Create with [`Simulation::new`], pull messages with
/// [`Simulation::next_until`].
#[derive(Debug)]
pub struct Simulation {
    opts: SimOptions,
    city: City,
    end_ms: i64,
    /// Parallel to the city's sites; `None` for devices that never report.
    nodes: Vec<Option<Node>>,
    due: BinaryHeap<Reverse<(i64, Source)>>,
    queue: Queue,
    truth: Truth,
    auto: Option<AutoPlan>,
    malformed_rng: ChaCha8Rng,
    scratch: Vec<Outgoing>,
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl Simulation {
    /// Lays out the city, plans the incidents (all of them for a finite run) and schedules
    /// every device's first tick.
    pub fn new(opts: SimOptions) -> Simulation {
        let city = City::build(&opts, &mut stream(opts.seed, 1));
        let start = opts.start.millis();
        let mut due = BinaryHeap::new();
        let nodes = city
            .sites
            .iter()
            .enumerate()
            .map(|(i, site)| {
                if !site.reporting {
                    return None;
                }
                let mut node = Node::new(site, stream(opts.seed, 1000 + i as u64), &opts.noise);
                due.push(Reverse((node.first_due(start), Source::Device(i))));
                Some(node)
            })
            .collect::<Vec<_>>();
        let truth = Truth {
            unregistered: city.unregistered.clone(),
            never_reporting: city.never_reporting.clone(),
            ..Truth::default()
        };
        let mut sim = Simulation {
            end_ms: opts.end_ms(),
            city,
            nodes,
            due,
            queue: Queue::default(),
            truth,
            auto: None,
            malformed_rng: stream(opts.seed, 3),
            scratch: Vec::new(),
            opts,
        };
        match &sim.opts.auto_schedule {
            Some(auto) => {
                let plan = AutoPlan::new(&sim.city, &sim.opts, auto, stream(sim.opts.seed, 2));
                sim.due.push(Reverse((
                    plan.next_nominal() - PLAN_AHEAD_MS,
                    Source::Planner,
                )));
                sim.auto = Some(plan);
            }
            None => {
                for planned in plan_finite(&sim.city, &sim.opts, stream(sim.opts.seed, 2)) {
                    sim.apply(planned);
                }
            }
        }
        if let Some(first) = sim.next_malformed(start) {
            sim.due.push(Reverse((first, Source::Malformed)));
        }
        sim
    }

    /// The city's layout and registers.
    pub fn city(&self) -> &City {
        &self.city
    }

    /// The options it runs with.
    pub fn options(&self) -> &SimOptions {
        &self.opts
    }

    /// Injected incidents (all of them up front for a finite run; an endless run adds each as
    /// it is planned, ~2 min before it starts) and counts of the messages released so far.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// When devices stop publishing (`None`: endless).
    pub fn end(&self) -> Option<EventTime> {
        (!self.opts.is_endless()).then_some(EventTime(self.end_ms))
    }

    /// Every message arriving at or before `until` not yet returned, in arrival order. On an
    /// endless run `until` must be finite: the generator runs up to it.
    pub fn next_until(&mut self, until: EventTime) -> Vec<RawMessage> {
        let until = until.millis();
        while let Some(&Reverse((t, source))) = self.due.peek() {
            if t > until || t >= self.end_ms {
                break;
            }
            self.due.pop();
            let next = match source {
                Source::Planner => self.plan_next(),
                Source::Malformed => self.malformed(t),
                Source::Device(i) => self.tick(i, t),
            };
            if let Some(next) = next {
                self.due.push(Reverse((next, source)));
            }
        }
        let mut out = Vec::new();
        while self
            .queue
            .heap
            .peek()
            .is_some_and(|Reverse(p)| p.arrival <= until)
        {
            let Some(Reverse(p)) = self.queue.heap.pop() else {
                break;
            };
            self.truth.messages += 1;
            match p.class {
                Class::Normal => {}
                Class::Duplicate => self.truth.duplicates += 1,
                Class::Malformed => self.truth.malformed += 1,
            }
            out.push(RawMessage {
                arrival: EventTime(p.arrival),
                topic: p.topic,
                payload: p.payload,
            });
        }
        out
    }

    /// A finite run's remaining messages: devices stop at the end, and late ones arrive after
    /// it. An endless run never ends: this returns nothing.
    pub fn drain(&mut self) -> Vec<RawMessage> {
        if self.opts.is_endless() {
            return Vec::new();
        }
        // No tick is due at or after the end, so this only releases what is queued.
        self.next_until(EventTime(i64::MAX))
    }

    fn apply(&mut self, planned: Planned) {
        for (site, effect) in planned.effects {
            if let Some(Some(node)) = self.nodes.get_mut(site) {
                node.effects.push(effect);
            }
        }
        self.truth.incidents.push(planned.truth);
    }

    fn plan_next(&mut self) -> Option<i64> {
        let auto = self.auto.as_mut()?;
        let planned = auto.plan_next(&self.city);
        let next = auto.next_nominal() - PLAN_AHEAD_MS;
        if let Some(p) = planned {
            self.apply(p);
        }
        Some(next)
    }

    fn tick(&mut self, i: usize, t: i64) -> Option<i64> {
        let site = self.city.sites.get(i)?;
        let node = self.nodes.get_mut(i)?.as_mut()?;
        let next = node.tick(site, t, &self.opts.noise, &mut self.scratch);
        let duplicate_rate = sane(self.opts.noise.duplicate_rate).min(1.0);
        for o in self.scratch.drain(..) {
            self.queue.send(o, &mut node.rng, duplicate_rate);
        }
        Some(next)
    }

    /// Time of the next malformed message after `t` (a Poisson process), if any.
    fn next_malformed(&mut self, t: i64) -> Option<i64> {
        let rate = sane(self.opts.noise.malformed_per_hour);
        if rate == 0.0 {
            return None;
        }
        let u: f64 = self.malformed_rng.random();
        let gap_ms = -(1.0 - u).ln() * 3_600_000.0 / rate;
        Some(t + (gap_ms.min(1.0e15) as i64).max(1))
    }

    /// A buggy firmware sends one bad payload on a device's own topic (a registered device with
    /// no incident near, so signatures and silences stay clean).
    fn malformed(&mut self, t: i64) -> Option<i64> {
        let window = (t - MALFORMED_CLEARANCE_MS, t + MALFORMED_CLEARANCE_MS);
        let candidates: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                let registered = self.city.sites.get(*i).is_some_and(|s| s.registered);
                registered
                    && n.as_ref()
                        .is_some_and(|n| !n.effects.touches(window.0, window.1))
            })
            .map(|(i, _)| i)
            .collect();
        if !candidates.is_empty() {
            let i = candidates[self.malformed_rng.random_range(0..candidates.len())];
            if let (Some(site), Some(Some(node))) = (self.city.sites.get(i), self.nodes.get(i)) {
                let dev_ms = node.device_ms(t);
                let rng = &mut self.malformed_rng;
                let valid = Node::sample_payload(site, dev_ms, rng);
                let body = payload::malformed(site.family, &site.id, dev_ms, valid, rng);
                let arrival = t + rng.random_range(50..=2000);
                self.queue.push(
                    arrival,
                    payload::data_topic(site.family, &site.id),
                    body,
                    Class::Malformed,
                );
            }
        }
        self.next_malformed(t)
    }
}
