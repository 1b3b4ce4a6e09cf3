//! The NAB ensemble configuration (`nab/ensemble.yaml`): which detectors of [`crate::detect`]
//! take part, what each is fed, and how their evidence is turned into one anomaly score.
//!
//! Strict like every citybrain config: unknown fields are errors, and [`EnsembleConfig::load`]
//! reports every problem at once with file, line and field path.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{load_yaml_str, ConfigError, ConfigErrors};
use crate::detect::DetectorConfig;

/// The configuration shipped in the repository, built into the binary (`--config` overrides).
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../../nab/ensemble.yaml");

/// Name reported for the built-in configuration in errors.
pub const DEFAULT_CONFIG_NAME: &str = "nab/ensemble.yaml (built in)";

fn d_escalation_rows() -> usize {
    100
}
fn d_warmup_graded() -> usize {
    200
}

/// The whole ensemble: one configuration for every stream.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    /// The detectors taking part (at least one; names unique).
    pub members: Vec<MemberConfig>,
    /// A reading's score is reported only if it beats the combined evidence of each of the
    /// previous `escalation_rows` readings (else 0), so one event gives one alarm, not a run of
    /// them. 0 reports every score. Default 100.
    #[serde(default = "d_escalation_rows")]
    pub escalation_rows: usize,
}

/// What a member detector is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The reading's value.
    #[default]
    Value,
    /// The change since the previous reading (the first reading is not graded).
    Diff,
}

/// A CUSUM over a member's trigger ratios: `s = max(0, s + min(r, clip) − k)`, so a run of
/// moderately unusual readings adds up while isolated ones are forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SustainConfig {
    /// Slack, in trigger ratios: readings graded below it drain the sum. >= 0.
    pub k: f64,
    /// Most one reading can add, in trigger ratios (one wild outlier is not a shift). > 0.
    pub clip: f64,
}

/// One detector of the ensemble.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Name, for errors and reports.
    pub name: String,
    /// The detector (`spike` or `seasonal`: the detectors that grade every reading).
    pub detector: DetectorConfig,
    /// `value` (default) or `diff`.
    #[serde(default)]
    pub input: Input,
    /// Accumulate the evidence over runs of readings instead of judging each alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sustain: Option<SustainConfig>,
    /// Graded readings the member only learns from before its novelty counts (its record of
    /// past evidence needs some history to mean anything). Default 200.
    #[serde(default = "d_warmup_graded")]
    pub warmup_graded: usize,
}

impl EnsembleConfig {
    /// Loads and validates a configuration file; `None` loads the built-in one.
    pub fn load(path: Option<&Path>) -> Result<EnsembleConfig, ConfigErrors> {
        match path {
            None => Self::from_yaml(Path::new(DEFAULT_CONFIG_NAME), DEFAULT_CONFIG_YAML),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ConfigError::new(
                        p.display().to_string(),
                        None,
                        "",
                        format!("cannot read: {e}"),
                    )
                })?;
                Self::from_yaml(p, &text)
            }
        }
    }

    /// Parses and validates YAML text; `file` names it in errors.
    pub fn from_yaml(file: &Path, text: &str) -> Result<EnsembleConfig, ConfigErrors> {
        let cfg: EnsembleConfig = load_yaml_str(file, text)?;
        let name = file.display().to_string();
        let errors: Vec<ConfigError> = cfg
            .problems()
            .into_iter()
            .map(|(field, msg)| ConfigError::at_field(&name, text, &field, msg))
            .collect();
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Every problem as (field path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.members.is_empty() {
            p.push(("members".into(), "at least one member is required".into()));
        }
        let mut names = BTreeSet::new();
        for (i, m) in self.members.iter().enumerate() {
            let at = format!("members[{i}]");
            if m.name.trim().is_empty() {
                p.push((format!("{at}.name"), "must not be empty".into()));
            } else if !names.insert(m.name.as_str()) {
                p.push((
                    format!("{at}.name"),
                    format!("duplicate member `{}`", m.name),
                ));
            }
            if !matches!(
                m.detector,
                DetectorConfig::Spike(_) | DetectorConfig::Seasonal(_)
            ) {
                p.push((
                    format!("{at}.detector.type"),
                    format!(
                        "`{}` does not grade every reading; use `spike` or `seasonal`",
                        m.detector.type_name()
                    ),
                ));
            }
            for (sub, msg) in m.detector.validate() {
                p.push((format!("{at}.detector.{sub}"), msg));
            }
            if let Some(s) = m.sustain {
                if !(s.k.is_finite() && s.k >= 0.0) {
                    p.push((
                        format!("{at}.sustain.k"),
                        format!("must be >= 0, got {}", s.k),
                    ));
                }
                if !(s.clip.is_finite() && s.clip > 0.0) {
                    p.push((
                        format!("{at}.sustain.clip"),
                        format!("must be > 0, got {}", s.clip),
                    ));
                }
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_is_valid() {
        let cfg = EnsembleConfig::load(None).expect("built-in config loads");
        assert!(cfg.members.len() >= 2, "{cfg:?}");
        assert!(cfg.members.iter().any(|m| m.input == Input::Diff));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "members:\n  - name: a\n    detector: {type: spike, threshold: -1}\n  - name: a\n    detector: {type: cusum}\n    sustain: {k: -1, clip: 0}\n";
        let err = EnsembleConfig::from_yaml(Path::new("e.yaml"), text).expect_err("invalid");
        let text_err = err.to_string();
        for needle in [
            "members[0].detector.threshold",
            "members[1].name: duplicate member `a`",
            "members[1].detector.type",
            "members[1].sustain.k",
            "members[1].sustain.clip",
        ] {
            assert!(
                text_err.contains(needle),
                "missing {needle} in:\n{text_err}"
            );
        }
        assert!(err.0.iter().all(|e| e.file == "e.yaml"));
        assert_eq!(err.0[1].line, Some(4), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = "members: []\nescalation: 3\n";
        let err = EnsembleConfig::from_yaml(Path::new("e.yaml"), text).expect_err("invalid");
        assert!(err.to_string().contains("escalation"), "{err}");
    }
}
