//! Crew dispatch decisions: which incidents get a crew, which crew, and what happens when a crew
//! declines or does not answer. Pure state, no I/O: [`Dispatcher`] turns events (incident
//! changes, crew status, crew answers, operator requests, the clock passing a deadline) into
//! [`Effect`]s that the async loop in `sink::dispatch` carries out (MQTT publish, dispatch log,
//! incident lifecycle).
//!
//! - **Policy** ([`DispatchConfig`]): per incident kind and minimum severity, dispatch is
//!   `automatic` or `operator_confirmed` (through `POST /api/v1/incidents/{id}/dispatch`).
//! - **Selection** ([`CrewTable::nearest`]): the nearest crew of the department whose last
//!   reported state is `available`, that holds the policy's skills and that has not already
//!   declined (or ignored) this incident; distance from its last reported position, else home.
//! - **One case per (incident, department)**: a multi-department incident gets one crew per
//!   department, and a case never sends a second dispatch unless it escalates.
//! - **Escalation** ([`Escalation`]): a decline, or no answer within `answer_timeout_secs`, sends
//!   the case to the next crew and leaves a record the operators see.
//! - **Silences** ([`SilenceTable`]): maintenance windows per device, area or kind; a suppressed
//!   incident stays in the store (its evidence is kept) but is neither dispatched nor pushed.
//!
//! Every decision follows event order; the clock only stamps records and fires answer timeouts.

mod crews;
mod escalation;
mod events;
mod machine;
mod records;
mod restore;
mod silence;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crews::{CrewTable, CrewView};
pub use escalation::{Deadlines, Escalation, EscalationReason};
pub use events::{Answer, Effect, IncidentView, LifecycleChange};
pub use machine::Dispatcher;
pub use records::{
    Dispatch, DispatchLog, DispatchLogError, DispatchMessage, DispatchRecord, DispatchStatus,
    EvidenceSummary, MemoryDispatchLog,
};
pub use silence::{Area, Silence, SilenceError, SilenceSpec, SilenceTable, Suppression};

use crate::model::{CrewAction, EventTime, Severity};

/// Why a dispatch request or answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// No dispatch has this id.
    #[error("no dispatch with id {0:?}")]
    UnknownDispatch(String),
    /// No incident has this id.
    #[error("no incident with id {0:?}")]
    UnknownIncident(String),
    /// A crew answered a dispatch sent to another crew.
    #[error("dispatch {0} was sent to another crew")]
    NotYours(String),
    /// The answer does not fit the dispatch's state (`accept` on a timed-out dispatch, …).
    #[error("dispatch {dispatch_id} is {status}; cannot {action}")]
    InvalidAnswer {
        /// The dispatch answered.
        dispatch_id: String,
        /// Its current status.
        status: &'static str,
        /// The answer refused.
        action: &'static str,
    },
    /// Every department of the incident already has a live dispatch.
    #[error("incident {0} already has a crew on the way for every department")]
    AlreadyDispatched(String),
    /// The incident is resolved or merged into another one.
    #[error("incident {0} is closed; nothing to dispatch")]
    IncidentClosed(String),
    /// The dispatcher task is not running (shutting down).
    #[error("the dispatcher is not running")]
    Stopped,
}

/// How an incident kind is dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DispatchMode {
    /// A crew is sent as soon as the incident is raised (or reaches the policy's severity).
    Automatic,
    /// A crew is sent only when an operator confirms (`POST /api/v1/incidents/{id}/dispatch`).
    OperatorConfirmed,
}

/// One dispatch policy: how incidents of `kind` at or above `min_severity` are dispatched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchPolicy {
    /// Incident kind (`water_main_burst`).
    pub kind: String,
    /// Lowest severity this policy applies to; below it the kind is not dispatched
    /// automatically (an operator can still dispatch it). Where several policies of a kind
    /// match, the one with the highest `min_severity` wins.
    #[serde(default = "lowest_severity")]
    pub min_severity: Severity,
    /// `automatic` or `operator_confirmed`.
    pub mode: DispatchMode,
    /// Skills the crew must hold. A skill only binds the departments that have at least one
    /// registered crew with it, so `[valve]` on a water-and-traffic incident asks a valve crew of
    /// water and any crew of traffic.
    #[serde(default)]
    pub skills: Vec<String>,
}

fn lowest_severity() -> Severity {
    Severity::Low
}

/// Dispatch settings (`dispatch:` in the app config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Policies per incident kind and severity. Giving this list replaces the shipped defaults
    /// (automatic for `water_main_burst` and `traffic_accident`, operator-confirmed for
    /// `pollution_episode` and `device_fault`). A kind without a policy is only dispatched by
    /// an operator.
    #[serde(default = "default_policies")]
    pub policies: Vec<DispatchPolicy>,
    /// Seconds a crew has to answer (`accept` or `decline`) before the dispatch escalates to
    /// the next crew.
    #[serde(default = "default_answer_timeout_secs")]
    pub answer_timeout_secs: u64,
}

fn default_answer_timeout_secs() -> u64 {
    120
}

fn default_policies() -> Vec<DispatchPolicy> {
    let policy = |kind: &str, mode, skills: &[&str]| DispatchPolicy {
        kind: kind.to_string(),
        min_severity: Severity::Low,
        mode,
        skills: skills.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        policy("water_main_burst", DispatchMode::Automatic, &["valve"]),
        policy(
            "traffic_accident",
            DispatchMode::Automatic,
            &["traffic_control"],
        ),
        policy(
            "pollution_episode",
            DispatchMode::OperatorConfirmed,
            &["sampling"],
        ),
        policy("device_fault", DispatchMode::OperatorConfirmed, &[]),
    ]
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            policies: default_policies(),
            answer_timeout_secs: default_answer_timeout_secs(),
        }
    }
}

impl DispatchConfig {
    /// Problems as (field path, message), for the config loader to place on a line.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if !(1..=86_400).contains(&self.answer_timeout_secs) {
            errs.push((
                "answer_timeout_secs".to_string(),
                format!("{} is not between 1 and 86400", self.answer_timeout_secs),
            ));
        }
        for (i, p) in self.policies.iter().enumerate() {
            if p.kind.trim().is_empty() {
                errs.push((format!("policies[{i}].kind"), "must not be empty".into()));
            }
            if p.skills.iter().any(|s| s.trim().is_empty()) {
                errs.push((format!("policies[{i}].skills"), "empty skill name".into()));
            }
            let twin = self.policies[..i]
                .iter()
                .any(|q| q.kind == p.kind && q.min_severity == p.min_severity);
            if twin {
                errs.push((
                    format!("policies[{i}]"),
                    format!(
                        "a second policy for kind {:?} at min_severity {:?}",
                        p.kind, p.min_severity
                    ),
                ));
            }
        }
        errs
    }

    /// The policy for an incident of `kind` at `severity`: the matching one with the highest
    /// `min_severity`, or `None` (operator dispatch only).
    pub fn policy_for(&self, kind: &str, severity: Severity) -> Option<&DispatchPolicy> {
        self.policies
            .iter()
            .filter(|p| p.kind == kind && p.min_severity <= severity)
            .max_by_key(|p| p.min_severity)
    }
}

/// Wall-clock time for dispatch records and answer timeouts, injected so tests can run on
/// tokio's paused clock (STYLE 10).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, as milliseconds since the epoch.
    fn now(&self) -> EventTime;
}

/// The wall clock read once at creation and advanced by tokio's monotonic clock: immune to
/// wall-clock jumps, and frozen/advanced by `tokio::time::pause()`/`advance()` in tests.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base_wall: EventTime,
    base: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at the current wall-clock time.
    pub fn new() -> Arc<TokioClock> {
        TokioClock::starting_at(EventTime(chrono::Utc::now().timestamp_millis()))
    }

    /// Starts at `wall` (tests pick a fixed time).
    pub fn starting_at(wall: EventTime) -> Arc<TokioClock> {
        Arc::new(TokioClock {
            base_wall: wall,
            base: tokio::time::Instant::now(),
        })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> EventTime {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.base);
        EventTime(
            self.base_wall
                .0
                .saturating_add(elapsed.as_millis().min(i64::MAX as u128) as i64),
        )
    }
}

/// The contract's name of an answer (`accept`, …), for messages.
pub fn action_name(action: CrewAction) -> &'static str {
    match action {
        CrewAction::Accept => "accept",
        CrewAction::Decline => "decline",
        CrewAction::OnScene => "on_scene",
        CrewAction::Resolved => "resolved",
    }
}
