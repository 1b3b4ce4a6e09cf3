//! Pipelines (`pipelines/*.yaml`): the signals detectors emit per device, and the correlation rule
//! that turns signals from many devices and departments into one incident kind.
//!
//! A pipeline file holds `signals:` (detectors, per device profile and metric) and optionally one
//! `incident:` rule. Signal names form ONE namespace across all files of a pipeline set, so a
//! signal such as `speed_collapse` can be defined once and used by several incident kinds (and its
//! detector then runs once per device, not once per rule). Defining the same name twice with a
//! different definition is an error naming both files.
//!
//! ```yaml
//! signals:
//!   - name: pressure_drop
//!     profiles: [pressure-logger]
//!     metric: pressure_kpa
//!     detector: {type: step, direction: down, baseline_secs: 600, change_pct: 20, min_duration_secs: 30}
//! incident:
//!   kind: water_main_burst
//!   severity: critical
//!   priority: 100
//!   radius_m: 500
//!   window_secs: 900
//!   clear_after_secs: 1800
//!   trigger:
//!     - all:
//!         - {signals: [pressure_drop]}
//!         - {signals: [water_on_road, speed_collapse]}
//!   supporting: [occupancy_rise]
//!   absorbs: [traffic_accident]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::profile::ProfileSet;
use super::{load_yaml_str, ConfigError, ConfigErrors};
use crate::detect::DetectorConfig;
use crate::model::Severity;

/// One pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Signals (detectors) this file defines.
    #[serde(default)]
    pub signals: Vec<SignalConfig>,
    /// The incident rule this file defines, if any.
    #[serde(default)]
    pub incident: Option<IncidentRule>,
}

/// A named signal: one detector instantiated per matching device (and metric).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    /// Signal name, unique across the pipeline set (`pressure_drop`).
    pub name: String,
    /// Device profiles it applies to; `["*"]` for every profile.
    pub profiles: Vec<String>,
    /// Canonical metric watched (`pressure_kpa`, `event.accident`), or `*`: a `silence`
    /// detector then watches the device as a whole, any other detector runs once per metric of
    /// the profile.
    pub metric: String,
    /// Detector and its parameters (see `src/detect/mod.rs` for the reference).
    pub detector: DetectorConfig,
    /// While raised, the device is unhealthy and its other evidence is down-weighted.
    /// `silence`, `flatline` and `out_of_range` detectors are health signals whatever this says.
    #[serde(default)]
    pub health: bool,
}

impl SignalConfig {
    /// Whether this signal reports on the device's own health.
    pub fn is_health(&self) -> bool {
        self.health
            || matches!(
                self.detector,
                DetectorConfig::Silence(_)
                    | DetectorConfig::Flatline(_)
                    | DetectorConfig::OutOfRange(_)
            )
    }
}

/// How anomalies become one incident of a kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentRule {
    /// Incident kind (`water_main_burst`); a contract name other tools rely on.
    pub kind: String,
    /// Operator-facing description.
    #[serde(default)]
    pub description: String,
    /// Severity of incidents of this kind.
    pub severity: Severity,
    /// When several kinds could claim the same evidence, the higher priority decides first.
    #[serde(default)]
    pub priority: i32,
    /// `area` (evidence from devices within `radius_m` joins) or `device` (one incident per
    /// device, e.g. device faults).
    #[serde(default)]
    pub scope: Scope,
    /// Evidence joins an incident when its device is within this distance (metres) of a device
    /// already in the incident (area scope).
    #[serde(default = "default_radius_m")]
    pub radius_m: f64,
    /// Evidence counts towards opening an incident for this many seconds of event time after
    /// it was raised (conditions still raised count until they clear).
    pub window_secs: f64,
    /// An open incident resolves when it has had no new evidence and no raised condition for
    /// this many seconds of event time.
    pub clear_after_secs: f64,
    /// A cleared incident that gets matching evidence again within this many seconds reopens
    /// (same id) instead of a new incident: no flapping. Default: `clear_after_secs`.
    #[serde(default)]
    pub reopen_within_secs: Option<f64>,
    /// Alternatives (any one suffices), each a list of requirements (all must hold).
    pub trigger: Vec<TriggerAlternative>,
    /// Signals that may join an open incident as evidence without being able to open one.
    #[serde(default)]
    pub supporting: Vec<String>,
    /// Lower-priority kinds whose open incidents nearby are merged into this one.
    #[serde(default)]
    pub absorbs: Vec<String>,
    /// Departments always involved, added to the owners of the evidence devices.
    #[serde(default)]
    pub departments: Vec<String>,
    /// Weight (0..1) of evidence from a device that is unhealthy when it reports it: a frozen or
    /// out-of-range sensor's other readings count for less, towards triggers and confidence.
    #[serde(default = "default_unhealthy_weight")]
    pub unhealthy_weight: f64,
}

fn default_unhealthy_weight() -> f64 {
    0.3
}

fn default_radius_m() -> f64 {
    500.0
}

/// Spatial scope of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Evidence from devices near each other joins one incident.
    #[default]
    Area,
    /// One incident per device.
    Device,
}

/// One way to open an incident: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerAlternative {
    /// Requirements, all of which must hold within the window and radius.
    pub all: Vec<Requirement>,
}

/// Evidence from any of `signals`, from at least `min_devices` devices, whose scores add up to at
/// least `min_score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Signal names; any of them counts.
    pub signals: Vec<String>,
    /// Distinct devices needed.
    #[serde(default = "one")]
    pub min_devices: usize,
    /// Sum of evidence scores needed (a camera event's score is the box's confidence, so two
    /// 0.45 events add up where one does not).
    #[serde(default)]
    pub min_score: f64,
}

fn one() -> usize {
    1
}

/// A loaded, cross-checked set of pipelines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineSet {
    /// Signals by name.
    pub signals: BTreeMap<String, SignalConfig>,
    /// Incident rules, highest priority first (ties by kind name, for determinism).
    pub rules: Vec<IncidentRule>,
    /// File each signal / rule came from (for messages).
    pub sources: BTreeMap<String, String>,
}

impl PipelineSet {
    /// Loads every `*.yaml`/`*.yml` in `dir`, reporting every error at once.
    pub fn load_dir(
        dir: &Path,
        profiles: Option<&ProfileSet>,
    ) -> Result<PipelineSet, ConfigErrors> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            ConfigError::new(
                dir.display().to_string(),
                None,
                "",
                format!("cannot read: {e}"),
            )
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
            .collect();
        paths.sort();
        for path in paths {
            match std::fs::read_to_string(&path) {
                Ok(text) => files.push((path.display().to_string(), text)),
                Err(e) => errors.push(ConfigError::new(
                    path.display().to_string(),
                    None,
                    "",
                    format!("cannot read: {e}"),
                )),
            }
        }
        match Self::from_texts(&files, profiles) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(ConfigErrors(errors)),
            Err(ConfigErrors(more)) => {
                errors.extend(more);
                Err(ConfigErrors(errors))
            }
        }
    }

    /// Builds a set from `(file name, YAML text)` pairs.
    pub fn from_texts(
        files: &[(String, String)],
        profiles: Option<&ProfileSet>,
    ) -> Result<PipelineSet, ConfigErrors> {
        let mut errors = Vec::new();
        let mut set = PipelineSet::default();
        let mut texts: BTreeMap<String, &str> = BTreeMap::new();
        for (name, text) in files {
            texts.insert(name.clone(), text);
            let file: PipelineFile = match load_yaml_str(Path::new(name), text) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for (i, signal) in file.signals.into_iter().enumerate() {
                let field = format!("signals[{i}]");
                validate_signal(name, text, &field, &signal, profiles, &mut errors);
                match set.signals.get(&signal.name) {
                    Some(existing) if *existing != signal => {
                        let other = set.sources.get(&signal.name).cloned().unwrap_or_default();
                        errors.push(ConfigError::at_field(
                            name,
                            text,
                            &format!("{field}.name"),
                            format!(
                                "signal `{}` is already defined differently in {other}",
                                signal.name
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        set.sources.insert(signal.name.clone(), name.clone());
                        set.signals.insert(signal.name.clone(), signal);
                    }
                }
            }
            if let Some(rule) = file.incident {
                validate_rule(name, text, &rule, &mut errors);
                if set.rules.iter().any(|r| r.kind == rule.kind) {
                    let other = set.sources.get(&format!("incident:{}", rule.kind));
                    errors.push(ConfigError::at_field(
                        name,
                        text,
                        "incident.kind",
                        format!(
                            "incident kind `{}` is already defined in {}",
                            rule.kind,
                            other.cloned().unwrap_or_default()
                        ),
                    ));
                } else {
                    set.sources
                        .insert(format!("incident:{}", rule.kind), name.clone());
                    set.rules.push(rule);
                }
            }
        }
        // Cross-file checks: every signal a rule names must exist; absorbed kinds must exist.
        let kinds: BTreeSet<String> = set.rules.iter().map(|r| r.kind.clone()).collect();
        for rule in &set.rules {
            let file = set
                .sources
                .get(&format!("incident:{}", rule.kind))
                .cloned()
                .unwrap_or_default();
            let text = texts.get(&file).copied().unwrap_or("");
            for (a, alt) in rule.trigger.iter().enumerate() {
                for (r, req) in alt.all.iter().enumerate() {
                    for s in &req.signals {
                        if !set.signals.contains_key(s) {
                            errors.push(ConfigError::at_field(
                                &file,
                                text,
                                &format!("incident.trigger[{a}].all[{r}].signals"),
                                format!("unknown signal `{s}` (define it under `signals:` in any pipeline file)"),
                            ));
                        }
                    }
                }
            }
            for s in &rule.supporting {
                if !set.signals.contains_key(s) {
                    errors.push(ConfigError::at_field(
                        &file,
                        text,
                        "incident.supporting",
                        format!("unknown signal `{s}`"),
                    ));
                }
            }
            for k in &rule.absorbs {
                if !kinds.contains(k) || *k == rule.kind {
                    errors.push(ConfigError::at_field(
                        &file,
                        text,
                        "incident.absorbs",
                        format!("`{k}` is not another incident kind of this pipeline set"),
                    ));
                }
            }
        }
        set.rules
            .sort_by(|a, b| b.priority.cmp(&a.priority).then(a.kind.cmp(&b.kind)));
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The rule for `kind`.
    pub fn rule(&self, kind: &str) -> Option<&IncidentRule> {
        self.rules.iter().find(|r| r.kind == kind)
    }
}

impl IncidentRule {
    /// Every signal this rule listens to (trigger and supporting).
    pub fn all_signals(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.supporting.iter().map(String::as_str).collect();
        for alt in &self.trigger {
            for req in &alt.all {
                out.extend(req.signals.iter().map(String::as_str));
            }
        }
        out
    }

    /// Hold-off for reopening a cleared incident.
    pub fn reopen_within_secs(&self) -> f64 {
        self.reopen_within_secs.unwrap_or(self.clear_after_secs)
    }
}

fn validate_signal(
    file: &str,
    text: &str,
    field: &str,
    s: &SignalConfig,
    profiles: Option<&ProfileSet>,
    errors: &mut Vec<ConfigError>,
) {
    if s.name.trim().is_empty() || s.name.contains(char::is_whitespace) {
        errors.push(ConfigError::at_field(
            file,
            text,
            &format!("{field}.name"),
            format!(
                "signal name must be non-empty without spaces, got {:?}",
                s.name
            ),
        ));
    }
    if s.profiles.is_empty() {
        errors.push(ConfigError::at_field(
            file,
            text,
            &format!("{field}.profiles"),
            "list at least one profile (or \"*\")",
        ));
    }
    if let Some(p) = profiles {
        for name in &s.profiles {
            if name != "*" && p.get(name).is_none() {
                errors.push(ConfigError::at_field(
                    file,
                    text,
                    &format!("{field}.profiles"),
                    format!(
                        "unknown device profile `{name}` (known: {})",
                        p.names().join(", ")
                    ),
                ));
            } else if name != "*" && s.metric != "*" && !p.metrics(name).contains(&s.metric) {
                errors.push(ConfigError::at_field(
                    file,
                    text,
                    &format!("{field}.metric"),
                    format!("profile `{name}` produces no metric `{}`", s.metric),
                ));
            }
        }
    }
    for (sub, msg) in s.detector.validate() {
        errors.push(ConfigError::at_field(
            file,
            text,
            &format!("{field}.detector.{sub}"),
            msg,
        ));
    }
}

fn validate_rule(file: &str, text: &str, r: &IncidentRule, errors: &mut Vec<ConfigError>) {
    let mut err = |f: &str, m: String| {
        errors.push(ConfigError::at_field(
            file,
            text,
            &format!("incident.{f}"),
            m,
        ));
    };
    if r.kind.trim().is_empty() || !r.kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        err(
            "kind",
            format!("kind must be lower_snake_case, got {:?}", r.kind),
        );
    }
    if !(r.radius_m > 0.0 && r.radius_m.is_finite()) {
        err("radius_m", format!("must be > 0, got {}", r.radius_m));
    }
    if !(r.window_secs > 0.0 && r.window_secs.is_finite()) {
        err("window_secs", format!("must be > 0, got {}", r.window_secs));
    }
    if !(r.clear_after_secs > 0.0 && r.clear_after_secs.is_finite()) {
        err(
            "clear_after_secs",
            format!("must be > 0, got {}", r.clear_after_secs),
        );
    }
    if let Some(v) = r.reopen_within_secs {
        if !(v >= 0.0 && v.is_finite()) {
            err("reopen_within_secs", format!("must be >= 0, got {v}"));
        }
    }
    if !(0.0..=1.0).contains(&r.unhealthy_weight) {
        err(
            "unhealthy_weight",
            format!("must be in [0, 1], got {}", r.unhealthy_weight),
        );
    }
    if r.trigger.is_empty() {
        err("trigger", "needs at least one alternative".to_string());
    }
    for (a, alt) in r.trigger.iter().enumerate() {
        if alt.all.is_empty() {
            err(
                &format!("trigger[{a}].all"),
                "needs at least one requirement".to_string(),
            );
        }
        for (i, req) in alt.all.iter().enumerate() {
            if req.signals.is_empty() {
                err(
                    &format!("trigger[{a}].all[{i}].signals"),
                    "name at least one signal".into(),
                );
            }
            if req.min_devices == 0 {
                err(
                    &format!("trigger[{a}].all[{i}].min_devices"),
                    "must be >= 1".into(),
                );
            }
            if !(req.min_score >= 0.0 && req.min_score.is_finite()) {
                err(
                    &format!("trigger[{a}].all[{i}].min_score"),
                    format!("must be >= 0, got {}", req.min_score),
                );
            }
        }
    }
}
