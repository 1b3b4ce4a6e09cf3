//! A real VictoriaMetrics (Debian's `victoria-metrics`, which accepts the InfluxDB v2 write API)
//! on a free `127.0.0.1` port, with its data directory in a temp dir; killed when dropped.
//! A missing binary fails the test with the install command: these tests never skip.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One series as `/api/v1/export` returns it (blocks of the same series merged).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Series {
    /// `__name__` and every tag.
    pub(crate) labels: BTreeMap<String, String>,
    /// (timestamp ms, value), sorted by time.
    pub(crate) samples: Vec<(i64, f64)>,
}

/// A running (or stopped, between [`Vm::stop`] and [`Vm::start_again`]) VictoriaMetrics.
pub(crate) struct Vm {
    /// Port on 127.0.0.1.
    pub(crate) port: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("victoria-metrics"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!("victoria-metrics not found on PATH: apt-get install -y victoria-metrics"),
    }
}

impl Vm {
    /// Starts VictoriaMetrics on `port` with its data in `dir/data`. Deduplication at 1 ms
    /// makes a re-sent sample (a write whose answer was lost when the server stopped) replace
    /// the first copy, as InfluxDB does for the same series and time.
    pub(crate) fn start(dir: &Path, port: u16) -> Vm {
        let mut vm = Vm {
            port,
            data: dir.join("data"),
            log: dir.join("victoria-metrics.log"),
            child: None,
        };
        vm.start_again();
        vm
    }

    /// Base URL.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port and data directory; waits for `GET /health`.
    pub(crate) fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(binary())
            .arg(format!("-storageDataPath={}", self.data.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .args(["-retentionPeriod=100y", "-search.latencyOffset=0s"])
            .args(["-search.disableCache", "-dedup.minScrapeInterval=1ms"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn victoria-metrics");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("victoria-metrics exited ({status}): {}", self.log_text());
            }
            if let Ok(mut resp) = ureq::get(format!("{}/health", self.url())).call() {
                if resp.body_mut().read_to_string().unwrap_or_default().trim() == "OK" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("victoria-metrics not healthy in 15 s: {}", self.log_text());
    }

    /// Stops it gracefully (SIGTERM, so what it acknowledged is flushed to disk), like a
    /// maintenance restart; SIGKILL only if it does not exit in 20 s.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Every series matching the selector, e.g. `{__name__=~"reading_.*"}`.
    pub(crate) fn export(&self, selector: &str) -> Vec<Series> {
        let mut resp = ureq::post(format!("{}/api/v1/export", self.url()))
            .send_form([("match[]", selector)])
            .expect("export request");
        let text = resp
            .body_mut()
            .with_config()
            .limit(512 << 20)
            .read_to_string()
            .expect("export body");
        let mut merged: BTreeMap<String, Series> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("export line is JSON");
            let labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .expect("metric object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let s = merged
                .entry(format!("{labels:?}"))
                .or_insert_with(|| Series {
                    labels,
                    samples: Vec::new(),
                });
            let (ts, vals) = (v["timestamps"].as_array(), v["values"].as_array());
            for (t, x) in ts.into_iter().flatten().zip(vals.into_iter().flatten()) {
                s.samples
                    .push((t.as_i64().unwrap_or(-1), x.as_f64().unwrap_or(f64::NAN)));
            }
        }
        let mut out: Vec<Series> = merged.into_values().collect();
        for s in &mut out {
            s.samples.sort_by_key(|(t, _)| *t);
        }
        out
    }

    /// Samples in all series matching `selector`.
    pub(crate) fn count(&self, selector: &str) -> usize {
        self.export(selector).iter().map(|s| s.samples.len()).sum()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `cond` every 50 ms until it holds or `secs` pass; returns whether it held.
pub(crate) fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
