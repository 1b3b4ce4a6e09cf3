//! Test support: a real mosquitto broker on a free `127.0.0.1` port, started from a temporary
//! config and killed when dropped.
//!
//! Used by this crate's unit tests and by the integration tests in `tests/`, so it is an ordinary
//! public module. A missing `mosquitto` binary is an error telling how to install it (tests must
//! fail, never skip). The config disables the per-client queue limit (`max_queued_messages 0`) so
//! "nothing lost" tests are not defeated by mosquitto's default of 1000 (see the shared
//! dependency notes) and keeps no persistence, so a restart forgets every session.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long to wait for the broker to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A running mosquitto; killed (and its temp dir removed) on drop.
pub struct Mosquitto {
    /// Port it listens on, on 127.0.0.1.
    pub port: u16,
    binary: PathBuf,
    dir: PathBuf,
    extra: String,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts mosquitto on a free port and waits until it accepts connections.
    pub fn start() -> Result<Mosquitto, String> {
        Mosquitto::start_with("")
    }

    /// Like [`Mosquitto::start`], with `listener_options` (mosquitto.conf lines, e.g. `cafile`,
    /// `certfile`, `keyfile`, `require_certificate true`) added to the listener. The broker runs
    /// as the current user (`user root` when root), so files in any temp dir are readable.
    pub fn start_with(listener_options: &str) -> Result<Mosquitto, String> {
        let binary = find_binary()?;
        let dir = unique_temp_dir()?;
        let mut last_err = String::new();
        // A free port can be taken by someone else between probing and mosquitto binding it.
        for _ in 0..3 {
            let port = free_port()?;
            let mut m = Mosquitto {
                port,
                binary: binary.clone(),
                dir: dir.clone(),
                extra: listener_options.to_string(),
                child: None,
            };
            match m.spawn() {
                Ok(()) => return Ok(m),
                Err(e) => {
                    last_err = e;
                    m.dir = PathBuf::new(); // keep the dir for the next attempt
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_err)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the broker (it stays stopped until [`Mosquitto::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the broker if running and starts it again on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The old socket may linger for a moment.
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "mosquitto restart retry");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let conf = self.dir.join("mosquitto.conf");
        let log = self.dir.join("mosquitto.log");
        let text = format!(
            "user root\nper_listener_settings false\nallow_anonymous true\n\
             max_queued_messages 0\npersistence false\nlog_dest stderr\n\
             listener {} 127.0.0.1\n{}\n",
            self.port, self.extra
        );
        fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        let log_file =
            fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "mosquitto exited ({status}) on port {}: {}",
                    self.port,
                    fs::read_to_string(&log).unwrap_or_default().trim()
                ));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "mosquitto did not listen on port {} within 5 s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn find_binary() -> Result<PathBuf, String> {
    let mut candidates = vec![PathBuf::from("/usr/sbin/mosquitto")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|p| p.join("mosquitto")));
    }
    candidates.into_iter().find(|p| is_file(p)).ok_or_else(|| {
        "mosquitto is not installed (needed by this test): apt-get install -y mosquitto".to_string()
    })
}

fn is_file(p: &Path) -> bool {
    p.metadata().map(|m| m.is_file()).unwrap_or(false)
}

fn unique_temp_dir() -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("citybrain-mosquitto-{}-{n}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_restarts_and_stops_on_drop() {
        let mut m = Mosquitto::start().unwrap_or_else(|e| panic!("{e}"));
        let addr = m.addr();
        assert!(TcpStream::connect(addr).is_ok());
        m.stop();
        assert!(
            TcpStream::connect(addr).is_err(),
            "stopped broker still accepts"
        );
        m.restart().unwrap_or_else(|e| panic!("{e}"));
        assert!(TcpStream::connect(addr).is_ok());
        drop(m);
        assert!(
            TcpStream::connect(addr).is_err(),
            "dropped broker still accepts"
        );
    }
}
