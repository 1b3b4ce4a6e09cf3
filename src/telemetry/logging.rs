//! Tracing setup: key=value logs on stderr, filtered by `RUST_LOG` or the `-v` count.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::TelemetryError;

/// Installs the global tracing subscriber.
///
/// `RUST_LOG` wins when set (e.g. `citybrain=debug,rumqttc=warn`); otherwise `verbosity` picks
/// the level: 0 → info, 1 → debug, 2 or more → trace. Logs go to stderr so stdout stays clean for
/// NDJSON output (`replay`). Fields print as `key=value`, colour only on a terminal.
pub fn init_tracing(verbosity: u8) -> Result<(), TelemetryError> {
    // The embedded broker logs every connect and subscribe at INFO: keep it to warnings unless
    // asked for more.
    let default_level = match verbosity {
        0 => "info,rumqttd=warn",
        1 => "debug,rumqttd=info",
        _ => "trace",
    };
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| TelemetryError::LogFilter {
                spec,
                reason: e.to_string(),
            })?
        }
        _ => EnvFilter::new(default_level),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))
}
