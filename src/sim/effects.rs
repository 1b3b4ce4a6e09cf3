//! What an injected incident does to one device, as data the device consults when it ticks.
//!
//! The scenario planner turns each incident into effects on its devices; a device asks its
//! effects at the true time of each sample. Intervals are half-open `[from, to)` in true event
//! time (ms), so the truth's start is exactly the first affected sample.

/// One device-level consequence of an incident.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// The device publishes nothing.
    Silent { from: i64, to: i64 },
    /// Camera speed and occupancy multiplied.
    Traffic {
        from: i64,
        to: i64,
        speed_factor: f64,
        occupancy_factor: f64,
    },
    /// A camera event the box's model raises at `at`.
    CameraEvent {
        at: i64,
        kind: &'static str,
        lane: u8,
        confidence: f64,
    },
    /// Logger pressure multiplied (a burst).
    PressureFactor { from: i64, to: i64, factor: f64 },
    /// Logger reports exactly this `kpa_x10` (frozen on a value, or 0 out of range).
    PressureFixed { from: i64, to: i64, kpa_x10: i64 },
    /// PM2.5 ramps linearly to `target` over `ramp_ms`, holds, and ramps back before `to`.
    Pm25Episode {
        from: i64,
        to: i64,
        ramp_ms: i64,
        target: f64,
    },
    /// PM2.5 reads exactly `value` (an out-of-range sentinel).
    Pm25Fixed { from: i64, to: i64, value: f64 },
}

impl Effect {
    /// The time span the effect touches (camera events: their instant).
    pub(crate) fn span(&self) -> (i64, i64) {
        match *self {
            Effect::Silent { from, to }
            | Effect::Traffic { from, to, .. }
            | Effect::PressureFactor { from, to, .. }
            | Effect::PressureFixed { from, to, .. }
            | Effect::Pm25Episode { from, to, .. }
            | Effect::Pm25Fixed { from, to, .. } => (from, to),
            Effect::CameraEvent { at, .. } => (at, at.saturating_add(1)),
        }
    }
}

fn within(t: i64, from: i64, to: i64) -> bool {
    from <= t && t < to
}

/// A device's current and future effects.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Effects(Vec<Effect>);

impl Effects {
    pub(crate) fn push(&mut self, effect: Effect) {
        self.0.push(effect);
    }

    /// Forgets effects that ended before `t` (endless runs would otherwise grow forever).
    pub(crate) fn prune(&mut self, t: i64) {
        self.0.retain(|e| e.span().1 >= t);
    }

    /// Whether any incident touches the device around `[from, to)` (no noise is added then, so
    /// an incident's signature stays clean).
    pub(crate) fn touches(&self, from: i64, to: i64) -> bool {
        self.0.iter().any(|e| {
            let (a, b) = e.span();
            a < to && from < b
        })
    }

    pub(crate) fn silent(&self, t: i64) -> bool {
        self.0
            .iter()
            .any(|e| matches!(*e, Effect::Silent { from, to } if within(t, from, to)))
    }

    /// (speed factor, occupancy factor) at `t`.
    pub(crate) fn traffic(&self, t: i64) -> (f64, f64) {
        self.0.iter().fold((1.0, 1.0), |acc, e| match *e {
            Effect::Traffic {
                from,
                to,
                speed_factor,
                occupancy_factor,
            } if within(t, from, to) => (acc.0 * speed_factor, acc.1 * occupancy_factor),
            _ => acc,
        })
    }

    /// Camera events in `[from, to)`: (at, kind, lane, confidence).
    pub(crate) fn camera_events(&self, from: i64, to: i64) -> Vec<(i64, &'static str, u8, f64)> {
        self.0
            .iter()
            .filter_map(|e| match *e {
                Effect::CameraEvent {
                    at,
                    kind,
                    lane,
                    confidence,
                } if within(at, from, to) => Some((at, kind, lane, confidence)),
                _ => None,
            })
            .collect()
    }

    /// The `kpa_x10` a logger reports at `t` given its normal reading.
    pub(crate) fn pressure_x10(&self, t: i64, normal_kpa: f64) -> i64 {
        let mut kpa = normal_kpa;
        for e in &self.0 {
            match *e {
                Effect::PressureFixed { from, to, kpa_x10 } if within(t, from, to) => {
                    return kpa_x10
                }
                Effect::PressureFactor { from, to, factor } if within(t, from, to) => kpa *= factor,
                _ => {}
            }
        }
        (kpa * 10.0).round() as i64
    }

    /// The PM2.5 a station reports at `t` given its normal reading.
    pub(crate) fn pm25(&self, t: i64, normal: f64) -> f64 {
        let mut v = normal;
        for e in &self.0 {
            match *e {
                Effect::Pm25Fixed { from, to, value } if within(t, from, to) => return value,
                Effect::Pm25Episode {
                    from,
                    to,
                    ramp_ms,
                    target,
                } if within(t, from, to) => {
                    let ramp = ramp_ms.max(1) as f64;
                    let up = ((t - from) as f64 / ramp).min(1.0);
                    let down = ((to - t) as f64 / ramp).min(1.0);
                    let w = up.min(down);
                    v = v + (target - v) * w;
                }
                _ => {}
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_apply_only_inside_their_interval() {
        let mut e = Effects::default();
        e.push(Effect::PressureFactor {
            from: 1000,
            to: 2000,
            factor: 0.5,
        });
        e.push(Effect::Pm25Episode {
            from: 0,
            to: 1000,
            ramp_ms: 100,
            target: 120.0,
        });
        assert_eq!(e.pressure_x10(999, 400.0), 4000);
        assert_eq!(e.pressure_x10(1000, 400.0), 2000);
        assert_eq!(e.pressure_x10(2000, 400.0), 4000);
        assert_eq!(e.pm25(50, 20.0), 70.0);
        assert_eq!(e.pm25(500, 20.0), 120.0);
        assert_eq!(e.pm25(1000, 20.0), 20.0);
        e.prune(1500);
        assert_eq!(e.pm25(500, 20.0), 20.0);
    }
}
