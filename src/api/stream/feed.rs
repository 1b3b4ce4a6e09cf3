//! The feeder: one task per server that turns the store's, the device table's and the crew
//! feed's changes into numbered stream events.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::{StreamHub, CREW_POLL};
use crate::api::ApiState;
use crate::incident::DeviceStatusView;
use crate::model::Incident;

/// Event names, as the page and other clients see them.
pub(super) const INCIDENT: &str = "incident";
pub(super) const DEVICE: &str = "device";
pub(super) const CREW: &str = "crew";

/// The subscriptions, taken synchronously so no change made after [`Feeds::subscribe`] is lost.
pub(super) struct Feeds {
    incidents: broadcast::Receiver<Incident>,
    devices: broadcast::Receiver<DeviceStatusView>,
    crews: Option<crate::api::CrewBoard>,
}

impl Feeds {
    pub(super) fn subscribe(state: &ApiState) -> Feeds {
        Feeds {
            incidents: state.store.subscribe(),
            devices: state.devices.subscribe(),
            crews: state.crews.clone(),
        }
    }

    /// Runs until the hub closes or the incident store goes away.
    pub(super) async fn run(mut self, hub: Arc<StreamHub>) {
        let mut closed: watch::Receiver<bool> = hub.closed();
        let mut tick = tokio::time::interval(CREW_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Crews already known are on the page from `GET /api/v1/crews`: only changes stream.
        let mut crews_seen = self.crews.as_ref().map(|c| c.list()).unwrap_or_default();
        let mut devices_open = true;
        loop {
            tokio::select! {
                // Incidents first when several feeds are ready: they are what operators act on.
                biased;
                incident = recv_or_lag(&hub, INCIDENT, &mut self.incidents) => match incident {
                    Some(i) => { hub.publish(INCIDENT, &i); }
                    None => break,
                },
                device = recv_or_lag(&hub, DEVICE, &mut self.devices), if devices_open => {
                    match device {
                        Some(d) => { hub.publish(DEVICE, &d); }
                        None => devices_open = false,
                    }
                },
                _ = tick.tick(), if self.crews.is_some() => {
                    let Some(board) = &self.crews else { continue };
                    let now = board.list();
                    for crew in now.iter().filter(|c| !crews_seen.contains(c)) {
                        hub.publish(CREW, crew);
                    }
                    crews_seen = now;
                },
                _ = closed.wait_for(|c| *c) => break,
            }
        }
    }
}

/// Logs and reports a lagged subscription: changes were lost, so every client must reload.
fn lagged(hub: &StreamHub, feed: &'static str, missed: u64) {
    tracing::warn!(
        feed,
        missed,
        "live stream feeder fell behind; clients told to resync"
    );
    let body = serde_json::json!({ "reason": format!("server skipped {missed} {feed} changes") });
    hub.publish("resync", &body);
}

/// Receives from a broadcast feed; `None` once it is closed.
async fn recv_or_lag<T: Clone>(
    hub: &StreamHub,
    feed: &'static str,
    rx: &mut broadcast::Receiver<T>,
) -> Option<T> {
    loop {
        match rx.recv().await {
            Ok(v) => return Some(v),
            Err(broadcast::error::RecvError::Lagged(n)) => lagged(hub, feed, n),
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}
