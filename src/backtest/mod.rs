//! Backtests: incident-level scoring of what a pipeline set found against a ground truth
//! (`truth.json`, as `citybrain simulate` writes it), for engineers tuning pipelines.
//!
//! Matching: a detected incident matches a truth incident of the same kind when its first
//! evidence falls within the truth's time span widened by `tolerance_secs` on both sides (device
//! clocks drift and detectors need confirmation time) and it shares a device with the truth
//! (or, with no device in common, lies within `radius_m` of the truth's location). Per kind:
//! - found: truth incidents matched at least once; missed: matched by none;
//! - duplicates: extra detected incidents matching an already-found truth incident;
//! - extra: detected incidents that match no truth incident (false alarms);
//! - flaps: reopen transitions (resolved → open) of the detected incidents;
//! - detection delay: `detected_at − truth start` of the first match, in event-time seconds;
//! - precision = found / (found + extra + duplicates), recall = found / truth, F1.

mod compare;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use compare::{compare, Comparison};

use crate::model::{EventTime, Incident, Location};

/// One injected (true) incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthIncident {
    /// Incident kind.
    pub kind: String,
    /// When it started (true time).
    pub start: EventTime,
    /// When it ended.
    pub end: EventTime,
    /// Where.
    pub location: Location,
    /// Devices that show it.
    #[serde(default)]
    pub devices: Vec<String>,
}

/// The parts of `truth.json` a backtest reads (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthFile {
    /// Injected incidents.
    pub incidents: Vec<TruthIncident>,
}

/// Matching tolerances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchOptions {
    /// Time slack around the truth's span, seconds.
    pub tolerance_secs: f64,
    /// Distance for a match with no shared device, metres.
    pub radius_m: f64,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            tolerance_secs: 600.0,
            radius_m: 1000.0,
        }
    }
}

/// Scores of one kind (or of all kinds together).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindScore {
    /// Truth incidents.
    pub truth: usize,
    /// Truth incidents found.
    pub found: usize,
    /// Truth incidents missed.
    pub missed: usize,
    /// Detected incidents matching no truth.
    pub extra: usize,
    /// Further detected incidents for an already-found truth.
    pub duplicates: usize,
    /// Reopen transitions of detected incidents.
    pub flaps: u32,
    /// Median detection delay, seconds (None when nothing was found).
    pub median_delay_secs: Option<f64>,
    /// Largest detection delay, seconds.
    pub max_delay_secs: Option<f64>,
    /// found / (found + extra + duplicates); 1 when nothing was detected and nothing expected.
    pub precision: f64,
    /// found / truth; 1 when nothing was expected.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    #[serde(skip)]
    delays: Vec<f64>,
}

impl KindScore {
    fn finish(&mut self) {
        self.delays.sort_by(f64::total_cmp);
        self.median_delay_secs =
            (!self.delays.is_empty()).then(|| self.delays[self.delays.len() / 2]);
        self.max_delay_secs = self.delays.last().copied();
        let detected = self.found + self.extra + self.duplicates;
        self.precision = if detected == 0 {
            1.0
        } else {
            self.found as f64 / detected as f64
        };
        self.recall = if self.truth == 0 {
            1.0
        } else {
            self.found as f64 / self.truth as f64
        };
        let s = self.precision + self.recall;
        self.f1 = if s == 0.0 {
            0.0
        } else {
            2.0 * self.precision * self.recall / s
        };
    }
}

/// A full backtest result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// Per incident kind (every kind in the truth or in the detections).
    pub per_kind: BTreeMap<String, KindScore>,
    /// All kinds together.
    pub overall: KindScore,
    /// (truth index, detected incident id) pairs, first match first.
    pub matches: Vec<(usize, String)>,
    /// Truth indices nothing matched.
    pub missed: Vec<usize>,
    /// Ids of detected incidents that matched no truth.
    pub extra: Vec<String>,
}

fn matches(t: &TruthIncident, inc: &Incident, opts: &MatchOptions) -> bool {
    if t.kind != inc.kind {
        return false;
    }
    let lo = t.start.plus_secs(-opts.tolerance_secs);
    let hi = t.end.plus_secs(opts.tolerance_secs);
    if inc.opened_at < lo || inc.opened_at > hi {
        return false;
    }
    let shares_device = inc
        .evidence
        .iter()
        .any(|e| t.devices.contains(&e.device_id));
    shares_device || inc.location.distance_m(&t.location) <= opts.radius_m
}

/// Scores `incidents` against `truth`. `flaps` maps incident id → reopen count.
pub fn evaluate(
    truth: &[TruthIncident],
    incidents: &[Incident],
    flaps: &BTreeMap<String, u32>,
    opts: &MatchOptions,
) -> Evaluation {
    let mut eval = Evaluation::default();
    for t in truth {
        eval.per_kind.entry(t.kind.clone()).or_default().truth += 1;
    }
    let mut hit = vec![false; truth.len()];
    for inc in incidents {
        let score = eval.per_kind.entry(inc.kind.clone()).or_default();
        score.flaps += flaps.get(&inc.id).copied().unwrap_or(0);
        match truth
            .iter()
            .enumerate()
            .find(|(_, t)| matches(t, inc, opts))
        {
            Some((i, t)) if !hit[i] => {
                hit[i] = true;
                score.found += 1;
                score
                    .delays
                    .push((inc.detected_at.0 - t.start.0) as f64 / 1000.0);
                eval.matches.push((i, inc.id.clone()));
            }
            Some((i, _)) => {
                score.duplicates += 1;
                eval.matches.push((i, inc.id.clone()));
            }
            None => {
                score.extra += 1;
                eval.extra.push(inc.id.clone());
            }
        }
    }
    eval.missed = hit
        .iter()
        .enumerate()
        .filter(|(_, h)| !**h)
        .map(|(i, _)| i)
        .collect();
    for (i, t) in truth.iter().enumerate() {
        if !hit[i] {
            eval.per_kind.entry(t.kind.clone()).or_default().missed += 1;
        }
    }
    let mut overall = KindScore::default();
    for s in eval.per_kind.values_mut() {
        overall.truth += s.truth;
        overall.found += s.found;
        overall.missed += s.missed;
        overall.extra += s.extra;
        overall.duplicates += s.duplicates;
        overall.flaps += s.flaps;
        overall.delays.extend(s.delays.iter().copied());
        s.finish();
    }
    overall.finish();
    eval.overall = overall;
    eval
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("{s:.0} s"))
}

impl Evaluation {
    /// A table for people.
    pub fn to_text(&self, truth: &[TruthIncident]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<20} {:>5} {:>5} {:>6} {:>5} {:>4} {:>5} {:>9} {:>9} {:>9} {:>6} {:>6}",
            "kind",
            "truth",
            "found",
            "missed",
            "extra",
            "dup",
            "flaps",
            "med.delay",
            "max.delay",
            "precision",
            "recall",
            "F1"
        );
        let rows = self
            .per_kind
            .iter()
            .map(|(k, s)| (k.as_str(), s))
            .chain([("ALL", &self.overall)]);
        for (kind, s) in rows {
            let _ =
                writeln!(
                out,
                "{:<20} {:>5} {:>5} {:>6} {:>5} {:>4} {:>5} {:>9} {:>9} {:>9.2} {:>6.2} {:>6.2}",
                kind, s.truth, s.found, s.missed, s.extra, s.duplicates, s.flaps,
                secs(s.median_delay_secs), secs(s.max_delay_secs), s.precision, s.recall, s.f1
            );
        }
        for &i in &self.missed {
            if let Some(t) = truth.get(i) {
                let _ = writeln!(
                    out,
                    "missed: {} at {} ({})",
                    t.kind,
                    t.start,
                    t.devices.join(", ")
                );
            }
        }
        for id in &self.extra {
            let _ = writeln!(out, "extra: {id}");
        }
        out
    }
}

#[cfg(test)]
mod tests;
