//! The crew table: every registered crew (`crews.csv`) with its latest reported status and the
//! dispatch it is currently holding, and the nearest-available-crew selection.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{Crew, CrewState, CrewStatus, EventTime, Location};

/// One crew as operators see it (`GET /api/v1/crews`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrewView {
    /// Crew id.
    pub crew_id: String,
    /// Department.
    pub department: String,
    /// Skills.
    pub skills: Vec<String>,
    /// Last reported state; `None` until the tablet reports.
    pub state: Option<CrewState>,
    /// Last reported position, else home base.
    pub location: Location,
    /// Device time of the last status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<EventTime>,
    /// The dispatch the crew is holding (sent, accepted or on scene), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_id: Option<String>,
    /// Whether the crew can be dispatched now.
    pub available: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    crew: Crew,
    status: Option<CrewStatus>,
    /// The dispatch this crew holds. A crew stays reserved from the moment it is sent until
    /// its dispatch ends, whatever its tablet reports meanwhile: its `available` status may
    /// predate the dispatch, and two incidents must never get the same crew.
    holding: Option<String>,
}

impl Entry {
    fn position(&self) -> Location {
        self.status.as_ref().map_or(self.crew.home, |s| s.location)
    }

    fn available(&self) -> bool {
        self.holding.is_none()
            && self
                .status
                .as_ref()
                .is_some_and(|s| s.state == CrewState::Available)
    }
}

/// Registered crews and their live state.
#[derive(Debug, Clone, Default)]
pub struct CrewTable {
    crews: BTreeMap<String, Entry>,
}

impl CrewTable {
    /// The table for the registered crews; nobody is available until its tablet says so.
    pub fn new(crews: impl IntoIterator<Item = Crew>) -> CrewTable {
        CrewTable {
            crews: crews
                .into_iter()
                .map(|c| {
                    let entry = Entry {
                        crew: c.clone(),
                        status: None,
                        holding: None,
                    };
                    (c.crew_id, entry)
                })
                .collect(),
        }
    }

    /// Takes a status report. Returns `false` (and changes nothing) for a crew missing from
    /// the register or a report older than the one already held (QoS 1 redelivery, a tablet
    /// catching up): the newest report by device time wins, whatever the arrival order.
    pub fn observe(&mut self, status: CrewStatus) -> bool {
        let Some(entry) = self.crews.get_mut(&status.crew_id) else {
            return false;
        };
        if entry.status.as_ref().is_some_and(|old| old.ts > status.ts) {
            return false;
        }
        entry.status = Some(status);
        true
    }

    /// The crew's department, if registered.
    pub fn department(&self, crew_id: &str) -> Option<&str> {
        self.crews.get(crew_id).map(|e| e.crew.department.as_str())
    }

    /// Whether any crew of `department` is registered.
    pub fn has_department(&self, department: &str) -> bool {
        self.crews.values().any(|e| e.crew.department == department)
    }

    /// The skills of `wanted` that bind `department`: those held by at least one of its crews.
    pub fn binding_skills(&self, department: &str, wanted: &[String]) -> Vec<String> {
        wanted
            .iter()
            .filter(|s| {
                self.crews
                    .values()
                    .any(|e| e.crew.department == department && e.crew.skills.contains(s))
            })
            .cloned()
            .collect()
    }

    /// The nearest available crew of `department` holding every skill in `skills` and not in
    /// `exclude`, with its distance in metres. Ties go to the smaller crew id, so the choice
    /// depends on nothing but the state.
    pub fn nearest(
        &self,
        at: &Location,
        department: &str,
        skills: &[String],
        exclude: &BTreeSet<String>,
    ) -> Option<(String, f64)> {
        self.crews
            .values()
            .filter(|e| e.crew.department == department && e.available())
            .filter(|e| skills.iter().all(|s| e.crew.skills.contains(s)))
            .filter(|e| !exclude.contains(&e.crew.crew_id))
            .map(|e| (e.crew.crew_id.clone(), e.position().distance_m(at)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
    }

    /// Marks the crew as holding `dispatch_id`.
    pub fn reserve(&mut self, crew_id: &str, dispatch_id: &str) {
        if let Some(e) = self.crews.get_mut(crew_id) {
            e.holding = Some(dispatch_id.to_string());
        }
    }

    /// Frees the crew if it still holds `dispatch_id` (it may have moved on to another one).
    pub fn release(&mut self, crew_id: &str, dispatch_id: &str) {
        if let Some(e) = self.crews.get_mut(crew_id) {
            if e.holding.as_deref() == Some(dispatch_id) {
                e.holding = None;
            }
        }
    }

    /// Every crew, by id.
    pub fn view(&self) -> Vec<CrewView> {
        self.crews
            .values()
            .map(|e| CrewView {
                crew_id: e.crew.crew_id.clone(),
                department: e.crew.department.clone(),
                skills: e.crew.skills.clone(),
                state: e.status.as_ref().map(|s| s.state),
                location: e.position(),
                reported_at: e.status.as_ref().map(|s| s.ts),
                dispatch_id: e.holding.clone(),
                available: e.available(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crew(id: &str, dept: &str, lat: f64, skills: &[&str]) -> Crew {
        Crew {
            crew_id: id.into(),
            department: dept.into(),
            home: Location { lat, lon: 120.0 },
            skills: skills.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn status(id: &str, ts: i64, lat: f64, state: CrewState) -> CrewStatus {
        CrewStatus {
            crew_id: id.into(),
            ts: EventTime(ts),
            location: Location { lat, lon: 120.0 },
            state,
        }
    }

    fn table() -> CrewTable {
        let mut t = CrewTable::new([
            crew("W-01", "water", 30.00, &["valve"]),
            crew("W-02", "water", 30.01, &["valve", "excavation"]),
            crew("W-03", "water", 30.02, &["excavation"]),
            crew("T-01", "traffic", 30.00, &["traffic_control"]),
        ]);
        for id in ["W-01", "W-02", "W-03", "T-01"] {
            let lat = t.crews[id].crew.home.lat;
            assert!(t.observe(status(id, 1_000, lat, CrewState::Available)));
        }
        t
    }

    #[test]
    fn nearest_uses_the_reported_position_department_and_skills() {
        let mut t = table();
        let at = Location {
            lat: 30.021,
            lon: 120.0,
        };
        let none = BTreeSet::new();
        let valve = vec!["valve".to_string()];
        assert_eq!(
            t.nearest(&at, "water", &[], &none).map(|c| c.0),
            Some("W-03".into())
        );
        assert_eq!(
            t.nearest(&at, "water", &valve, &none).map(|c| c.0),
            Some("W-02".into())
        );
        // W-01 drove next to the incident: its report beats its home base.
        assert!(t.observe(status("W-01", 2_000, 30.021, CrewState::Available)));
        assert_eq!(
            t.nearest(&at, "water", &valve, &none).map(|c| c.0),
            Some("W-01".into())
        );
        let excluded = BTreeSet::from(["W-01".to_string()]);
        assert_eq!(
            t.nearest(&at, "water", &valve, &excluded).map(|c| c.0),
            Some("W-02".into())
        );
        assert_eq!(t.nearest(&at, "sewer", &[], &none), None);
    }

    #[test]
    fn only_available_unreserved_crews_are_chosen_and_old_reports_are_ignored() {
        let mut t = table();
        let at = Location {
            lat: 30.0,
            lon: 120.0,
        };
        let none = BTreeSet::new();
        assert!(t.observe(status("W-01", 2_000, 30.0, CrewState::OffDuty)));
        assert!(
            !t.observe(status("W-01", 1_500, 30.0, CrewState::Available)),
            "older report"
        );
        assert_eq!(
            t.nearest(&at, "water", &[], &none).map(|c| c.0),
            Some("W-02".into())
        );
        t.reserve("W-02", "d1");
        assert_eq!(
            t.nearest(&at, "water", &[], &none).map(|c| c.0),
            Some("W-03".into())
        );
        t.release("W-02", "other");
        assert_eq!(
            t.nearest(&at, "water", &[], &none).map(|c| c.0),
            Some("W-03".into())
        );
        t.release("W-02", "d1");
        assert_eq!(
            t.nearest(&at, "water", &[], &none).map(|c| c.0),
            Some("W-02".into())
        );
        assert!(
            !t.observe(status("X-99", 1, 0.0, CrewState::Available)),
            "unregistered"
        );
        let fresh = CrewTable::new([crew("E-01", "environment", 30.0, &[])]);
        assert_eq!(
            fresh.nearest(&at, "environment", &[], &none),
            None,
            "never reported"
        );
    }

    #[test]
    fn skills_bind_only_departments_that_have_them() {
        let t = table();
        let wanted = vec!["valve".to_string()];
        assert_eq!(t.binding_skills("water", &wanted), wanted);
        assert!(t.binding_skills("traffic", &wanted).is_empty());
    }
}
