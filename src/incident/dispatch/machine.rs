//! The dispatch state machine: one case per (incident, department), each holding at most one
//! live dispatch; events in, [`Effect`]s out. Single-threaded by design: the async loop feeds it
//! one event at a time, so concurrent evidence or operator clicks cannot race into a second
//! dispatch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::events::summarize;
use super::{action_name, Answer, CrewTable, CrewView, Effect, IncidentView, LifecycleChange};
use super::{
    Deadlines, Dispatch, DispatchConfig, DispatchError, DispatchMessage, DispatchMode,
    DispatchRecord, DispatchStatus, Escalation, EscalationReason,
};
use crate::model::{Crew, CrewAction, CrewState, CrewStatus, EventTime, Severity};

/// The dispatches of one (incident, department).
#[derive(Debug, Clone)]
pub(super) struct Case {
    pub(super) mode: DispatchMode,
    /// `policy`, or the operator who asked.
    pub(super) requested_by: String,
    /// The policy's skills (see [`super::DispatchPolicy::skills`]).
    pub(super) skills: Vec<String>,
    pub(super) attempts: u32,
    /// The latest dispatch of the case.
    pub(super) current: Option<String>,
    /// Crews that declined or ignored this incident: never asked again for it.
    pub(super) tried: BTreeSet<String>,
    /// No crew was free: retried whenever one may have become free.
    pub(super) waiting: bool,
    /// Finished (resolved or cancelled): only an operator starts it again.
    pub(super) done: bool,
}

type CaseKey = (String, String);

/// The dispatcher's state. See the module documentation.
#[derive(Debug)]
pub struct Dispatcher {
    pub(super) config: DispatchConfig,
    pub(super) crews: CrewTable,
    pub(super) cases: BTreeMap<CaseKey, Case>,
    pub(super) dispatches: HashMap<String, Dispatch>,
    /// Only incidents that have cases (their location is needed to escalate).
    pub(super) incidents: HashMap<String, IncidentView>,
    pub(super) deadlines: Deadlines,
    /// Sequence number of the last escalation.
    pub(super) escalations: u64,
}

impl Dispatcher {
    /// A dispatcher for the registered `crews`.
    pub fn new(config: DispatchConfig, crews: impl IntoIterator<Item = Crew>) -> Dispatcher {
        Dispatcher {
            config,
            crews: CrewTable::new(crews),
            cases: BTreeMap::new(),
            dispatches: HashMap::new(),
            incidents: HashMap::new(),
            deadlines: Deadlines::default(),
            escalations: 0,
        }
    }

    /// An incident appeared or changed.
    pub fn on_incident(&mut self, view: IncidentView, now: EventTime) -> Vec<Effect> {
        let mut out = Vec::new();
        let id = view.id.clone();
        let has_cases = self.cases.keys().any(|(i, _)| *i == id);
        if view.closed {
            if has_cases {
                self.incidents.insert(id.clone(), view);
                self.close_incident(&id, now, &mut out);
            }
            return out;
        }
        let policy = self.config.policy_for(&view.kind, view.severity).cloned();
        let automatic = policy
            .as_ref()
            .is_some_and(|p| p.mode == DispatchMode::Automatic);
        if has_cases || (automatic && !view.suppressed) {
            self.incidents.insert(id.clone(), view.clone());
        }
        if let (Some(p), true, false) = (policy, automatic, view.suppressed) {
            for dept in &view.departments {
                let key = (id.clone(), dept.clone());
                if !self.cases.contains_key(&key) {
                    self.open_case(key, DispatchMode::Automatic, "policy", p.skills.clone());
                    self.send_next(&(id.clone(), dept.clone()), now, None, &mut out);
                }
            }
        }
        self.retry_waiting(now, &mut out);
        out
    }

    /// An operator asks for crews (`POST /api/v1/incidents/{id}/dispatch`): every department
    /// without a live or waiting case gets one. Silences do not apply: the operator decided.
    pub fn confirm(
        &mut self,
        view: IncidentView,
        actor: &str,
        now: EventTime,
    ) -> Result<Vec<Effect>, DispatchError> {
        if view.closed {
            return Err(DispatchError::IncidentClosed(view.id));
        }
        let skills = self
            .config
            .policy_for(&view.kind, view.severity)
            .or_else(|| self.config.policies.iter().find(|p| p.kind == view.kind))
            .map(|p| p.skills.clone())
            .unwrap_or_default();
        let id = view.id.clone();
        self.incidents.insert(id.clone(), view.clone());
        let mut out = Vec::new();
        let mut started = false;
        for dept in &view.departments {
            let key = (id.clone(), dept.clone());
            let busy = self.cases.get(&key).is_some_and(|c| !c.done);
            if busy {
                continue;
            }
            // A finished case starts over: the operator wants a crew again.
            self.open_case(
                key.clone(),
                DispatchMode::OperatorConfirmed,
                actor,
                skills.clone(),
            );
            self.send_next(&key, now, None, &mut out);
            started = true;
        }
        if !started {
            return Err(DispatchError::AlreadyDispatched(id));
        }
        self.retry_waiting(now, &mut out);
        Ok(out)
    }

    /// A crew reported its state and position.
    pub fn on_status(&mut self, status: CrewStatus, now: EventTime) -> Vec<Effect> {
        let mut out = Vec::new();
        let freed = status.state == CrewState::Available;
        if self.crews.observe(status) && freed {
            self.retry_waiting(now, &mut out);
        }
        out
    }

    /// A crew (or an operator on its behalf) answered a dispatch.
    pub fn on_answer(
        &mut self,
        answer: Answer,
        now: EventTime,
    ) -> Result<Vec<Effect>, DispatchError> {
        let id = self.find_dispatch(&answer)?;
        let d = self
            .dispatches
            .get(&id)
            .ok_or_else(|| DispatchError::UnknownDispatch(id.clone()))?;
        if answer.crew_id.as_ref().is_some_and(|c| *c != d.crew_id) {
            return Err(DispatchError::NotYours(id));
        }
        let (status, crew, key) = (
            d.status,
            d.crew_id.clone(),
            (d.incident_id.clone(), d.department.clone()),
        );
        use CrewAction as A;
        use DispatchStatus as S;
        let next = match (status, answer.action) {
            // QoS 1 redelivers, tablets resend: the same answer twice changes nothing.
            (S::Accepted, A::Accept)
            | (S::OnScene, A::OnScene)
            | (S::Resolved, A::Resolved)
            | (S::Declined, A::Decline) => return Ok(Vec::new()),
            (S::Sent, A::Accept) => S::Accepted,
            (S::Sent | S::Accepted, A::OnScene) => S::OnScene,
            (S::Sent | S::Accepted | S::OnScene, A::Resolved) => S::Resolved,
            (S::Sent | S::Accepted | S::OnScene, A::Decline) => S::Declined,
            _ => {
                return Err(DispatchError::InvalidAnswer {
                    dispatch_id: id,
                    status: status.as_str(),
                    action: action_name(answer.action),
                })
            }
        };
        let mut out = Vec::new();
        self.deadlines.disarm(&id);
        self.set_status(&id, next, now, &mut out);
        let change = |action, reason: String| {
            Effect::Lifecycle(LifecycleChange {
                incident_id: key.0.clone(),
                action,
                actor: answer.actor.clone(),
                reason,
            })
        };
        let accepted = format!("{crew} accepted dispatch {id}");
        match next {
            S::Accepted => out.push(change(A::Accept, accepted)),
            S::OnScene => {
                if status == S::Sent {
                    out.push(change(A::Accept, accepted));
                }
                out.push(change(A::OnScene, format!("{crew} on scene ({id})")));
            }
            S::Resolved => {
                self.crews.release(&crew, &id);
                if let Some(case) = self.cases.get_mut(&key) {
                    case.done = true;
                }
                let all_done = self
                    .cases
                    .iter()
                    .filter(|((i, _), _)| *i == key.0)
                    .all(|(_, c)| c.done);
                if all_done {
                    out.push(change(A::Resolved, format!("{crew} resolved it ({id})")));
                }
            }
            _ => {
                self.crews.release(&crew, &id);
                if let Some(case) = self.cases.get_mut(&key) {
                    case.tried.insert(crew.clone());
                }
                let from = (EscalationReason::Declined, crew, id);
                self.send_next(&key, now, Some(from), &mut out);
            }
        }
        self.retry_waiting(now, &mut out);
        Ok(out)
    }

    /// The clock moved: dispatches past their answer deadline escalate.
    pub fn on_tick(&mut self, now: EventTime) -> Vec<Effect> {
        let mut out = Vec::new();
        for id in self.deadlines.expired(now) {
            let Some(d) = self.dispatches.get(&id) else {
                continue;
            };
            if d.status != DispatchStatus::Sent {
                continue;
            }
            let (crew, key) = (
                d.crew_id.clone(),
                (d.incident_id.clone(), d.department.clone()),
            );
            self.set_status(&id, DispatchStatus::TimedOut, now, &mut out);
            self.crews.release(&crew, &id);
            if let Some(case) = self.cases.get_mut(&key) {
                case.tried.insert(crew.clone());
            }
            let from = (EscalationReason::NoAnswer, crew, id);
            self.send_next(&key, now, Some(from), &mut out);
        }
        self.retry_waiting(now, &mut out);
        out
    }

    /// When [`Dispatcher::on_tick`] has something to do next.
    pub fn next_deadline(&self) -> Option<EventTime> {
        self.deadlines.next()
    }

    /// One dispatch.
    pub fn dispatch(&self, id: &str) -> Option<&Dispatch> {
        self.dispatches.get(id)
    }

    /// Every crew.
    pub fn crews(&self) -> Vec<CrewView> {
        self.crews.view()
    }

    fn find_dispatch(&self, answer: &Answer) -> Result<String, DispatchError> {
        if let Some(id) = &answer.dispatch_id {
            return Ok(id.clone());
        }
        let (Some(incident), Some(crew)) = (&answer.incident_id, &answer.crew_id) else {
            return Err(DispatchError::UnknownDispatch(String::new()));
        };
        // The crew's latest dispatch for this incident (an earlier one may have timed out).
        self.dispatches
            .values()
            .filter(|d| d.incident_id == *incident && d.crew_id == *crew)
            .max_by_key(|d| (d.sent_at, d.attempt))
            .map(|d| d.dispatch_id.clone())
            .ok_or_else(|| DispatchError::UnknownDispatch(format!("{incident} for crew {crew}")))
    }

    fn open_case(&mut self, key: CaseKey, mode: DispatchMode, by: &str, skills: Vec<String>) {
        let case = self.cases.entry(key).or_insert_with(|| Case {
            mode,
            requested_by: by.to_string(),
            skills: Vec::new(),
            attempts: 0,
            current: None,
            tried: BTreeSet::new(),
            waiting: false,
            done: false,
        });
        case.mode = mode;
        case.requested_by = by.to_string();
        case.skills = skills;
        case.tried.clear();
        case.done = false;
    }

    /// Sends the case to its next crew, or leaves it waiting; records the escalation `from`.
    fn send_next(
        &mut self,
        key: &CaseKey,
        now: EventTime,
        from: Option<(EscalationReason, String, String)>,
        out: &mut Vec<Effect>,
    ) {
        let (Some(case), Some(view)) = (self.cases.get_mut(key), self.incidents.get(&key.0)) else {
            return;
        };
        let skills = self.crews.binding_skills(&key.1, &case.skills);
        let chosen = self
            .crews
            .nearest(&view.location, &key.1, &skills, &case.tried);
        let mut to = None;
        if let Some((crew_id, distance_m)) = chosen {
            case.attempts += 1;
            case.waiting = false;
            let id = format!("{}.{}.{}", key.0, key.1, case.attempts);
            case.current = Some(id.clone());
            let message = DispatchMessage {
                dispatch_id: id.clone(),
                incident_id: key.0.clone(),
                crew_id: crew_id.clone(),
                kind: view.kind.clone(),
                severity: view.severity,
                location: view.location,
                evidence: summarize(view),
                department: key.1.clone(),
                ts: now,
            };
            let dispatch = Dispatch {
                dispatch_id: id.clone(),
                incident_id: key.0.clone(),
                department: key.1.clone(),
                crew_id: crew_id.clone(),
                attempt: case.attempts,
                mode: case.mode,
                requested_by: case.requested_by.clone(),
                skills: case.skills.clone(),
                distance_m,
                status: DispatchStatus::Sent,
                sent_at: now,
                updated_at: now,
                message: message.clone(),
            };
            self.crews.reserve(&crew_id, &id);
            let timeout = self.config.answer_timeout_secs as f64;
            self.deadlines.arm(&id, now.plus_secs(timeout));
            self.dispatches.insert(id.clone(), dispatch.clone());
            // Recorded before it is published: after a crash it is never sent twice.
            out.push(Effect::Record(DispatchRecord::Dispatch(dispatch)));
            out.push(Effect::Publish(message));
            to = Some((crew_id, id));
        } else {
            // Report "nobody available" once per case start, not at every retry.
            let first = !case.waiting && from.is_none() && case.attempts == 0;
            case.waiting = true;
            if !first && from.is_none() {
                return;
            }
        }
        let (reason, from) = match from {
            Some((r, c, d)) => (r, Some((c, d))),
            None if to.is_some() => return,
            None => (EscalationReason::NoCrewAvailable, None),
        };
        self.escalations += 1;
        let e = Escalation::new(self.escalations, key, now, reason, from, to);
        out.push(Effect::Record(DispatchRecord::Escalation(e)));
    }

    /// Waiting cases of live incidents try again, most severe incident first.
    fn retry_waiting(&mut self, now: EventTime, out: &mut Vec<Effect>) {
        let mut waiting: Vec<(Severity, CaseKey)> = self
            .cases
            .iter()
            .filter(|(_, c)| c.waiting && !c.done)
            .filter_map(|(k, c)| {
                let v = self.incidents.get(&k.0)?;
                let muted = v.suppressed && c.mode == DispatchMode::Automatic;
                (!v.closed && !muted).then(|| (v.severity, k.clone()))
            })
            .collect();
        waiting.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, key) in waiting {
            self.send_next(&key, now, None, out);
        }
    }

    /// The incident is over: its cases end, live dispatches are cancelled or closed.
    fn close_incident(&mut self, incident_id: &str, now: EventTime, out: &mut Vec<Effect>) {
        let keys: Vec<CaseKey> = self
            .cases
            .keys()
            .filter(|(i, _)| i == incident_id)
            .cloned()
            .collect();
        for key in keys {
            let Some(case) = self.cases.get_mut(&key) else {
                continue;
            };
            case.done = true;
            case.waiting = false;
            let Some(id) = case.current.clone() else {
                continue;
            };
            let Some(d) = self.dispatches.get(&id) else {
                continue;
            };
            let next = match d.status {
                DispatchStatus::Sent => DispatchStatus::Cancelled,
                DispatchStatus::Accepted | DispatchStatus::OnScene => DispatchStatus::Resolved,
                _ => continue,
            };
            let crew = d.crew_id.clone();
            self.deadlines.disarm(&id);
            self.crews.release(&crew, &id);
            self.set_status(&id, next, now, out);
        }
    }

    fn set_status(
        &mut self,
        id: &str,
        status: DispatchStatus,
        now: EventTime,
        out: &mut Vec<Effect>,
    ) {
        if let Some(d) = self.dispatches.get_mut(id) {
            d.status = status;
            d.updated_at = now;
            out.push(Effect::Record(DispatchRecord::Dispatch(d.clone())));
        }
    }
}
