//! Crew tablet messages: `city/crews/{crew_id}/status` → [`CrewStatus`] and
//! `city/crews/{crew_id}/ack` → [`CrewAck`]. The crew id always comes from the topic.

use serde_json::Value;

use super::{reason, Cx};
use crate::config::profile::path::{json_type, FieldPath, Miss};
use crate::model::{CrewAck, CrewAction, CrewState, CrewStatus, EventTime, Location};

/// A crew status; `paths` are lat, lon, state.
pub(super) fn status(cx: &mut Cx<'_>, root: &Value, ts: EventTime, paths: [&FieldPath; 3]) {
    let [lat_p, lon_p, state_p] = paths;
    let coord = |p: &FieldPath, limit: f64| -> Result<f64, String> {
        match super::number_at(root, p)? {
            Some(x) if x.abs() <= limit => Ok(x),
            Some(x) => Err(format!("{}: {x} is outside ±{limit}", p.as_str())),
            None => Err(format!("{}: missing", p.as_str())),
        }
    };
    let located = coord(lat_p, 90.0).and_then(|lat| {
        Ok(Location {
            lat,
            lon: coord(lon_p, 180.0)?,
        })
    });
    let location = match located {
        Ok(l) => l,
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    let state = match string_at(root, state_p) {
        Ok("available") => CrewState::Available,
        Ok("en_route") => CrewState::EnRoute,
        Ok("on_scene") => CrewState::OnScene,
        Ok("off_duty") => CrewState::OffDuty,
        Ok(other) => {
            let detail = format!(
                "{}: unknown state {other:?} (available, en_route, on_scene, off_duty)",
                state_p.as_str()
            );
            return cx.dead(reason::MALFORMED, detail);
        }
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    let crew_id = cx.device_id.to_string();
    cx.out.crew_status.push(CrewStatus {
        crew_id,
        ts,
        location,
        state,
    });
}

/// A crew's answer to a dispatch.
pub(super) fn ack(
    cx: &mut Cx<'_>,
    root: &Value,
    ts: EventTime,
    incident: &FieldPath,
    action: &FieldPath,
) {
    let incident_id = match string_at(root, incident) {
        Ok(s) if !s.trim().is_empty() => s.to_string(),
        Ok(_) => return cx.dead(reason::MALFORMED, format!("{}: empty", incident.as_str())),
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    let action = match string_at(root, action) {
        Ok("accept") => CrewAction::Accept,
        Ok("decline") => CrewAction::Decline,
        Ok("on_scene") => CrewAction::OnScene,
        Ok("resolved") => CrewAction::Resolved,
        Ok(other) => {
            let detail = format!(
                "{}: unknown action {other:?} (accept, decline, on_scene, resolved)",
                action.as_str()
            );
            return cx.dead(reason::MALFORMED, detail);
        }
        Err(e) => return cx.dead(reason::MALFORMED, e),
    };
    let crew_id = cx.device_id.to_string();
    cx.out.crew_acks.push(CrewAck {
        crew_id,
        incident_id,
        ts,
        action,
    });
}

/// A required string field.
fn string_at<'v>(root: &'v Value, path: &FieldPath) -> Result<&'v str, String> {
    match path.get(root) {
        Ok(Value::String(s)) => Ok(s),
        Ok(Value::Null) | Err(Miss::Missing) => Err(format!("{}: missing", path.as_str())),
        Ok(other) => Err(format!(
            "{}: expected a string, got {}",
            path.as_str(),
            json_type(other)
        )),
        Err(miss) => Err(format!("{}: {miss}", path.as_str())),
    }
}
