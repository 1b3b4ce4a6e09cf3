//! Crew dispatch, live: the task that runs the [`Dispatcher`] and carries out its decisions, and
//! the task that publishes dispatches on `city/crews/{crew_id}/dispatch` (QoS 1).
//!
//! One task owns the dispatcher and takes one event at a time, in this priority: shutdown,
//! commands (crew status and answers from MQTT via [`CrewInbox`], operator requests from the
//! API via [`DispatchHandle`]), incident changes (the store's broadcast), answer deadlines
//! (the injected [`Clock`]). So every decision follows event order, and two snapshots of one
//! incident arriving together can never both dispatch.
//!
//! Effects are applied in the order the dispatcher emits them: the record is written to the
//! [`DispatchLog`] before the message is handed to the publisher, so after a crash a dispatch
//! is never sent twice (at worst it is recorded but not sent, and its answer deadline escalates
//! it). A message lost with a broker session is covered the same way: no answer, escalation.

mod mqtt;
mod task;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use mqtt::publish_dispatches;
use task::Task;

use super::webhook::{forward, WebhookConfig, WebhookError, WebhookSink};
use crate::incident::dispatch::{
    Answer, Clock, Dispatch, DispatchConfig, DispatchError, DispatchLog, DispatchLogError,
    DispatchMessage, DispatchRecord, Dispatcher, Escalation, IncidentView, SilenceTable,
    TokioClock,
};
use crate::incident::IncidentStore;
use crate::ingest::mqtt::MqttConfig;
use crate::model::{Crew, CrewAck, CrewAction, CrewStatus, EventTime, Incident, Location};
use crate::telemetry::Metrics;

/// Commands queued for the dispatcher task; bounded so a stalled dispatcher slows the decoder
/// (and so the broker) instead of growing memory.
const COMMAND_QUEUE: usize = 1024;

/// Dispatch events a slow subscriber may lag behind before losing the oldest.
const EVENT_CAPACITY: usize = 1024;

/// Dispatches waiting for the MQTT publisher.
pub const OUTBOX_CAPACITY: usize = 256;

/// Something operators (webhooks, the live page) may want to hear about, in decision order.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchEvent {
    /// An incident changed; `suppressed` when silences cover all of its evidence.
    Incident {
        /// The incident as stored.
        incident: Incident,
        /// Held back by silences (not dispatched, not to be pushed).
        suppressed: bool,
    },
    /// A dispatch was sent or changed.
    Dispatch(Dispatch),
    /// A case escalated.
    Escalation(Escalation),
}

type Reply<T> = oneshot::Sender<Result<T, DispatchError>>;

#[derive(Debug)]
enum Command {
    Status(CrewStatus),
    Answer(Answer, Option<Reply<Dispatch>>),
    Confirm(String, String, Reply<Vec<Dispatch>>),
}

/// Where the engine's decoder hands crew messages; cheap to clone.
#[derive(Debug, Clone)]
pub struct CrewInbox(mpsc::Sender<Command>);

impl CrewInbox {
    /// A crew status from `city/crews/{id}/status`.
    pub fn status(&self, status: CrewStatus) {
        self.send(Command::Status(status));
    }

    /// A crew answer from `city/crews/{id}/ack`.
    pub fn ack(&self, ack: CrewAck) {
        let answer = Answer {
            dispatch_id: None,
            incident_id: Some(ack.incident_id),
            crew_id: Some(ack.crew_id.clone()),
            action: ack.action,
            actor: ack.crew_id,
        };
        self.send(Command::Answer(answer, None));
    }

    fn send(&self, cmd: Command) {
        // The decoder is a plain thread: wait for room (backpressure). Inside a runtime a
        // blocking send would panic, so there the message is dropped with a warning instead.
        let sent = if tokio::runtime::Handle::try_current().is_err() {
            self.0.blocking_send(cmd).is_ok()
        } else {
            self.0.try_send(cmd).is_ok()
        };
        if !sent {
            tracing::warn!("dispatcher not accepting crew messages; one dropped");
        }
    }
}

/// The API's handle on the dispatcher; cheap to clone.
#[derive(Debug, Clone)]
pub struct DispatchHandle {
    commands: mpsc::Sender<Command>,
    log: Arc<dyn DispatchLog>,
    silences: Arc<SilenceTable>,
    events: broadcast::Sender<DispatchEvent>,
    clock: Arc<dyn Clock>,
}

impl DispatchHandle {
    /// Operator-confirmed dispatch of an incident; returns the dispatches sent.
    pub async fn confirm(
        &self,
        incident_id: &str,
        actor: &str,
    ) -> Result<Vec<Dispatch>, DispatchError> {
        let (tx, rx) = oneshot::channel();
        self.request(Command::Confirm(incident_id.into(), actor.into(), tx), rx)
            .await
    }

    /// An answer through the API. `crew_id` restricts it to that crew's dispatches (crew
    /// tokens); `None` lets an operator answer for any crew.
    pub async fn answer(
        &self,
        dispatch_id: &str,
        action: CrewAction,
        crew_id: Option<&str>,
        actor: &str,
    ) -> Result<Dispatch, DispatchError> {
        let answer = Answer {
            dispatch_id: Some(dispatch_id.into()),
            incident_id: None,
            crew_id: crew_id.map(str::to_string),
            action,
            actor: actor.into(),
        };
        let (tx, rx) = oneshot::channel();
        self.request(Command::Answer(answer, Some(tx)), rx).await
    }

    async fn request<T>(
        &self,
        cmd: Command,
        rx: oneshot::Receiver<Result<T, DispatchError>>,
    ) -> Result<T, DispatchError> {
        self.commands
            .send(cmd)
            .await
            .map_err(|_| DispatchError::Stopped)?;
        rx.await.map_err(|_| DispatchError::Stopped)?
    }

    /// Every dispatch, oldest first.
    pub fn dispatches(&self) -> Result<Vec<Dispatch>, DispatchLogError> {
        let mut out: Vec<Dispatch> = self
            .log
            .scan()?
            .into_iter()
            .filter_map(|r| match r {
                DispatchRecord::Dispatch(d) => Some(d),
                DispatchRecord::Escalation(_) => None,
            })
            .collect();
        out.sort_by(|a, b| {
            a.sent_at
                .cmp(&b.sent_at)
                .then_with(|| a.dispatch_id.cmp(&b.dispatch_id))
        });
        Ok(out)
    }

    /// Every escalation, oldest first.
    pub fn escalations(&self) -> Result<Vec<Escalation>, DispatchLogError> {
        let mut out: Vec<Escalation> = self
            .log
            .scan()?
            .into_iter()
            .filter_map(|r| match r {
                DispatchRecord::Escalation(e) => Some(e),
                DispatchRecord::Dispatch(_) => None,
            })
            .collect();
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// Silences and the suppressed list.
    pub fn silences(&self) -> &SilenceTable {
        &self.silences
    }

    /// The dispatcher's clock.
    pub fn now(&self) -> EventTime {
        self.clock.now()
    }

    /// Incident changes (with their suppression), dispatches and escalations from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DispatchEvent> {
        self.events.subscribe()
    }

    /// Where the engine hands crew messages.
    pub fn inbox(&self) -> CrewInbox {
        CrewInbox(self.commands.clone())
    }
}

/// What the dispatcher task needs.
pub struct DispatchOptions {
    /// Policies and answer timeout.
    pub config: DispatchConfig,
    /// Registered crews.
    pub crews: Vec<Crew>,
    /// Registered device positions (for area silences).
    pub devices: HashMap<String, Location>,
    /// Incidents (changes in, lifecycle changes out).
    pub store: Arc<IncidentStore>,
    /// Where dispatch records are kept (the store itself in production).
    pub log: Arc<dyn DispatchLog>,
    /// Time for records and answer deadlines.
    pub clock: Arc<dyn Clock>,
    /// Dispatch and escalation counters.
    pub metrics: Option<Arc<Metrics>>,
}

/// Starts the dispatcher task: cases are restored from the log, incidents already in the store
/// are looked at, then events are followed until `shutdown`. Dispatch messages go to `outbox`
/// (see [`publish_dispatches`]). Must be called inside a tokio runtime.
pub fn spawn(
    opts: DispatchOptions,
    outbox: mpsc::Sender<DispatchMessage>,
    shutdown: watch::Receiver<bool>,
) -> (DispatchHandle, JoinHandle<()>) {
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let silences = Arc::new(SilenceTable::new(opts.devices));
    let handle = DispatchHandle {
        commands,
        log: opts.log.clone(),
        silences: silences.clone(),
        events: events.clone(),
        clock: opts.clock.clone(),
    };
    // Subscribe before reading the store, so nothing falls between the two.
    let incidents = opts.store.subscribe();
    let mut machine = Dispatcher::new(opts.config, opts.crews);
    match opts.log.scan() {
        Ok(records) => {
            let store = opts.store.clone();
            machine.restore(records, |id| {
                store.get(id).map(|i| IncidentView::of(&i, false))
            });
        }
        Err(e) => tracing::error!(error = %e, "dispatch log unreadable; starting without it"),
    }
    let task = Task {
        machine,
        store: opts.store,
        log: opts.log,
        silences,
        events,
        clock: opts.clock,
        outbox,
        metrics: opts.metrics,
    };
    (handle, tokio::spawn(task.run(rx, incidents, shutdown)))
}

/// Crew dispatch settings for a live pipeline.
#[derive(Debug, Clone)]
pub struct DispatchSetup {
    /// Policies and answer timeout (`dispatch:` in the app config).
    pub config: DispatchConfig,
    /// Webhooks (`webhooks:` in the app config).
    pub webhooks: Vec<WebhookConfig>,
    /// Time for dispatch records, answer deadlines and silences.
    pub clock: Arc<dyn Clock>,
}

impl Default for DispatchSetup {
    fn default() -> Self {
        DispatchSetup {
            config: DispatchConfig::default(),
            webhooks: Vec::new(),
            clock: TokioClock::new(),
        }
    }
}

/// Starts everything dispatch needs in a live pipeline: the dispatcher, its MQTT publisher on
/// `mqtt`, and the webhooks fed from the dispatcher's events. All stop at `shutdown`.
pub fn start_live(
    opts: DispatchOptions,
    mqtt: MqttConfig,
    webhooks: Vec<WebhookConfig>,
    shutdown: watch::Receiver<bool>,
) -> Result<(DispatchHandle, Vec<JoinHandle<()>>), WebhookError> {
    let (clock, metrics) = (opts.clock.clone(), opts.metrics.clone());
    let (outbox, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
    let (hooks, mut tasks) = WebhookSink::start(webhooks, clock, metrics, shutdown.clone())?;
    let (handle, dispatcher) = spawn(opts, outbox, shutdown.clone());
    tasks.push(dispatcher);
    tasks.push(tokio::spawn(publish_dispatches(
        mqtt,
        outbox_rx,
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(forward(handle.subscribe(), hooks, shutdown)));
    Ok((handle, tasks))
}
