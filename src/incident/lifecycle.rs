//! The incident lifecycle as a pure state machine: which action may move an incident from which
//! status to which, the audit-trail entry every change leaves, and why a change is refused.
//!
//! ```text
//!  open ─ack─► acknowledged ─dispatch─► dispatched ─on_scene─► on_scene
//!   │ └──────────dispatch──────────────────▲                      │
//!   └──────────────── resolve (from any live status) ─────────────┴─► resolved ─close─► closed
//!  reopen: resolved | closed ─► open          merge: any live status | resolved ─► closed
//! ```
//!
//! The store ([`super::IncidentStore`]) applies these rules under its lock and records one
//! [`Transition`] per successful change; nothing here knows about storage or time sources.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{EventTime, IncidentStatus};

use IncidentStatus::{Acknowledged, Closed, Dispatched, OnScene, Open, Resolved};

/// Actor recorded for transitions the correlator causes (auto-resolve, reopen).
pub const CORRELATOR_ACTOR: &str = "correlator";

/// Statuses in which the real-world event still needs someone (an incident can grow, be worked
/// on, or be merged into).
const LIVE: [IncidentStatus; 4] = [Open, Acknowledged, Dispatched, OnScene];

/// Something that changes an incident's lifecycle, by an operator, a crew or the correlator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An operator has seen it.
    Ack,
    /// A crew was sent.
    Dispatch,
    /// The crew arrived (the crew, or an operator on its behalf).
    OnScene,
    /// An operator or crew declares it over.
    Resolve,
    /// An operator files a resolved incident.
    Close,
    /// An operator reopens a resolved or closed incident.
    Reopen,
    /// An operator merges this incident into another one (the survivor).
    Merge,
    /// The survivor of a merge took in another incident (status unchanged).
    Absorb,
    /// The correlator ended it: the evidence cleared, or a higher-priority incident absorbed it.
    AutoResolve,
    /// The correlator reopened it: new evidence after it was resolved or closed.
    AutoReopen,
}

impl Action {
    /// The status this action leads to from `from`, if the lifecycle allows it at all.
    pub fn target(self, from: IncidentStatus) -> Option<IncidentStatus> {
        let allowed: &[IncidentStatus] = match self {
            Action::Ack => &[Open],
            Action::Dispatch => &[Open, Acknowledged],
            Action::OnScene => &[Dispatched],
            Action::Resolve | Action::AutoResolve => &LIVE,
            Action::Close => &[Resolved],
            Action::Reopen | Action::AutoReopen => &[Resolved, Closed],
            Action::Merge => &[Open, Acknowledged, Dispatched, OnScene, Resolved],
            // Merging into a resolved incident would hide live evidence in a finished one: the
            // operator reopens the survivor first.
            Action::Absorb => &LIVE,
        };
        allowed.contains(&from).then(|| self.nominal_target(from))
    }

    /// Where the action leads when it is allowed (`from` itself for [`Action::Absorb`]); used to
    /// word refusals ("cannot move an incident from resolved to acknowledged").
    pub fn nominal_target(self, from: IncidentStatus) -> IncidentStatus {
        match self {
            Action::Ack => Acknowledged,
            Action::Dispatch => Dispatched,
            Action::OnScene => OnScene,
            Action::Resolve | Action::AutoResolve => Resolved,
            Action::Close | Action::Merge => Closed,
            Action::Reopen | Action::AutoReopen => Open,
            Action::Absorb => from,
        }
    }

    /// The name used in the API and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Ack => "ack",
            Action::Dispatch => "dispatch",
            Action::OnScene => "on_scene",
            Action::Resolve => "resolve",
            Action::Close => "close",
            Action::Reopen => "reopen",
            Action::Merge => "merge",
            Action::Absorb => "absorb",
            Action::AutoResolve => "auto_resolve",
            Action::AutoReopen => "auto_reopen",
        }
    }

    /// Every action, for tables and tests.
    pub const ALL: [Action; 10] = [
        Action::Ack,
        Action::Dispatch,
        Action::OnScene,
        Action::Resolve,
        Action::Close,
        Action::Reopen,
        Action::Merge,
        Action::Absorb,
        Action::AutoResolve,
        Action::AutoReopen,
    ];
}

/// Checks `action` on an incident in `status` (merged into `merged_into`, if so) and returns
/// the new status. A merged incident lives on in its survivor: the only thing left to do with it
/// is to close it (the correlator's merges leave it resolved).
pub fn next(
    id: &str,
    status: IncidentStatus,
    merged_into: Option<&str>,
    action: Action,
) -> Result<IncidentStatus, LifecycleError> {
    if let Some(into) = merged_into {
        if action != Action::Close {
            return Err(LifecycleError::Merged {
                id: id.to_string(),
                into: into.to_string(),
            });
        }
    }
    action
        .target(status)
        .ok_or(LifecycleError::InvalidTransition {
            from: status,
            to: action.nominal_target(status),
        })
}

/// One lifecycle change, kept for the audit trail (who, when, what, why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// When (operator wall clock, or the evidence event time for correlator changes).
    pub at: EventTime,
    /// Token name of the operator or crew, or `correlator`.
    pub actor: String,
    /// What was done.
    pub action: Action,
    /// Status before.
    pub from: IncidentStatus,
    /// Status after (equal to `from` for `absorb`).
    pub to: IncidentStatus,
    /// Free-text reason, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The other incident of a merge: the survivor (on `merge`) or the merged one (on `absorb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
}

/// Why a lifecycle operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// No incident has this id.
    #[error("no incident with id {id:?}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The incident's current status does not allow this change.
    #[error("cannot move an incident from {} to {}", .from.as_str(), .to.as_str())]
    InvalidTransition {
        /// Current status.
        from: IncidentStatus,
        /// Requested status.
        to: IncidentStatus,
    },
    /// The incident was merged into another one, which is where work on it continues.
    #[error("incident {id:?} was merged into {into:?}; act on that one")]
    Merged {
        /// The merged incident.
        id: String,
        /// Its survivor.
        into: String,
    },
    /// A merge names the incident itself as the survivor.
    #[error("cannot merge incident {id:?} into itself")]
    SelfMerge {
        /// The incident.
        id: String,
    },
    /// The survivor of a merge cannot take in another incident in its current status.
    #[error("cannot merge into incident {into:?}: it is {}; reopen it first", .status.as_str())]
    SurvivorNotLive {
        /// The survivor.
        into: String,
        /// Its status.
        status: IncidentStatus,
    },
    /// The change could not be committed to the durable store, so it was not made.
    #[error("the change could not be saved: {detail}")]
    Storage {
        /// What failed (for logs; the API does not show it to clients).
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole lifecycle table: every (status, action) pair, allowed or refused.
    #[test]
    fn every_transition_is_allowed_or_refused_as_specified() {
        use Action::*;
        #[rustfmt::skip]
        let allowed: &[(IncidentStatus, Action, IncidentStatus)] = &[
            (Open, Ack, Acknowledged),
            (Open, Dispatch, Dispatched), (Acknowledged, Dispatch, Dispatched),
            (Dispatched, OnScene, IncidentStatus::OnScene),
            (Open, Resolve, Resolved), (Acknowledged, Resolve, Resolved),
            (Dispatched, Resolve, Resolved), (IncidentStatus::OnScene, Resolve, Resolved),
            (Open, AutoResolve, Resolved), (Acknowledged, AutoResolve, Resolved),
            (Dispatched, AutoResolve, Resolved), (IncidentStatus::OnScene, AutoResolve, Resolved),
            (Resolved, Close, Closed),
            (Resolved, Reopen, Open), (Closed, Reopen, Open),
            (Resolved, AutoReopen, Open), (Closed, AutoReopen, Open),
            (Open, Merge, Closed), (Acknowledged, Merge, Closed), (Dispatched, Merge, Closed),
            (IncidentStatus::OnScene, Merge, Closed), (Resolved, Merge, Closed),
            (Open, Absorb, Open), (Acknowledged, Absorb, Acknowledged),
            (Dispatched, Absorb, Dispatched),
            (IncidentStatus::OnScene, Absorb, IncidentStatus::OnScene),
        ];
        let mut checked = 0;
        for from in IncidentStatus::ALL {
            for action in Action::ALL {
                let want = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                let got = next("i", from, None, action);
                match want {
                    Some(to) => assert_eq!(got, Ok(to), "{from:?} --{action:?}-->"),
                    None => assert_eq!(
                        got,
                        Err(LifecycleError::InvalidTransition {
                            from,
                            to: action.nominal_target(from)
                        }),
                        "{from:?} --{action:?}--> must be refused"
                    ),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 60, "6 statuses x 10 actions");
    }

    #[test]
    fn a_merged_incident_can_only_be_closed() {
        for action in Action::ALL {
            let got = next("a", Resolved, Some("b"), action);
            if action == Action::Close {
                assert_eq!(got, Ok(Closed));
            } else {
                assert_eq!(
                    got,
                    Err(LifecycleError::Merged {
                        id: "a".into(),
                        into: "b".into()
                    }),
                    "{action:?}"
                );
            }
        }
    }

    #[test]
    fn refusals_name_both_statuses_and_actions_round_trip() {
        let err = next("i", Closed, None, Action::Ack).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "cannot move an incident from closed to acknowledged"
        );
        for a in Action::ALL {
            let json = serde_json::to_string(&a).expect("serializes");
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
    }
}
