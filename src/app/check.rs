//! `citybrain check`: validates the app config, device profiles, pipelines and registers, and
//! prints every problem with its file, line and field.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::app::AppConfig;
use crate::config::pipeline::PipelineSet;
use crate::config::profile::ProfileSet;
use crate::config::registers::Registry;
use crate::config::ConfigError;

/// Arguments of `citybrain check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// App config to validate (its `paths:` then name the files below).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Pipeline directory.
    #[arg(long, default_value = "pipelines")]
    pub pipelines: PathBuf,
    /// Device-profile directory.
    #[arg(long, default_value = "device-profiles")]
    pub profiles: PathBuf,
    /// Device register.
    #[arg(long, default_value = "registers/devices.csv")]
    pub devices: PathBuf,
    /// Crew register.
    #[arg(long, default_value = "registers/crews.csv")]
    pub crews: PathBuf,
}

/// Everything `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Problems, each naming file, line and field.
    pub errors: Vec<ConfigError>,
    /// One line per validated part ("5 device profiles", ...).
    pub summary: Vec<String>,
}

/// Validates everything `args` names.
pub fn check_all(args: &CheckArgs) -> CheckReport {
    let mut report = CheckReport::default();
    let mut args = args.clone();
    if let Some(path) = &args.config {
        match AppConfig::load(path) {
            Ok(cfg) => {
                report.summary.push(format!("config {} ok", path.display()));
                args.pipelines = cfg.paths.pipelines;
                args.profiles = cfg.paths.device_profiles;
                args.devices = cfg.paths.devices;
                args.crews = cfg.paths.crews;
            }
            Err(e) => report.errors.extend(e.0),
        }
    }
    let profiles = match ProfileSet::load_dir(&args.profiles) {
        Ok(p) => {
            report
                .summary
                .push(format!("{} device profiles ok", p.names().len()));
            Some(p)
        }
        Err(e) => {
            report.errors.extend(e.0);
            None
        }
    };
    match PipelineSet::load_dir(&args.pipelines, profiles.as_ref()) {
        Ok(p) => report.summary.push(format!(
            "{} signals and {} incident rules ok ({})",
            p.signals.len(),
            p.rules.len(),
            p.rules
                .iter()
                .map(|r| r.kind.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(e) => report.errors.extend(e.0),
    }
    match Registry::load(&args.devices, &args.crews, profiles.as_ref()) {
        Ok(r) => report.summary.push(format!(
            "{} devices and {} crews registered ok",
            r.devices.len(),
            r.crews.len()
        )),
        Err(e) => report.errors.extend(e.0),
    }
    report
}

/// `citybrain check`.
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = check_all(&args);
    for line in &report.summary {
        println!("ok: {line}");
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if report.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} problem(s) found", report.errors.len());
        Ok(ExitCode::FAILURE)
    }
}
