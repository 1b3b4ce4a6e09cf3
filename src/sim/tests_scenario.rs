//! Tests of the injected incidents: schedule and spacing, signatures in the data, the absence
//! of signatures in normal data, and the endless mode.

use std::collections::HashMap;

use super::tests::{default_run, t0, Run};
use super::validate::{mean, of, parse_topic, readings, validate, R};
use super::*;

const MIN: i64 = 60_000;

fn dist(r: &Run, a: &str, b: &str) -> f64 {
    let loc = |id: &str| r.city.location_of(id).expect("known device");
    loc(a).distance_m(&loc(b))
}

fn check_spacing(r: &Run, gap_ms: i64) {
    let inc = &r.truth.incidents;
    for (i, a) in inc.iter().enumerate() {
        for b in &inc[i + 1..] {
            let near_in_time = a.start.millis() < b.end.millis() + gap_ms
                && b.start.millis() < a.end.millis() + gap_ms;
            let closest = a
                .devices
                .iter()
                .flat_map(|x| b.devices.iter().map(move |y| dist(r, x, y)))
                .fold(f64::MAX, f64::min);
            assert!(
                !near_in_time || closest >= 3000.0,
                "{a:?} and {b:?} overlap ({closest:.0} m)"
            );
        }
    }
}

#[test]
fn default_schedule_places_each_kind_once_spaced_apart() {
    for seed in 0..10 {
        let opts = SimOptions::default_with_seed(seed, t0(), 2 * 3600);
        let sim = Simulation::new(opts.clone());
        let r = Run {
            msgs: Vec::new(),
            truth: sim.truth().clone(),
            city: sim.city().clone(),
            opts,
        };
        let mut kinds: Vec<String> = r
            .truth
            .incidents
            .iter()
            .map(|i| format!("{}{:?}", i.kind, i.fault))
            .collect();
        kinds.sort();
        assert_eq!(kinds.len(), 6, "seed {seed}: {kinds:?}");
        kinds.dedup();
        assert_eq!(kinds.len(), 6, "seed {seed}: one of each kind");
        check_spacing(&r, 30 * MIN);
        let (start, end) = (r.opts.start.millis(), r.opts.end_ms());
        for i in &r.truth.incidents {
            assert!(i.start.millis() >= start + 20 * MIN, "{i:?}");
            assert!(i
                .devices
                .iter()
                .all(|d| r.city.device(d).is_some() && !r.truth.never_reporting.contains(d)));
            if i.fault == Some(FaultKind::Silent) {
                assert!(i.start.millis() <= end - 15 * MIN && i.end.millis() == end);
            } else {
                assert!(i.end.millis() < end && i.end > i.start, "{i:?}");
            }
            let profile = |d: &str| {
                r.city
                    .device(d)
                    .map(|d| d.profile.clone())
                    .unwrap_or_default()
            };
            match i.kind.as_str() {
                "water_main_burst" => {
                    assert_eq!(
                        (
                            profile(&i.devices[0]).as_str(),
                            profile(&i.devices[1]).as_str()
                        ),
                        ("pressure-logger", "traffic-camera")
                    );
                    assert!((150.0..=400.0).contains(&dist(&r, &i.devices[0], &i.devices[1])));
                    assert_eq!(i.departments, ["traffic", "water"]);
                }
                "pollution_episode" => {
                    assert!((2..=3).contains(&i.devices.len()));
                    for (k, a) in i.devices.iter().enumerate() {
                        for b in &i.devices[k + 1..] {
                            assert!(
                                (2000.0..=5000.0).contains(&dist(&r, a, b)),
                                "seed {seed}: {a} {b}"
                            );
                        }
                    }
                    let vendors: Vec<String> = i.devices.iter().map(|d| profile(d)).collect();
                    assert!(
                        vendors.contains(&"air-senml".into())
                            && vendors.contains(&"air-vendor-b".into())
                    );
                }
                _ => {}
            }
        }
    }
}

#[test]
fn every_logger_has_a_camera_150_to_400_m_away() {
    for seed in 0..5 {
        let sim = Simulation::new(SimOptions::default_with_seed(seed, t0(), 3600));
        let devices = &sim.city().devices;
        let cams: Vec<_> = devices
            .iter()
            .filter(|d| d.profile == "traffic-camera")
            .collect();
        for l in devices.iter().filter(|d| d.profile == "pressure-logger") {
            let ok = cams
                .iter()
                .any(|c| (150.0..=400.0).contains(&c.location.distance_m(&l.location)));
            assert!(
                ok,
                "seed {seed}: {} has no camera 150-400 m away",
                l.device_id
            );
        }
    }
}

#[test]
fn injected_signatures_are_in_the_data() {
    let r = default_run();
    let rs = readings(&r.msgs);
    // Device clocks are off by up to 90 s: judge well inside the incident windows.
    let m = 2 * MIN;
    for i in &r.truth.incidents {
        let (s, e, d) = (i.start.millis(), i.end.millis(), &i.devices);
        match (i.kind.as_str(), i.fault) {
            ("water_main_burst", _) => {
                let base = mean(&of(&rs, &d[0], "kpa_x10", s - 20 * MIN, s - m));
                let during = of(&rs, &d[0], "kpa_x10", s + m, e - m);
                assert!(
                    !during.is_empty() && during.iter().all(|&v| v < 0.7 * base),
                    "{i:?}"
                );
                let water = of(&rs, &d[1], "event.water_on_road", s - m, e + m);
                assert!(
                    water.iter().filter(|&&c| c >= 0.7).count() >= 6,
                    "{water:?}"
                );
                let speed = mean(&of(&rs, &d[1], "speed", s + 3 * MIN, s + 19 * MIN));
                assert!(
                    speed < 0.45 * mean(&of(&rs, &d[1], "speed", s - 10 * MIN, s - m)),
                    "{i:?}"
                );
            }
            ("traffic_accident", _) => {
                let acc = of(&rs, &d[0], "event.accident", s - m, s + m);
                assert!(
                    (1..=2).contains(&acc.iter().filter(|&&c| c >= 0.85).count()),
                    "{acc:?}"
                );
                let speed = mean(&of(&rs, &d[0], "speed", s + m, e - m));
                assert!(speed < 0.3 * mean(&of(&rs, &d[0], "speed", s - 10 * MIN, s - m)));
            }
            ("pollution_episode", _) => {
                for st in d {
                    let plateau = of(&rs, st, "pm2_5", s + 7 * MIN, e - 7 * MIN);
                    assert!(
                        !plateau.is_empty() && plateau.iter().all(|&v| (85.0..=151.0).contains(&v)),
                        "{st}: {plateau:?}"
                    );
                    assert!(of(&rs, st, "pm2_5", e + m, e + 20 * MIN)
                        .iter()
                        .all(|&v| v <= 45.0));
                }
            }
            (_, Some(FaultKind::Silent)) => {
                let later = r.msgs.iter().filter(|x| x.arrival.millis() > s + 200_000);
                assert!(
                    later
                        .filter(|x| parse_topic(&x.topic).is_some_and(|(id, _)| id == d[0]))
                        .count()
                        == 0
                );
                assert!(r
                    .msgs
                    .iter()
                    .any(|x| x.arrival.millis() < s && x.topic.contains(&d[0])));
            }
            (_, Some(FaultKind::Frozen)) => {
                let v = of(&rs, &d[0], "kpa_x10", s + m, e - m);
                assert!(v.len() > 300 && v.iter().all(|&x| x == v[0]), "{i:?}");
                assert!(of(&rs, &d[0], "kpa_x10", e + m, e + 10 * MIN)
                    .iter()
                    .any(|&x| x != v[0]));
            }
            (_, Some(FaultKind::OutOfRange)) => {
                let metric = if r
                    .city
                    .device(&d[0])
                    .is_some_and(|x| x.profile == "pressure-logger")
                {
                    "kpa_x10"
                } else {
                    "pm2_5"
                };
                let v = of(&rs, &d[0], metric, s + m, e - m);
                assert!(
                    !v.is_empty() && v.iter().all(|&x| x == 0.0 || x == 9999.0),
                    "{i:?}: {v:?}"
                );
            }
            other => panic!("unexpected incident {other:?}"),
        }
    }
    // Confident accident / water events come from injected incidents only.
    for x in rs.iter().filter(|x| {
        x.value > 0.45 && (x.metric == "event.accident" || x.metric == "event.water_on_road")
    }) {
        let explained = r.truth.incidents.iter().any(|i| {
            i.devices.contains(&x.dev)
                && i.start.millis() - 2 * MIN <= x.t
                && x.t <= i.end.millis() + 2 * MIN
        });
        assert!(explained, "{} {} {} at {}", x.dev, x.metric, x.value, x.t);
    }
}

#[test]
fn normal_devices_stay_in_their_bands() {
    let r = default_run();
    let rs = readings(&r.msgs);
    let involved = |dev: &str| {
        r.truth
            .incidents
            .iter()
            .any(|i| i.devices.iter().any(|d| d == dev))
    };
    let mut by_dev: HashMap<&str, Vec<&R>> = HashMap::new();
    for x in rs.iter().filter(|x| !involved(&x.dev)) {
        by_dev.entry(&x.dev).or_default().push(x);
    }
    let (mut dips, mut low_conf) = (0, 0);
    for (dev, xs) in &by_dev {
        for x in xs {
            match x.metric.as_str() {
                "speed" => assert!((20.0..=65.0).contains(&x.value), "{dev}: speed {}", x.value),
                "pm2_5" => assert!((15.0..=45.0).contains(&x.value), "{dev}: pm2_5 {}", x.value),
                "kpa_x10" if x.value < 3200.0 => {
                    assert!(x.value > 2300.0, "{dev}: {}", x.value);
                    dips += 1;
                }
                "kpa_x10" => assert!(x.value <= 4500.0, "{dev}: {}", x.value),
                ev => {
                    assert!(
                        ev.starts_with("event.") && (0.15..=0.45).contains(&x.value),
                        "{dev}: {ev} {}",
                        x.value
                    );
                    low_conf += 1;
                }
            }
        }
    }
    // 0.3 dips per logger-hour and 0.5 events per camera-hour, over ~2 h.
    assert!(dips <= 30, "{dips} dips");
    assert!(
        (3..=70).contains(&low_conf),
        "{low_conf} low-confidence events"
    );
}

#[test]
fn endless_run_rotates_incidents_and_keeps_going() {
    let opts = SimOptions::endless(21, t0());
    let mut sim = Simulation::new(opts.clone());
    let mut msgs = Vec::new();
    let horizon = opts.start.millis() + 100 * MIN;
    let mut t = opts.start.millis();
    while t < horizon {
        t += 5 * MIN;
        msgs.extend(sim.next_until(EventTime(t)));
    }
    assert!(sim.drain().is_empty());
    assert!(msgs.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    let r = Run {
        opts,
        msgs,
        truth: sim.truth().clone(),
        city: sim.city().clone(),
    };
    let inc = &r.truth.incidents;
    assert!(inc.len() >= 12, "{} incidents in 80 min", inc.len());
    for kind in [
        "water_main_burst",
        "traffic_accident",
        "pollution_episode",
        "device_fault",
    ] {
        assert!(inc.iter().any(|i| i.kind == kind), "no {kind}");
    }
    assert!(inc
        .iter()
        .all(|i| i.start.millis() >= r.opts.start.millis() + 20 * MIN));
    check_spacing(&r, 2 * MIN);
    // A silent device comes back once its incident is over.
    for i in inc
        .iter()
        .filter(|i| i.fault == Some(FaultKind::Silent) && i.end.millis() + 5 * MIN < horizon)
    {
        let back = r.msgs.iter().any(|m| {
            m.arrival > i.end && parse_topic(&m.topic).is_some_and(|(id, _)| id == i.devices[0])
        });
        assert!(back, "{} never came back", i.devices[0]);
    }
    assert!(
        r.msgs
            .iter()
            .all(|m| validate(&m.topic, &m.payload).is_ok())
            || r.truth.malformed > 0
    );
}
