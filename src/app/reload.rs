//! Hot reload from the files: a watcher polls `pipelines/` and `device-profiles/`, and on any
//! change validates the whole new set (the same checks as `citybrain check`) and swaps it into
//! the running engine. An invalid file is reported with its file, line and field, and the
//! definitions already running stay in force.
//!
//! Polling (file name, size and modification time, once a second) rather than inotify: it works
//! the same on every filesystem, including bind mounts and network shares where inotify misses
//! changes, and one stat per file per second costs nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

use super::engine::Reloader;
use crate::config::pipeline::PipelineSet;
use crate::config::profile::ProfileSet;
use crate::config::registers::Registry;
use crate::config::ConfigErrors;

/// What the last reload attempt did (served to engineers by the API).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Version running now (0 = as started).
    pub version: u64,
    /// Problems of the last rejected attempt, one `file:line: field: message` each; empty after
    /// a successful reload.
    pub last_errors: Vec<String>,
    /// Number of successful reloads.
    pub reloads: u64,
    /// Number of rejected attempts.
    pub rejected: u64,
}

/// Reloads definitions from directories into a running engine.
#[derive(Clone)]
pub struct DefinitionsSource {
    /// Pipeline directory.
    pub pipelines: PathBuf,
    /// Device-profile directory.
    pub profiles: PathBuf,
    /// The register the pipelines are checked against (devices' profiles must exist).
    pub registry: Arc<Registry>,
    reloader: Reloader,
    status: Arc<Mutex<ReloadStatus>>,
}

impl DefinitionsSource {
    /// A source for `reloader`.
    pub fn new(
        pipelines: PathBuf,
        profiles: PathBuf,
        registry: Arc<Registry>,
        reloader: Reloader,
    ) -> Self {
        DefinitionsSource {
            pipelines,
            profiles,
            registry,
            reloader,
            status: Arc::default(),
        }
    }

    /// Status of the last attempt.
    pub fn status(&self) -> ReloadStatus {
        self.status.lock().clone()
    }

    /// Loads and validates both directories; swaps them in when valid. Returns the new version
    /// or every problem found.
    pub fn reload_now(&self) -> Result<u64, ConfigErrors> {
        match load(&self.pipelines, &self.profiles, &self.registry) {
            Ok((pipelines, profiles)) => {
                let version = self
                    .reloader
                    .reload(Arc::new(pipelines), Arc::new(profiles));
                let mut st = self.status.lock();
                st.version = version;
                st.reloads += 1;
                st.last_errors.clear();
                tracing::info!(version, "pipelines and device profiles reloaded");
                Ok(version)
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(problem = %e, "reload rejected; the running definitions stay");
                }
                let mut st = self.status.lock();
                st.rejected += 1;
                st.last_errors = errors.0.iter().map(ToString::to_string).collect();
                Err(errors)
            }
        }
    }

    /// Starts polling the directories every `every` until `shutdown` is true, reloading on
    /// change. The files as they are now are the baseline (taken before this returns, so an
    /// edit made right after is seen as a change).
    pub fn spawn_watch(&self, every: Duration, shutdown: tokio::sync::watch::Receiver<bool>) {
        let seen = fingerprint(&[&self.pipelines, &self.profiles]);
        tokio::spawn(self.clone().watch(seen, every, shutdown));
    }

    async fn watch(
        self,
        mut seen: Fingerprint,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|v| *v) => return,
            }
            let now = fingerprint(&[&self.pipelines, &self.profiles]);
            if now != seen {
                seen = now;
                let _ = self.reload_now();
            }
        }
    }
}

impl std::fmt::Debug for DefinitionsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefinitionsSource")
            .field("pipelines", &self.pipelines)
            .field("profiles", &self.profiles)
            .finish_non_exhaustive()
    }
}

impl crate::api::pipelines::DefinitionsControl for DefinitionsSource {
    fn reload_now(&self) -> Result<u64, Vec<String>> {
        DefinitionsSource::reload_now(self)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    fn describe(&self) -> crate::api::pipelines::DefinitionsView {
        let current = self.reloader.current();
        let status = self.status();
        crate::api::pipelines::DefinitionsView {
            version: current.number,
            kinds: current
                .pipelines
                .rules
                .iter()
                .map(|r| r.kind.clone())
                .collect(),
            signals: current.pipelines.signals.keys().cloned().collect(),
            reloads: status.reloads,
            rejected: status.rejected,
            last_errors: status.last_errors,
        }
    }
}

/// Loads profiles and pipelines and checks them against the register.
pub(super) fn load(
    pipelines: &Path,
    profiles: &Path,
    registry: &Registry,
) -> Result<(PipelineSet, ProfileSet), ConfigErrors> {
    let profile_set = ProfileSet::load_dir(profiles)?;
    let pipeline_set = PipelineSet::load_dir(pipelines, Some(&profile_set))?;
    let missing: Vec<_> = registry
        .devices
        .values()
        .filter(|d| profile_set.get(&d.profile).is_none())
        .map(|d| {
            crate::config::ConfigError::new(
                profiles.display().to_string(),
                None,
                "",
                format!(
                    "device {} uses profile `{}`, which is no longer defined",
                    d.device_id, d.profile
                ),
            )
        })
        .collect();
    if missing.is_empty() {
        Ok((pipeline_set, profile_set))
    } else {
        Err(ConfigErrors(missing))
    }
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(dirs: &[&Path]) -> Fingerprint {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if let Ok(meta) = e.metadata() {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}
