//! Comparing the incidents of two pipeline sets over the same recording: what the candidate set
//! would have fired that the current one did not, and what it would have missed.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::Incident;

/// A short description of one incident for a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Brief {
    /// Incident id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// First evidence, RFC 3339.
    pub opened_at: String,
    /// Devices in the evidence.
    pub devices: Vec<String>,
}

impl Brief {
    fn of(inc: &Incident) -> Brief {
        let mut devices: Vec<String> = inc.evidence.iter().map(|e| e.device_id.clone()).collect();
        devices.sort();
        devices.dedup();
        Brief {
            id: inc.id.clone(),
            kind: inc.kind.clone(),
            opened_at: inc.opened_at.to_rfc3339(),
            devices,
        }
    }
}

/// Result of comparing a current (A) and a candidate (B) pipeline set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// Incidents both sets raised, as (A id, B id).
    pub both: Vec<(String, String)>,
    /// Raised by B only: B "would have fired".
    pub would_have_fired: Vec<Brief>,
    /// Raised by A only: B "would have missed".
    pub would_have_missed: Vec<Brief>,
}

fn same(a: &Incident, b: &Incident, tolerance_secs: f64) -> bool {
    a.kind == b.kind
        && (a.opened_at.0 - b.opened_at.0).abs() as f64 <= tolerance_secs * 1000.0
        && a.evidence
            .iter()
            .any(|e| b.evidence.iter().any(|f| f.device_id == e.device_id))
}

/// Pairs the incidents of A and B (same kind, a shared device, first evidence within
/// `tolerance_secs`); everything unpaired is a difference.
pub fn compare(a: &[Incident], b: &[Incident], tolerance_secs: f64) -> Comparison {
    let mut used = vec![false; b.len()];
    let mut out = Comparison::default();
    for inc in a {
        match b
            .iter()
            .enumerate()
            .find(|(j, other)| !used[*j] && same(inc, other, tolerance_secs))
        {
            Some((j, other)) => {
                used[j] = true;
                out.both.push((inc.id.clone(), other.id.clone()));
            }
            None => out.would_have_missed.push(Brief::of(inc)),
        }
    }
    out.would_have_fired = b
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(inc, _)| Brief::of(inc))
        .collect();
    out
}

impl Comparison {
    /// A report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} incident(s) in both; candidate would have fired {} more and missed {}",
            self.both.len(),
            self.would_have_fired.len(),
            self.would_have_missed.len()
        );
        for b in &self.would_have_fired {
            let _ = writeln!(
                out,
                "would have fired: {} at {} ({})",
                b.kind,
                b.opened_at,
                b.devices.join(", ")
            );
        }
        for b in &self.would_have_missed {
            let _ = writeln!(
                out,
                "would have missed: {} at {} ({})",
                b.kind,
                b.opened_at,
                b.devices.join(", ")
            );
        }
        out
    }
}
