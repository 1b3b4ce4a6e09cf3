//! The app config for `citybrain run --config FILE` (YAML): broker, API, file locations and
//! event-time settings. Relative paths are resolved against the config file's directory.
//!
//! ```yaml
//! mqtt: {host: broker.city.local, port: 8883, username: citybrain, password: "...",
//!        tls: {ca_file: ca.pem}}
//! api: {listen: "0.0.0.0:8080", tokens_file: tokens.yaml}
//! paths: {pipelines: pipelines, device_profiles: device-profiles,
//!         devices: registers/devices.csv, crews: registers/crews.csv,
//!         dead_letters: /var/lib/citybrain/dead-letters.ndjson}
//! dataflow: {workers: 2, allowed_lateness_secs: 300, max_future_secs: 600}
//! state: {dir: /var/lib/citybrain/state}
//! dispatch: {answer_timeout_secs: 120,
//!            policies: [{kind: water_main_burst, min_severity: high, mode: automatic,
//!                        skills: [valve]}]}
//! webhooks: [{name: ops-bridge, url: "https://ops.city.local/hooks/citybrain",
//!             secret: "...", events: [incident, escalation]}]
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{load_yaml_str, ConfigError, ConfigErrors};
use crate::dataflow::DataflowConfig;
use crate::incident::dispatch::DispatchConfig;
use crate::ingest::mqtt::MqttConfig;
use crate::sink::influx::InfluxConfig;
use crate::sink::webhook::WebhookConfig;

/// Everything `run` needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The city's broker.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// The dashboard API.
    #[serde(default)]
    pub api: ApiConfig,
    /// Where definitions and registers live.
    #[serde(default)]
    pub paths: PathsConfig,
    /// Event-time settings.
    #[serde(default)]
    pub dataflow: DataflowConfig,
    /// InfluxDB sink for readings, anomalies and incident changes; off when absent.
    #[serde(default)]
    pub influx: Option<InfluxConfig>,
    /// Durable state (incidents, their history, dispatch records).
    #[serde(default)]
    pub state: StateConfig,
    /// Crew dispatch: policies per incident kind and severity, answer timeout
    /// (see `docs/dispatch.md`; absent: the shipped defaults).
    #[serde(default)]
    pub dispatch: DispatchConfig,
    /// Signed webhooks that receive incident, dispatch and escalation events.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// Where durable state lives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Directory of the embedded incident store (`citybrain.redb`, created if missing; one
    /// process at a time). Without it incidents live in memory only and are lost on restart.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// Dashboard API settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// YAML list of `{name, role, sha256}` token entries (tokens are stored hashed only).
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Map tiles drawn under the command-centre page's map, as a `{z}/{x}/{y}` URL template
    /// (e.g. a city GIS tile server). Off by default: the map is drawn from coordinates only.
    #[serde(default)]
    pub tile_url: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_listen(),
            tokens_file: None,
            tile_url: None,
        }
    }
}

/// File locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// Directory of pipeline YAML files.
    #[serde(default = "default_pipelines")]
    pub pipelines: PathBuf,
    /// Directory of device-profile YAML files.
    #[serde(default = "default_profiles")]
    pub device_profiles: PathBuf,
    /// Device register (`devices.csv`).
    #[serde(default = "default_devices")]
    pub devices: PathBuf,
    /// Crew register (`crews.csv`).
    #[serde(default = "default_crews")]
    pub crews: PathBuf,
    /// NDJSON file the dead letters are appended to (none: kept in memory only).
    #[serde(default)]
    pub dead_letters: Option<PathBuf>,
}

fn default_pipelines() -> PathBuf {
    PathBuf::from("pipelines")
}
fn default_profiles() -> PathBuf {
    PathBuf::from("device-profiles")
}
fn default_devices() -> PathBuf {
    PathBuf::from("devices.csv")
}
fn default_crews() -> PathBuf {
    PathBuf::from("crews.csv")
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            pipelines: default_pipelines(),
            device_profiles: default_profiles(),
            devices: default_devices(),
            crews: default_crews(),
            dead_letters: None,
        }
    }
}

impl AppConfig {
    /// Loads and validates `path`; relative paths inside become relative to its directory.
    pub fn load(path: &Path) -> Result<AppConfig, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&name, None, "", format!("cannot read: {e}")))?;
        let mut cfg: AppConfig = load_yaml_str(path, &text)?;
        let mut errors = Vec::new();
        for (field, msg) in cfg.mqtt.validate() {
            errors.push(ConfigError::at_field(
                &name,
                &text,
                &format!("mqtt.{field}"),
                msg,
            ));
        }
        for (field, msg) in cfg.dataflow.validate() {
            errors.push(ConfigError::at_field(
                &name,
                &text,
                &format!("dataflow.{field}"),
                msg,
            ));
        }
        for (field, msg) in cfg
            .influx
            .as_ref()
            .map(InfluxConfig::validate)
            .unwrap_or_default()
        {
            errors.push(ConfigError::at_field(
                &name,
                &text,
                &format!("influx.{field}"),
                msg,
            ));
        }
        let mut problems: Vec<(String, String)> = (cfg.dispatch.validate().into_iter())
            .map(|(f, m)| (format!("dispatch.{f}"), m))
            .collect();
        for (i, hook) in cfg.webhooks.iter().enumerate() {
            let at = |f: &str| format!("webhooks[{i}].{f}");
            problems.extend(hook.validate().into_iter().map(|(f, m)| (at(&f), m)));
            if cfg.webhooks[..i].iter().any(|h| h.name == hook.name) {
                problems.push((at("name"), format!("{:?} is used twice", hook.name)));
            }
        }
        for (field, msg) in problems {
            errors.push(ConfigError::at_field(&name, &text, &field, msg));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut cfg.paths.pipelines);
        fix(&mut cfg.paths.device_profiles);
        fix(&mut cfg.paths.devices);
        fix(&mut cfg.paths.crews);
        if let Some(p) = cfg.paths.dead_letters.as_mut() {
            fix(p);
        }
        if let Some(influx) = cfg.influx.as_mut() {
            fix(&mut influx.spool_dir);
        }
        if let Some(p) = cfg.api.tokens_file.as_mut() {
            fix(p);
        }
        if let Some(p) = cfg.state.dir.as_mut() {
            fix(p);
        }
        if let Some(tls) = cfg.mqtt.tls.as_mut() {
            fix(&mut tls.ca_file);
            if let Some(p) = tls.client_cert.as_mut() {
                fix(p);
            }
            if let Some(p) = tls.client_key.as_mut() {
                fix(p);
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("citybrain.yaml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn relative_paths_resolve_against_the_config_file() {
        let (dir, path) = write("paths: {devices: regs/devices.csv}\n");
        let cfg = AppConfig::load(&path).expect("loads");
        assert_eq!(cfg.paths.devices, dir.path().join("regs/devices.csv"));
        assert_eq!(cfg.mqtt.port, 1883);
    }

    #[test]
    fn invalid_values_name_file_line_and_field() {
        let (_dir, path) =
            write("mqtt:\n  host: x\n  keep_alive_secs: 0\ndataflow:\n  workers: 0\n");
        let errs = AppConfig::load(&path).expect_err("invalid").0;
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            errs.iter()
                .any(|e| e.field == "mqtt.keep_alive_secs" && e.line == Some(3)),
            "{text:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.field == "dataflow.workers" && e.line == Some(5)),
            "{text:?}"
        );
    }

    #[test]
    fn unknown_field_is_rejected_with_its_line() {
        let (_dir, path) = write("api:\n  listen: 127.0.0.1:9\n  port: 5\n");
        let errs = AppConfig::load(&path).expect_err("invalid").0;
        assert_eq!(errs[0].line, Some(3), "{}", errs[0]);
        assert_eq!(errs[0].field, "port");
    }
}
