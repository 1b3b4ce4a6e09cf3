//! The dispatcher task: one event at a time (see the parent module for the order), effects
//! applied in the order the dispatcher emits them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use super::{Command, DispatchEvent};
use crate::incident::dispatch::{
    Clock, DispatchError, DispatchLog, DispatchMessage, DispatchMode, DispatchRecord, Dispatcher,
    Effect, IncidentView, LifecycleChange, SilenceTable,
};
use crate::incident::{IncidentStore, LifecycleError};
use crate::ingest::mqtt::wait_shutdown;
use crate::model::{CrewAction, EventTime, Incident};
use crate::telemetry::Metrics;

pub(super) struct Task {
    pub(super) machine: Dispatcher,
    pub(super) store: Arc<IncidentStore>,
    pub(super) log: Arc<dyn DispatchLog>,
    pub(super) silences: Arc<SilenceTable>,
    pub(super) events: broadcast::Sender<DispatchEvent>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) outbox: mpsc::Sender<DispatchMessage>,
    pub(super) metrics: Option<Arc<Metrics>>,
}

impl Task {
    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut incidents: broadcast::Receiver<Incident>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // Crew reports queued before the start come first (their tablets spoke first), then
        // the incidents already in the store.
        while let Ok(cmd) = commands.try_recv() {
            self.command(cmd).await;
        }
        for incident in self.store.all() {
            self.incident(incident, false).await;
        }
        let mut store_open = true;
        loop {
            let deadline = self.machine.next_deadline();
            let wait = deadline.map(|d| {
                Duration::from_millis(d.0.saturating_sub(self.clock.now().0).max(0) as u64)
            });
            tokio::select! {
                biased;
                _ = wait_shutdown(&mut shutdown) => return,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => return,
                },
                change = incidents.recv(), if store_open => match change {
                    Ok(incident) => self.incident(incident, true).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "dispatcher fell behind the store; rescanning");
                        for incident in self.store.all() {
                            self.incident(incident, false).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => store_open = false,
                },
                _ = sleep(wait) => {
                    let effects = self.machine.on_tick(self.clock.now());
                    self.apply(effects).await;
                }
            }
        }
    }

    /// An incident as stored now. `announce`: it is a change (not a rescan of the store after
    /// a start or a lag), so webhooks and other listeners hear of it.
    async fn incident(&mut self, incident: Incident, announce: bool) {
        let now = self.clock.now();
        let closed = IncidentView::of(&incident, false).closed;
        // A closed incident is not judged again: it keeps the verdict it had while live.
        let suppressed = if closed {
            self.silences.is_suppressed(&incident.id)
        } else {
            self.silences.evaluate(&incident, now)
        };
        let view = IncidentView::of(&incident, suppressed);
        if announce {
            let _ = self.events.send(DispatchEvent::Incident {
                incident,
                suppressed,
            });
        }
        let effects = self.machine.on_incident(view, now);
        self.apply(effects).await;
    }

    async fn command(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Status(status) => {
                let effects = self.machine.on_status(status, now);
                self.apply(effects).await;
            }
            Command::Answer(answer, reply) => {
                let id = answer.dispatch_id.clone();
                let outcome = match self.machine.on_answer(answer, now) {
                    Ok(effects) => {
                        self.apply(effects).await;
                        let answered = id.and_then(|i| self.machine.dispatch(&i).cloned());
                        answered.ok_or_else(|| DispatchError::UnknownDispatch(String::new()))
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "crew answer refused");
                        Err(e)
                    }
                };
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
            Command::Confirm(incident_id, actor, reply) => {
                let outcome = match self.store.get(&incident_id) {
                    None => Err(DispatchError::UnknownIncident(incident_id.clone())),
                    Some(incident) => {
                        let suppressed = self.silences.evaluate(&incident, now);
                        let view = IncidentView::of(&incident, suppressed);
                        self.machine.confirm(view, &actor, now)
                    }
                };
                let outcome = match outcome {
                    Ok(effects) => {
                        let ids: Vec<String> = effects
                            .iter()
                            .filter_map(|e| match e {
                                Effect::Publish(m) if m.incident_id == incident_id => {
                                    Some(m.dispatch_id.clone())
                                }
                                _ => None,
                            })
                            .collect();
                        self.apply(effects).await;
                        Ok(ids
                            .iter()
                            .filter_map(|i| self.machine.dispatch(i).cloned())
                            .collect())
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(outcome);
            }
        }
    }

    /// Carries out effects in order. Log writes and lifecycle changes may wait for an fsync
    /// (durable store), so then they run off the async workers; either way all of them before
    /// any message is handed to the publisher.
    async fn apply(&mut self, effects: Vec<Effect>) {
        let (publish, durable): (Vec<Effect>, Vec<Effect>) = effects
            .into_iter()
            .partition(|e| matches!(e, Effect::Publish(_)));
        if !durable.is_empty() {
            let ctx = Durable {
                store: self.store.clone(),
                log: self.log.clone(),
                events: self.events.clone(),
                metrics: self.metrics.clone(),
                now: self.clock.now(),
            };
            if self.store.is_durable() || self.log.may_block() {
                if let Err(e) = tokio::task::spawn_blocking(move || ctx.apply(durable)).await {
                    tracing::error!(error = %e, "dispatch records not applied");
                }
            } else {
                ctx.apply(durable);
            }
        }
        for effect in publish {
            let Effect::Publish(message) = effect else {
                continue;
            };
            if let (Some(m), Some(d)) = (&self.metrics, self.machine.dispatch(&message.dispatch_id))
            {
                let mode = match d.mode {
                    DispatchMode::Automatic => "automatic",
                    DispatchMode::OperatorConfirmed => "operator_confirmed",
                };
                m.dispatches_total.inc([mode]);
                // Time to a department's first crew (escalations are counted apart).
                if let (1, Some(i)) = (d.attempt, self.store.get(&d.incident_id)) {
                    m.observe_dispatch(mode, i.detected_at, d.sent_at);
                }
            }
            tracing::info!(dispatch = %message.dispatch_id, crew = %message.crew_id,
                incident = %message.incident_id, "dispatching crew");
            if self.outbox.send(message).await.is_err() {
                tracing::error!("dispatch publisher stopped; dispatch not sent");
            }
        }
    }
}

/// What the blocking half of [`Task::apply`] needs.
struct Durable {
    store: Arc<IncidentStore>,
    log: Arc<dyn DispatchLog>,
    events: broadcast::Sender<DispatchEvent>,
    metrics: Option<Arc<Metrics>>,
    now: EventTime,
}

impl Durable {
    fn apply(self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Record(record) => {
                    if let Err(e) = self.log.put(&record) {
                        tracing::error!(error = %e, key = %record.key(), "dispatch record not saved");
                    }
                    let event = match record {
                        DispatchRecord::Dispatch(d) => DispatchEvent::Dispatch(d),
                        DispatchRecord::Escalation(e) => {
                            if let Some(m) = &self.metrics {
                                m.dispatch_escalations_total.inc([e.reason.as_str()]);
                            }
                            tracing::warn!(incident = %e.incident_id, department = %e.department,
                                reason = e.reason.as_str(), "{}", e.message);
                            DispatchEvent::Escalation(e)
                        }
                    };
                    let _ = self.events.send(event);
                }
                Effect::Lifecycle(change) => lifecycle(&self.store, &change, self.now),
                Effect::Publish(_) => {}
            }
        }
    }
}

/// Moves the incident as the crew's answer says. A refusal is normal when several departments
/// answer (the first acceptance already made the incident `dispatched`).
fn lifecycle(store: &IncidentStore, c: &LifecycleChange, now: EventTime) {
    let reason = Some(c.reason.as_str());
    let result = match c.action {
        CrewAction::Accept => store.dispatch(&c.incident_id, &c.actor, now),
        CrewAction::OnScene => store.on_scene(&c.incident_id, &c.actor, reason, now),
        CrewAction::Resolved => store.resolve(&c.incident_id, &c.actor, reason, now),
        CrewAction::Decline => return,
    };
    match result {
        Ok(_) => {}
        Err(LifecycleError::InvalidTransition { .. }) => {
            tracing::debug!(incident = %c.incident_id, "lifecycle already moved on");
        }
        Err(e) => tracing::warn!(incident = %c.incident_id, error = %e, "lifecycle change refused"),
    }
}

async fn sleep(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
