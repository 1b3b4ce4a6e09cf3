//! Wiring for the commands: load and validate definitions → build components → run → report.
//! `anyhow` lives here and in `main.rs` only; everything below returns typed errors.

mod check;
mod engine;
mod live;
mod reload;
mod replay;
mod tokens;
mod tools;

use std::path::Path;
use std::sync::Arc;

pub use check::{check, check_all, CheckArgs, CheckReport};
pub use engine::{CrewFeed, Engine, FinishedEngine, Reloader};
pub use live::{demo, load_tokens, run, DemoArgs, Live, LiveOptions};
pub use reload::{DefinitionsSource, ReloadStatus};
pub use replay::{replay, replay_many, replay_recording, ReplayArgs, ReplayOutcome, ReplaySet};
pub use tokens::{token, TokenArgs, TokenCommand};
pub use tools::{record, simulate, RecordArgs, SimulateArgs};

use crate::config::pipeline::PipelineSet;
use crate::config::profile::ProfileSet;
use crate::config::registers::Registry;
use crate::config::ConfigErrors;
use crate::dataflow::Definitions;

/// Loads profiles, pipelines and registers, collecting every error from every file.
pub fn load_definitions(
    pipelines: &Path,
    profiles: &Path,
    devices: &Path,
    crews: &Path,
) -> Result<Definitions, ConfigErrors> {
    let mut errors = Vec::new();
    let profile_set = match ProfileSet::load_dir(profiles) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    let pipeline_set = match PipelineSet::load_dir(pipelines, profile_set.as_ref()) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    let registry = match Registry::load(devices, crews, profile_set.as_ref()) {
        Ok(r) => Some(r),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    match (profile_set, pipeline_set, registry) {
        (Some(profiles), Some(pipelines), Some(registry)) if errors.is_empty() => Ok(Definitions {
            pipelines: Arc::new(pipelines),
            profiles: Arc::new(profiles),
            registry: Arc::new(registry),
            open_incidents: Vec::new(),
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Formats config errors one per line for the terminal.
pub(crate) fn config_failure(errors: &ConfigErrors) -> anyhow::Error {
    anyhow::anyhow!(
        "invalid configuration ({} problem(s)):\n{errors}",
        errors.0.len()
    )
}
