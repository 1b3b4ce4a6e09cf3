//! The city's layout: where every device and crew is, and what the registers say about them.
//!
//! A ~6 × 6 km area centred on 30.27 N 120.16 E (Hangzhou). Cameras sit on a road grid (six
//! north–south and six east–west roads 1 km apart), spread over the four quadrants so every part
//! of the city has some. Loggers sit on the mains under those roads, each 180–370 m from a camera
//! (a burst floods the road that camera watches). Stations are spread with a minimum spacing, so
//! some pairs are 2–5 km apart. Coordinates are rounded to 4 decimals, as the GIS export does,
//! and all distances are computed on the rounded values.

use std::f64::consts::PI;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::signals::{AirModel, CameraModel, PressureModel};
use super::SimOptions;
use crate::model::{Crew, Device, Location};

const CENTRE: Location = Location {
    lat: 30.27,
    lon: 120.16,
};
const M_PER_DEG_LAT: f64 = 111_195.0;
/// Road coordinates (m from the centre), both axes.
const ROADS_M: [f64; 6] = [-2500.0, -1500.0, -500.0, 500.0, 1500.0, 2500.0];
/// Stations are placed within ± this of the centre.
const STATION_HALF_SPAN_M: f64 = 2800.0;

/// Device family: decides profile, department, topics and payload shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Camera,
    StationA,
    StationB,
    Logger,
}

impl Family {
    pub(crate) fn profile(self) -> &'static str {
        match self {
            Family::Camera => "traffic-camera",
            Family::StationA => "air-senml",
            Family::StationB => "air-vendor-b",
            Family::Logger => "pressure-logger",
        }
    }

    pub(crate) fn department(self) -> &'static str {
        match self {
            Family::Camera => "traffic",
            Family::StationA | Family::StationB => "environment",
            Family::Logger => "water",
        }
    }

    pub(crate) fn is_station(self) -> bool {
        matches!(self, Family::StationA | Family::StationB)
    }
}

/// A device's normal-behaviour parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Model {
    Camera(CameraModel),
    Air(AirModel),
    Pressure(PressureModel),
}

/// Every device that exists physically, registered or not, reporting or not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Site {
    pub(crate) id: String,
    pub(crate) family: Family,
    pub(crate) location: Location,
    pub(crate) district: &'static str,
    /// Listed in `devices.csv`.
    pub(crate) registered: bool,
    /// Publishes at all.
    pub(crate) reporting: bool,
    pub(crate) model: Model,
}

impl Site {
    /// May an injected incident use it (the pipeline must know where it is, and hear it)?
    pub(crate) fn usable(&self) -> bool {
        self.registered && self.reporting
    }
}

/// The city: registers (what `devices.csv`/`crews.csv` say) plus the physical devices.
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    /// Rows of `devices.csv`: every registered device, including those that never report.
    pub devices: Vec<Device>,
    /// Rows of `crews.csv`.
    pub crews: Vec<Crew>,
    /// Devices that publish but are missing from `devices.csv`.
    pub unregistered: Vec<String>,
    /// Devices in `devices.csv` that never publish.
    pub never_reporting: Vec<String>,
    pub(crate) sites: Vec<Site>,
}

impl City {
    /// Lays out the city for `opts` (deterministic in `rng`).
    pub(crate) fn build(opts: &SimOptions, rng: &mut ChaCha8Rng) -> City {
        let mut b = Builder {
            sites: Vec::new(),
            rng,
            camera_spots: Vec::new(),
        };
        b.camera_spots = camera_spots(b.rng);
        let silent_kinds = [
            Family::Logger,
            Family::StationA,
            Family::StationB,
            Family::Camera,
        ];
        let extra = |f: Family| {
            (0..opts.never_reporting_devices)
                .filter(|k| silent_kinds[k % 4] == f)
                .count()
        };
        for i in 0..opts.cameras + extra(Family::Camera) {
            b.add_camera(format!("TC-{:04}", 1 + i), i, i < opts.cameras);
        }
        let (na, nb) = (opts.stations_a, opts.stations_b);
        let spots = station_spots(
            na + nb + extra(Family::StationA) + extra(Family::StationB),
            b.rng,
        );
        let mut spots = spots.into_iter();
        for i in 0..na + extra(Family::StationA) {
            let model = Model::Air(AirModel::random(b.rng));
            let loc = spots.next().unwrap_or(CENTRE);
            b.push(
                format!("AQ-{:04}", 101 + i),
                Family::StationA,
                loc,
                i < na,
                model,
            );
        }
        for i in 0..nb + extra(Family::StationB) {
            let model = Model::Air(AirModel::random(b.rng));
            let loc = spots.next().unwrap_or(CENTRE);
            b.push(
                format!("AQ-{:04}", 2201 + i),
                Family::StationB,
                loc,
                i < nb,
                model,
            );
        }
        for i in 0..opts.loggers + extra(Family::Logger) {
            b.add_logger(
                format!("PG-{:04}", 301 + i),
                i,
                opts.cameras,
                i < opts.loggers,
            );
        }
        let mut unregistered = Vec::new();
        for i in 0..opts.unregistered_devices {
            let id = format!("TC-{:04}", 9901 + i);
            b.add_camera(id.clone(), opts.cameras + extra(Family::Camera) + i, true);
            if let Some(site) = b.sites.last_mut() {
                site.registered = false;
            }
            unregistered.push(id);
        }
        let sites = b.sites;
        let devices = sites
            .iter()
            .filter(|s| s.registered)
            .map(|s| Device {
                device_id: s.id.clone(),
                profile: s.family.profile().to_string(),
                location: s.location,
                department: s.family.department().to_string(),
                district: s.district.to_string(),
            })
            .collect();
        let never_reporting = sites
            .iter()
            .filter(|s| !s.reporting)
            .map(|s| s.id.clone())
            .collect();
        let crews = crews(opts.crews_per_department, rng);
        City {
            devices,
            crews,
            unregistered,
            never_reporting,
            sites,
        }
    }

    /// The registered device with this id.
    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.device_id == id)
    }

    /// Where a device physically is, registered or not.
    pub fn location_of(&self, id: &str) -> Option<Location> {
        self.sites.iter().find(|s| s.id == id).map(|s| s.location)
    }
}

struct Builder<'a> {
    sites: Vec<Site>,
    rng: &'a mut ChaCha8Rng,
    /// Camera positions in placement order: (x, y, runs north–south, runs east–west).
    camera_spots: Vec<(f64, f64, bool, bool)>,
}

impl Builder<'_> {
    fn push(&mut self, id: String, family: Family, loc: Location, reporting: bool, model: Model) {
        let district = district(loc);
        self.sites.push(Site {
            id,
            family,
            location: loc,
            district,
            registered: true,
            reporting,
            model,
        });
    }

    fn add_camera(&mut self, id: String, spot: usize, reporting: bool) {
        let (x, y) = camera_xy(&self.camera_spots, spot);
        let model = Model::Camera(CameraModel::random(self.rng));
        self.push(id, Family::Camera, to_location(x, y), reporting, model);
    }

    /// A logger on the main under camera `i % cameras`'s road, 150–400 m from it.
    fn add_logger(&mut self, id: String, i: usize, cameras: usize, reporting: bool) {
        let model = Model::Pressure(PressureModel::random(self.rng));
        if cameras == 0 {
            let (x, y) = (
                self.rng.random_range(-2500.0..2500.0),
                self.rng.random_range(-2500.0..2500.0),
            );
            return self.push(id, Family::Logger, to_location(x, y), reporting, model);
        }
        let spot = i % cameras;
        let (cx, cy) = camera_xy(&self.camera_spots, spot);
        let (_, _, ns, ew) = self.camera_spots[spot % self.camera_spots.len()];
        let cam = to_location(cx, cy);
        let mut loc = cam;
        for _ in 0..20 {
            let d = self.rng.random_range(180.0..370.0)
                * if self.rng.random_bool(0.5) { 1.0 } else { -1.0 };
            let along_ns = ns && (!ew || self.rng.random_bool(0.5));
            loc = if along_ns {
                to_location(cx, cy + d)
            } else {
                to_location(cx + d, cy)
            };
            if (150.0..=400.0).contains(&cam.distance_m(&loc)) {
                break;
            }
        }
        self.push(id, Family::Logger, loc, reporting, model);
    }
}

/// Metres east/north of the centre → rounded WGS84.
fn to_location(x_m: f64, y_m: f64) -> Location {
    let m_per_deg_lon = M_PER_DEG_LAT * CENTRE.lat.to_radians().cos();
    let r4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
    Location {
        lat: r4(CENTRE.lat + y_m / M_PER_DEG_LAT),
        lon: r4(CENTRE.lon + x_m / m_per_deg_lon),
    }
}

/// Metres east/north of the centre of a location (inverse of `to_location`, unrounded).
pub(crate) fn to_xy(loc: Location) -> (f64, f64) {
    let m_per_deg_lon = M_PER_DEG_LAT * CENTRE.lat.to_radians().cos();
    (
        (loc.lon - CENTRE.lon) * m_per_deg_lon,
        (loc.lat - CENTRE.lat) * M_PER_DEG_LAT,
    )
}

fn district(loc: Location) -> &'static str {
    let (x, y) = to_xy(loc);
    if y >= 500.0 {
        "Gongshu"
    } else if x < 0.0 {
        "Xihu"
    } else {
        "Shangcheng"
    }
}

/// Camera `spot`; past the 96 grid spots, the same spots shifted 120 m per round.
fn camera_xy(spots: &[(f64, f64, bool, bool)], spot: usize) -> (f64, f64) {
    let Some(&(x, y, ns, _)) = spots.get(spot % spots.len().max(1)) else {
        return (0.0, 0.0);
    };
    let shift = 120.0 * (spot / spots.len().max(1)) as f64;
    if ns {
        (x, y + shift)
    } else {
        (x + shift, y)
    }
}

/// Intersections first, then points half-way along the roads, interleaved over the quadrants.
fn camera_spots(rng: &mut ChaCha8Rng) -> Vec<(f64, f64, bool, bool)> {
    let mut quadrants: [Vec<(f64, f64, bool, bool)>; 4] = Default::default();
    let mut mids: [Vec<(f64, f64, bool, bool)>; 4] = Default::default();
    let q = |x: f64, y: f64| usize::from(x >= 0.0) * 2 + usize::from(y >= 0.0);
    for &r in &ROADS_M {
        for &s in &ROADS_M {
            quadrants[q(r, s)].push((r, s, true, true));
        }
        for s in [-2000.0, -1000.0, 0.0, 1000.0, 2000.0] {
            mids[q(r, s)].push((r, s, true, false));
            mids[q(s, r)].push((s, r, false, true));
        }
    }
    for (inter, mid) in quadrants.iter_mut().zip(mids.iter_mut()) {
        inter.shuffle(rng);
        mid.shuffle(rng);
        inter.append(mid);
    }
    let longest = quadrants.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| quadrants.iter().filter_map(move |v| v.get(i).copied()))
        .collect()
}

/// `n` points at least ~1.6 km apart (relaxed when the area is full).
fn station_spots(n: usize, rng: &mut ChaCha8Rng) -> Vec<Location> {
    let mut placed: Vec<(f64, f64)> = Vec::with_capacity(n);
    let mut spacing = 1600.0;
    while placed.len() < n {
        let mut found = None;
        for _ in 0..300 {
            let p = (
                rng.random_range(-STATION_HALF_SPAN_M..STATION_HALF_SPAN_M),
                rng.random_range(-STATION_HALF_SPAN_M..STATION_HALF_SPAN_M),
            );
            if placed
                .iter()
                .all(|o| (o.0 - p.0).hypot(o.1 - p.1) >= spacing)
            {
                found = Some(p);
                break;
            }
        }
        match found {
            Some(p) => placed.push(p),
            None => spacing *= 0.85,
        }
    }
    placed.into_iter().map(|(x, y)| to_location(x, y)).collect()
}

/// Each department's crews spread around the centre at different bearings.
fn crews(per_department: usize, rng: &mut ChaCha8Rng) -> Vec<Crew> {
    let departments: [(&str, &str, &[&str]); 3] = [
        ("water", "W", &["valve", "excavation"]),
        ("traffic", "T", &["traffic_control"]),
        ("environment", "E", &["sampling"]),
    ];
    let mut out = Vec::new();
    for (dept, prefix, skills) in departments {
        let sector = 2.0 * PI / per_department.max(1) as f64;
        for i in 0..per_department {
            let bearing = sector * i as f64 + rng.random_range(0.0..sector);
            let r = rng.random_range(800.0..2500.0);
            out.push(Crew {
                crew_id: format!("{prefix}-{:02}", i + 1),
                department: dept.to_string(),
                home: to_location(r * bearing.cos(), r * bearing.sin()),
                skills: skills.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    out
}
