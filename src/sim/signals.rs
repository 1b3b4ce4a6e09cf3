//! Normal behaviour of every device family: smooth daily cycles plus bounded noise.
//!
//! Each device gets fixed parameters at layout time (its "model"); a value at a time is the
//! smooth mean at that time times or plus uniform noise. Means vary over hours, never within a
//! few samples, so sensible detectors see no incident in normal data.

use std::f64::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Hours east of UTC of the city (Hangzhou, +08:00): rush hours are local.
const UTC_OFFSET_HOURS: f64 = 8.0;

/// Local hour of day in [0, 24) at `t_ms`.
pub(crate) fn local_hour(t_ms: i64) -> f64 {
    (t_ms as f64 / 3_600_000.0 + UTC_OFFSET_HOURS).rem_euclid(24.0)
}

/// 1 within ±1 h of `centre`, cosine fade to 0 over the next hour: a smooth two-hour peak.
fn plateau(hour: f64, centre: f64) -> f64 {
    let d = (hour - centre).rem_euclid(24.0);
    let d = d.min(24.0 - d);
    if d <= 1.0 {
        1.0
    } else if d >= 2.0 {
        0.0
    } else {
        0.5 * (1.0 + (PI * (d - 1.0)).cos())
    }
}

/// Traffic peaks (07:00–09:00 and 17:30–19:30 local) in [0, 1].
pub(crate) fn traffic_peak(t_ms: i64) -> f64 {
    let h = local_hour(t_ms);
    plateau(h, 8.0).max(plateau(h, 18.5))
}

/// Water-demand peaks (07:00–09:00 and 18:00–20:00 local) in [0, 1].
pub(crate) fn water_peak(t_ms: i64) -> f64 {
    let h = local_hour(t_ms);
    plateau(h, 8.0).max(plateau(h, 19.0))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One lane of a camera's 10-second statistics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LaneStat {
    pub(crate) lane: u8,
    pub(crate) count: u32,
    pub(crate) avg_speed_kmh: f64,
    pub(crate) occupancy_pct: f64,
}

/// A camera's fixed parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CameraModel {
    pub(crate) lanes: u8,
    speed_kmh: f64,
    occupancy_pct: f64,
    count: f64,
}

impl CameraModel {
    pub(crate) fn random(rng: &mut ChaCha8Rng) -> Self {
        CameraModel {
            lanes: rng.random_range(2..=3),
            speed_kmh: rng.random_range(45.0..55.0),
            occupancy_pct: rng.random_range(12.0..16.0),
            count: rng.random_range(9.0..13.0),
        }
    }

    /// Lane statistics at `t_ms`; `speed_factor`/`occupancy_factor` are 1 unless an incident
    /// slows the road. The rush dip takes speed down 40 % (≈30 km/h) at the peaks.
    pub(crate) fn lane_stats(
        &self,
        t_ms: i64,
        speed_factor: f64,
        occupancy_factor: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<LaneStat> {
        let peak = traffic_peak(t_ms);
        (1..=self.lanes)
            .map(|lane| {
                // Inner lanes run a little faster; the ±10 % noise dominates anyway.
                let lane_bias = 0.97 + 0.03 * f64::from(lane - 1);
                let speed = self.speed_kmh * (1.0 - 0.4 * peak) * lane_bias;
                let speed = speed * rng.random_range(0.9..1.1) * speed_factor;
                let occ = (self.occupancy_pct + 6.0 * peak + rng.random_range(-2.0..2.0))
                    .clamp(10.0, 25.0);
                let occ = (occ * occupancy_factor).min(95.0);
                let count = (self.count + 4.0 * peak).round() as i64 + rng.random_range(-3..=3);
                let count = count.clamp(5, 20) as f64;
                // A slowed road passes fewer vehicles.
                let count = if speed_factor < 1.0 {
                    count * (0.4 + 0.6 * speed_factor)
                } else {
                    count
                };
                LaneStat {
                    lane,
                    count: count.round().max(0.0) as u32,
                    avg_speed_kmh: round1(speed.max(1.0)),
                    occupancy_pct: round1(occ),
                }
            })
            .collect()
    }
}

/// A pressure logger's fixed parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PressureModel {
    base_kpa: f64,
    depth: f64,
}

impl PressureModel {
    pub(crate) fn random(rng: &mut ChaCha8Rng) -> Self {
        PressureModel {
            base_kpa: rng.random_range(395.0..435.0),
            depth: rng.random_range(0.10..0.15),
        }
    }

    /// Smooth mean pressure at `t_ms` (10–15 % lower at the demand peaks).
    pub(crate) fn mean_kpa(&self, t_ms: i64) -> f64 {
        self.base_kpa * (1.0 - self.depth * water_peak(t_ms))
    }

    /// One sample: the mean with ±0.5 % noise.
    pub(crate) fn sample_kpa(&self, t_ms: i64, rng: &mut ChaCha8Rng) -> f64 {
        self.mean_kpa(t_ms) * rng.random_range(0.995..1.005)
    }
}

/// What an air-quality station measures, in vendor A's units (NO2/O3 in ppb).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AirSample {
    pub(crate) pm2_5: f64,
    pub(crate) pm10: f64,
    pub(crate) no2_ppb: f64,
    pub(crate) o3_ppb: f64,
    pub(crate) noise_db: f64,
    pub(crate) temp_c: f64,
    pub(crate) humidity_pct: f64,
    pub(crate) rain_mm_h: f64,
}

/// An air-quality station's fixed parameters: PM2.5 is a base plus two slow sinusoids, so it
/// wanders within 15–45 µg/m³ over hours.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AirModel {
    pm25_base: f64,
    slow: [(f64, f64, f64); 2],
    pm10_ratio: f64,
    no2_ppb: f64,
    o3_ppb: f64,
    noise_db: f64,
    temp_offset: f64,
    humidity_pct: f64,
}

impl AirModel {
    pub(crate) fn random(rng: &mut ChaCha8Rng) -> Self {
        let mut wave = |amp: (f64, f64), period_h: (f64, f64)| {
            (
                rng.random_range(amp.0..amp.1),
                rng.random_range(period_h.0..period_h.1) * 3_600_000.0,
                rng.random_range(0.0..2.0 * PI),
            )
        };
        let slow = [wave((2.0, 6.0), (3.0, 8.0)), wave((1.0, 3.0), (0.7, 1.5))];
        AirModel {
            pm25_base: rng.random_range(24.0..34.0),
            slow,
            pm10_ratio: rng.random_range(1.35..1.6),
            no2_ppb: rng.random_range(15.0..28.0),
            o3_ppb: rng.random_range(22.0..38.0),
            noise_db: rng.random_range(55.0..62.0),
            temp_offset: rng.random_range(-1.0..1.0),
            humidity_pct: rng.random_range(60.0..75.0),
        }
    }

    /// Smooth PM2.5 mean at `t_ms` (no noise).
    fn pm25_mean(&self, t_ms: i64) -> f64 {
        let t = t_ms as f64;
        self.pm25_base
            + self
                .slow
                .iter()
                .map(|(a, p, ph)| a * (2.0 * PI * t / p + ph).sin())
                .sum::<f64>()
    }

    /// A full sample at `t_ms`; `pm25` replaces PM2.5 (and scales PM10) when an incident sets it.
    pub(crate) fn sample(
        &self,
        t_ms: i64,
        pm25: impl FnOnce(f64) -> f64,
        rng: &mut ChaCha8Rng,
    ) -> AirSample {
        let peak = traffic_peak(t_ms);
        let day = (2.0 * PI * (local_hour(t_ms) - 9.0) / 24.0).sin();
        let normal = (self.pm25_mean(t_ms) + rng.random_range(-1.5..1.5)).clamp(15.0, 45.0);
        let pm2_5 = pm25(normal);
        // Out-of-range sentinels (9999) stay as they are; real episodes drag PM10 along.
        let pm10 = if pm2_5 >= 9000.0 {
            pm2_5
        } else {
            (pm2_5 * self.pm10_ratio + rng.random_range(-2.0..2.0)).max(pm2_5)
        };
        AirSample {
            pm2_5: round1(pm2_5),
            pm10: round1(pm10),
            no2_ppb: round1(self.no2_ppb + 8.0 * peak + rng.random_range(-2.0..2.0)),
            o3_ppb: round1((self.o3_ppb + 6.0 * day + rng.random_range(-2.0..2.0)).max(1.0)),
            noise_db: round1(self.noise_db + 5.0 * peak + rng.random_range(-1.5..1.5)),
            temp_c: round1(11.0 + 4.0 * day + self.temp_offset + rng.random_range(-0.2..0.2)),
            humidity_pct: round1(
                (self.humidity_pct - 8.0 * day + rng.random_range(-1.0..1.0)).clamp(30.0, 99.0),
            ),
            rain_mm_h: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn peaks_are_smooth_and_local() {
        // 00:00 UTC is 08:00 in Hangzhou: the morning peak.
        assert_eq!(traffic_peak(0), 1.0);
        // 04:00 UTC is noon: no peak.
        assert_eq!(water_peak(4 * 3_600_000), 0.0);
        // No step bigger than 1 % between samples 5 s apart anywhere in a day.
        let steps = (0..17_280).map(|i| (water_peak(i * 5000) - water_peak((i + 1) * 5000)).abs());
        assert!(steps.fold(0.0, f64::max) < 0.01);
    }

    #[test]
    fn normal_values_stay_in_their_ranges() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let cam = CameraModel::random(&mut rng);
        let air = AirModel::random(&mut rng);
        let p = PressureModel::random(&mut rng);
        for i in 0..2000 {
            let t = i * 60_000;
            for l in cam.lane_stats(t, 1.0, 1.0, &mut rng) {
                assert!((25.0..=61.0).contains(&l.avg_speed_kmh), "{l:?}");
                assert!((10.0..=25.0).contains(&l.occupancy_pct) && (5..=20).contains(&l.count));
            }
            let s = air.sample(t, |v| v, &mut rng);
            assert!((15.0..=45.0).contains(&s.pm2_5), "{s:?}");
            let kpa = p.sample_kpa(t, &mut rng);
            assert!((330.0..=440.0).contains(&kpa), "{kpa}");
        }
    }
}
