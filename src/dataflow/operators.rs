//! Timely wiring: the worker-0 input loop, the detect operator and the correlate operator.

use std::collections::BTreeMap;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::{Probe, UnorderedInput};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use super::bank::{anomaly_order, reading_order, DetectorBank};
use super::gate::{DataflowConfig, InputGate, Verdict};
use super::reload::ReloadHandle;
use super::{tick_of, DataflowError, Definitions, Input, Output, TICK_MS};
use crate::correlate::{Correlate, Correlator};
use crate::model::{Anomaly, EventTime, IncidentSnapshot, Reading};

/// How far (ticks) processing may trail the watermark before the input loop stops reading and
/// lets the workers catch up: bounds memory when replaying as fast as possible.
const MAX_LAG_TICKS: u64 = 120;

/// Stable device hash for the exchange (FNV-1a), so placement does not vary between runs.
fn device_hash(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub(super) fn run(
    cfg: DataflowConfig,
    defs: Definitions,
    reloads: ReloadHandle,
    input: Receiver<Input>,
    output: Sender<Output>,
) -> Result<(), DataflowError> {
    let input = std::sync::Mutex::new(Some(input));
    let config = timely::Config::process(cfg.workers);
    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let defs = defs.clone();
        let out = output.clone();
        let out_corr = output.clone();
        let reloads_worker = reloads.clone();
        let reloads_detect = reloads.clone();
        let reloads_corr = reloads.clone();
        let ((mut handle, cap), probe) = worker.dataflow::<u64, _, _>(move |scope| {
            let ((handle, cap), readings) = scope.new_unordered_input::<timely::container::CapacityContainerBuilder<Vec<Reading>>>();
            let bank_defs = defs.clone();
            let anomalies = readings.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Anomaly>>, _, _, _>(
                Exchange::new(|r: &Reading| device_hash(&r.device_id)),
                "Detect",
                move |initial, _info| {
                    let mut bank = DetectorBank::new(bank_defs.pipelines.clone(), bank_defs.profiles.clone());
                    let mut version = 0u64;
                    // The watermark sweep touches every detector of the worker; it is idempotent,
                    // so it runs only when the frontier has moved, not on every activation.
                    let mut swept: Option<u64> = None;
                    let mut held: Option<Capability<u64>> = Some(initial);
                    let mut buffer: BTreeMap<u64, Vec<Reading>> = BTreeMap::new();
                    let mut produced: Vec<Anomaly> = Vec::new();
                    move |(input, frontier), output| {
                        input.for_each(|cap, data| {
                            if let Some(t) = cap.least().copied() {
                                buffer.entry(t).or_default().append(data);
                            }
                        });
                        let limit = frontier.frontier().first().copied();
                        let ready: Vec<u64> = buffer.range(..limit.unwrap_or(u64::MAX)).map(|(t, _)| *t).collect();
                        for t in ready {
                            if let Some(v) = reloads_detect.update_for(version, t) {
                                bank.reload(v.pipelines.clone(), v.profiles.clone());
                                version = v.number;
                            }
                            let mut batch = buffer.remove(&t).unwrap_or_default();
                            batch.sort_by(reading_order);
                            for r in &batch {
                                bank.observe(r, &mut produced);
                            }
                        }
                        if limit.is_none() {
                            // Input ended: anything left (cannot happen, all ticks are ready).
                            for (_, mut batch) in std::mem::take(&mut buffer) {
                                batch.sort_by(reading_order);
                                for r in &batch {
                                    bank.observe(r, &mut produced);
                                }
                            }
                        }
                        if let Some(l) = limit.filter(|l| swept.is_none_or(|s| *l > s)) {
                            swept = Some(l);
                            if let Some(v) = reloads_detect.update_for(version, l) {
                                bank.reload(v.pipelines.clone(), v.profiles.clone());
                                version = v.number;
                            }
                            bank.on_watermark(EventTime(l as i64 * TICK_MS), &mut produced);
                        }
                        if let Some(cap) = held.as_ref() {
                            produced.sort_by(anomaly_order);
                            let mut by_tick: BTreeMap<u64, Vec<Anomaly>> = BTreeMap::new();
                            for a in produced.drain(..) {
                                let t = tick_of(a.ts).max(*cap.time());
                                by_tick.entry(t).or_default().push(a);
                            }
                            for (t, items) in by_tick {
                                let c = cap.delayed(&t);
                                output.session(&c).give_iterator(items.into_iter());
                            }
                        }
                        match (limit, held.as_mut()) {
                            (Some(l), Some(cap)) if l > *cap.time() => cap.downgrade(&l),
                            (None, _) => held = None,
                            _ => {}
                        }
                    }
                },
            );
            let corr_defs = defs.clone();
            let (probe, _) = anomalies
                .unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(|_a: &Anomaly| 0u64),
                    "Correlate",
                    move |initial, _info| {
                        let mut correlator = Correlator::new(&corr_defs.pipelines, corr_defs.registry.clone());
                        let mut version = 0u64;
                        let mut swept: Option<u64> = None;
                        // Only worker 0 correlates; elsewhere restored incidents would clear on
                        // the next watermark and be reported twice.
                        if index == 0 {
                            correlator.restore(corr_defs.open_incidents.clone());
                        }
                        let mut held: Option<Capability<u64>> = Some(initial);
                        let mut buffer: BTreeMap<u64, Vec<Anomaly>> = BTreeMap::new();
                        let mut snaps: Vec<IncidentSnapshot> = Vec::new();
                        move |(input, frontier), _output| {
                            input.for_each(|cap, data| {
                                if let Some(t) = cap.least().copied() {
                                buffer.entry(t).or_default().append(data);
                            }
                            });
                            let limit = frontier.frontier().first().copied();
                            let ready: Vec<u64> = buffer.range(..limit.unwrap_or(u64::MAX)).map(|(t, _)| *t).collect();
                            for t in ready {
                                if let Some(v) = reloads_corr.update_for(version, t) {
                                    correlator.reload(&v.pipelines);
                                    version = v.number;
                                }
                                let mut batch = buffer.remove(&t).unwrap_or_default();
                                batch.sort_by(anomaly_order);
                                for a in batch {
                                    correlator.on_watermark(a.ts, &mut snaps);
                                    let _ = out_corr.send(Output::Anomaly(a.clone()));
                                    correlator.ingest(a, &mut snaps);
                                    for s in snaps.drain(..) {
                                        let _ = out_corr.send(Output::Incident(s));
                                    }
                                }
                            }
                            if let Some(l) = limit.filter(|l| swept.is_none_or(|s| *l > s)) {
                                swept = Some(l);
                                if let Some(v) = reloads_corr.update_for(version, l) {
                                    correlator.reload(&v.pipelines);
                                    version = v.number;
                                }
                                let w = EventTime(l as i64 * TICK_MS);
                                correlator.on_watermark(w, &mut snaps);
                                for s in snaps.drain(..) {
                                    let _ = out_corr.send(Output::Incident(s));
                                }
                            }
                            match (limit, held.as_mut()) {
                                (Some(l), Some(cap)) if l > *cap.time() => cap.downgrade(&l),
                                (None, _) => held = None,
                                _ => {}
                            }
                        }
                    },
                )
                .probe();
            ((handle, cap), probe)
        });

        if index != 0 {
            drop(cap);
            return;
        }
        let Some(rx) = input.lock().ok().and_then(|mut g| g.take()) else {
            drop(cap);
            return;
        };
        let mut gate = InputGate::new(&cfg);
        let mut cap = cap;
        let mut by_tick: BTreeMap<u64, Vec<Reading>> = BTreeMap::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(Input::Readings(batch)) => {
                    for r in batch {
                        match gate.classify(&r) {
                            Verdict::Accept => by_tick.entry(tick_of(r.ts)).or_default().push(r),
                            verdict => {
                                let _ = out.send(Output::Rejected(verdict, r));
                            }
                        }
                    }
                    for (t, items) in std::mem::take(&mut by_tick) {
                        let c = cap.delayed(&t.max(*cap.time()));
                        handle.activate().session(&c).give_iterator(items.into_iter());
                    }
                    if let Some(w) = gate.watermark() {
                        let wt = tick_of(w);
                        if wt > *cap.time() {
                            cap.downgrade(&wt);
                            reloads_worker.set_watermark_tick(wt);
                            let _ = out.send(Output::Watermark(EventTime(wt as i64 * TICK_MS)));
                        }
                        worker.step();
                        while probe.less_than(&wt.saturating_sub(MAX_LAG_TICKS)) {
                            worker.step();
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            worker.step();
        }
        // End of input: everything received is judged. Event time ends at the last watermark
        // (not past the newest reading: devices whose clocks run a little behind must not look
        // silent just because the recording stopped); readings at or after it are still
        // processed, with no further watermark.
        if let Some(w) = gate.watermark() {
            let final_tick = tick_of(w).max(*cap.time());
            cap.downgrade(&final_tick);
            let _ = out.send(Output::Watermark(EventTime(final_tick as i64 * TICK_MS)));
            while probe.less_than(&final_tick) {
                worker.step();
            }
        }
        drop(cap);
    })
    .map_err(|e| DataflowError::Timely(e.to_string()))?;
    for r in guards.join() {
        r.map_err(DataflowError::Timely)?;
    }
    Ok(())
}
