//! The compose stack (`docker-compose.yml`, `Dockerfile`, `deploy/`) is consistent, as far as a
//! machine without a Docker engine can tell:
//! - `docker-compose config` (Debian's docker-compose, the Compose file validator) accepts it;
//! - the services exist, every build context, Dockerfile and bind-mounted path exists in the
//!   repository, named volumes are declared, published ports do not collide;
//! - every `COPY` source of the Dockerfile exists and is not excluded by `.dockerignore`;
//! - the citybrain config, laid out as the container sees it (the image's `COPY`s plus the
//!   compose mounts under `/etc/citybrain`), passes `citybrain check --config`;
//! - `deploy/prometheus/prometheus.yml` passes `promtool check config` and scrapes the
//!   citybrain service on its API port; Grafana's provisioning points at mounted dashboards
//!   and at the compose services; InfluxDB's org, bucket and token agree everywhere;
//! - the mounted registers are the simulated city the `simulator` service publishes.
//!
//! Images are not pulled or built and nothing is started. Fails (never skips) when a tool is
//! missing: `apt-get install -y --no-install-recommends docker-compose prometheus`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use citybrain::model::EventTime;
use citybrain::sim::{write_city, SimOptions};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(&repo().join(rel))).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    let s = &c["services"][name];
    assert!(s.is_object(), "docker-compose.yml has no service {name:?}");
    s
}

/// Runs a tool; panics with the install command when it is missing.
fn run(program: &str, args: &[&str], install: &str) -> (bool, String) {
    match Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
    {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => panic!("{program} not runnable ({e}): apt-get install -y {install}"),
    }
}

/// `(host source, container target)` of a service's bind mounts (`./x:/y[:ro]`).
fn bind_mounts(s: &Value) -> Vec<(PathBuf, String)> {
    s["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|v| v.starts_with("./") || v.starts_with('/'))
        .map(|v| {
            let mut parts = v.split(':');
            let src = parts.next().unwrap_or_default();
            let dst = parts.next().unwrap_or_default().to_string();
            (repo().join(src), dst)
        })
        .collect()
}

#[test]
fn docker_compose_accepts_the_file() {
    let (ok, out) = run(
        "docker-compose",
        &["--file", "docker-compose.yml", "config", "--quiet"],
        "--no-install-recommends docker-compose",
    );
    assert!(ok, "docker-compose config rejected the file:\n{out}");
    let (ok, out) = run(
        "docker-compose",
        &["--file", "docker-compose.yml", "config", "--services"],
        "--no-install-recommends docker-compose",
    );
    assert!(ok, "{out}");
    let services: BTreeSet<&str> = out.lines().map(str::trim).collect();
    for s in [
        "mosquitto",
        "influxdb",
        "prometheus",
        "grafana",
        "citybrain",
        "simulator",
    ] {
        assert!(
            services.contains(s),
            "docker-compose sees no {s}: {services:?}"
        );
    }
}

#[test]
fn paths_volumes_and_ports_exist_and_do_not_collide() {
    let c = compose();
    let declared: BTreeSet<String> = c["volumes"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut ports: BTreeMap<String, String> = BTreeMap::new();
    for (name, s) in c["services"].as_object().expect("services") {
        if let Some(ctx) = s["build"]["context"].as_str() {
            let dockerfile = s["build"]["dockerfile"].as_str().unwrap_or("Dockerfile");
            if !repo().join(ctx).join(dockerfile).is_file() {
                problems.push(format!("{name}: no {dockerfile} in build context {ctx}"));
            }
        }
        for v in s["volumes"].as_array().into_iter().flatten() {
            let v = v.as_str().unwrap_or_default();
            let src = v.split(':').next().unwrap_or_default();
            let bind = src.starts_with("./") || src.starts_with('/');
            if bind && !repo().join(src).exists() {
                problems.push(format!("{name}: mounted path {src} does not exist"));
            }
            if !bind && !declared.contains(src) {
                problems.push(format!("{name}: volume {src} is not declared"));
            }
        }
        for p in s["ports"].as_array().into_iter().flatten() {
            let p = p.as_str().unwrap_or_default();
            let host = p.rsplit_once(':').map_or(p, |(h, _)| h).to_string();
            if let Some(other) = ports.insert(host.clone(), name.clone()) {
                problems.push(format!("host port {host} published by {other} and {name}"));
            }
        }
    }
    assert!(ports.len() >= 5, "published ports: {ports:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The Dockerfile's instructions as (keyword, arguments), continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = read(&repo().join("Dockerfile")).replace("\\\n", " ");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, a)| (k.to_uppercase(), a.trim().to_string()))
        .collect()
}

/// `(source, destination)` of the `COPY`s from the build context (not `--from=` a stage).
fn context_copies() -> Vec<(String, String)> {
    dockerfile()
        .into_iter()
        .filter(|(k, a)| k == "COPY" && !a.starts_with("--from"))
        .flat_map(|(_, a)| {
            let words: Vec<&str> = a.split_whitespace().collect();
            let (dst, srcs) = words.split_last().expect("COPY has a destination");
            srcs.iter()
                .map(|s| (s.to_string(), dst.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn dockerignored(path: &str) -> bool {
    read(&repo().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|p| match p.strip_prefix('*') {
            Some(ext) => path.ends_with(ext),
            None => path == p || path.starts_with(&format!("{p}/")),
        })
}

#[test]
fn the_dockerfile_builds_from_what_the_context_holds() {
    let instructions = dockerfile();
    let froms: Vec<&str> = instructions
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(
        froms,
        [
            "rust:1-bookworm AS builder",
            "debian:bookworm-slim AS runtime"
        ]
    );
    let copies = context_copies();
    assert!(copies.len() >= 6, "{copies:?}");
    for (src, _) in &copies {
        let rel = src.trim_end_matches('/');
        assert!(
            repo().join(rel).exists(),
            "COPY {src}: not in the repository"
        );
        assert!(!dockerignored(rel), "COPY {src}: excluded by .dockerignore");
    }
    assert!(
        dockerignored("target"),
        "target/ must stay out of the build context"
    );
    let cmd = instructions.iter().rev().find(|(k, _)| k == "CMD");
    let compose_cmd = service(&compose(), "citybrain")["command"].clone();
    let cmd: Value = serde_json::from_str(&cmd.expect("a CMD").1).expect("CMD in exec form");
    assert_eq!(cmd, compose_cmd, "compose runs what the image runs");
    assert_eq!(cmd[2], "/etc/citybrain/citybrain.yaml");
}

#[test]
fn the_mounted_citybrain_config_passes_check_in_the_container_layout() {
    // /etc/citybrain as the container sees it: the image's COPYs, then the compose mounts.
    let etc = tempfile::tempdir().expect("tempdir");
    let mut layout: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (src, dst) in context_copies() {
        if let Some(rel) = dst.strip_prefix("/etc/citybrain/") {
            layout.insert(rel.to_string(), repo().join(src));
        }
    }
    let c = compose();
    for (src, dst) in bind_mounts(service(&c, "citybrain")) {
        if let Some(rel) = dst.strip_prefix("/etc/citybrain/") {
            layout.insert(rel.to_string(), src);
        }
    }
    for name in [
        "citybrain.yaml",
        "pipelines",
        "device-profiles",
        "registers",
    ] {
        assert!(
            layout.contains_key(name),
            "/etc/citybrain/{name} is neither copied nor mounted"
        );
    }
    for (rel, src) in &layout {
        let at = etc.path().join(rel);
        if src.is_dir() {
            std::os::unix::fs::symlink(src, &at).expect("symlink");
        } else {
            // A copy, not a link: relative paths resolve against the config file's directory.
            std::fs::copy(src, &at).expect("copy");
        }
    }
    let config = etc.path().join("citybrain.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_citybrain"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("citybrain runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "citybrain check failed:\n{text}");
    assert!(text.contains("4 incident rules ok"), "{text}");
    assert_eq!(
        layout["registers"],
        repo().join("deploy/citybrain/registers"),
        "compose mounts the simulated city's registers over the image's"
    );
}

#[test]
fn prometheus_config_is_valid_and_scrapes_the_citybrain_service() {
    let (ok, out) = run(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
        "prometheus",
    );
    assert!(ok, "promtool check config:\n{out}");
    let c = compose();
    let prom = service(&c, "prometheus");
    let mounted = bind_mounts(prom).into_iter().any(|(src, dst)| {
        src.ends_with("deploy/prometheus/prometheus.yml") && dst == "/etc/prometheus/prometheus.yml"
    });
    assert!(
        mounted,
        "prometheus.yml is not mounted where --config.file points"
    );
    let args = prom["command"].to_string();
    assert!(
        args.contains("--config.file=/etc/prometheus/prometheus.yml"),
        "{args}"
    );
    let cfg = yaml("deploy/prometheus/prometheus.yml");
    let job = cfg["scrape_configs"]
        .as_array()
        .and_then(|j| j.iter().find(|j| j["job_name"] == "citybrain"))
        .expect("a citybrain job (the dashboard's up{job=\"citybrain\"})");
    let listen = yaml("deploy/citybrain/citybrain.yaml")["api"]["listen"].clone();
    let port = listen
        .as_str()
        .and_then(|l| l.rsplit(':').next())
        .expect("api.listen");
    assert_eq!(
        job["static_configs"][0]["targets"][0],
        format!("citybrain:{port}")
    );
    assert_eq!(job["metrics_path"], "/metrics");
}

#[test]
fn grafana_is_provisioned_with_mounted_dashboards_and_reachable_datasources() {
    let c = compose();
    let grafana = service(&c, "grafana");
    let mounts = bind_mounts(grafana);
    let source_of = |target: &str| {
        mounts
            .iter()
            .find(|(_, dst)| dst == target)
            .map(|(src, _)| src.clone())
            .unwrap_or_else(|| panic!("grafana mounts nothing at {target}"))
    };
    let provisioning = source_of("/etc/grafana/provisioning");
    assert!(provisioning.join("datasources").is_dir() && provisioning.join("dashboards").is_dir());
    let providers = yaml("deploy/grafana/provisioning/dashboards/dashboards.yaml");
    for p in providers["providers"].as_array().expect("providers") {
        let path = p["options"]["path"].as_str().expect("provider path");
        let dir = source_of(path);
        let json = std::fs::read_dir(&dir)
            .expect("dashboards dir")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count();
        assert!(json >= 2, "{} holds {json} dashboards", dir.display());
    }
    let home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .expect("home dashboard");
    let (dir, file) = home.rsplit_once('/').expect("a path");
    assert!(
        source_of(dir).join(file).is_file(),
        "home dashboard {home} missing"
    );

    // Datasources point at compose services; InfluxDB credentials agree everywhere.
    let services = c["services"].as_object().expect("services");
    let ds = yaml("deploy/grafana/provisioning/datasources/datasources.yaml");
    let influx_env = &service(&c, "influxdb")["environment"];
    let cb = yaml("deploy/citybrain/citybrain.yaml");
    for d in ds["datasources"].as_array().expect("datasources") {
        let url = d["url"].as_str().expect("url");
        let host = url
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap_or_default();
        assert!(
            services.contains_key(host),
            "datasource {url}: no service {host}"
        );
        if d["type"] == "influxdb" {
            assert_eq!(
                d["jsonData"]["organization"],
                influx_env["DOCKER_INFLUXDB_INIT_ORG"]
            );
            assert_eq!(
                d["jsonData"]["defaultBucket"],
                influx_env["DOCKER_INFLUXDB_INIT_BUCKET"]
            );
            assert_eq!(
                d["secureJsonData"]["token"],
                influx_env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
            );
        }
    }
    assert_eq!(cb["influx"]["org"], influx_env["DOCKER_INFLUXDB_INIT_ORG"]);
    assert_eq!(
        cb["influx"]["bucket"],
        influx_env["DOCKER_INFLUXDB_INIT_BUCKET"]
    );
    assert_eq!(
        cb["influx"]["token"],
        influx_env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    );
    assert_eq!(cb["influx"]["url"], "http://influxdb:8086");
    assert_eq!(cb["mqtt"]["host"], "mosquitto");
    let conf = read(&repo().join("deploy/mosquitto/mosquitto.conf"));
    assert!(
        conf.contains(&format!("listener {}", cb["mqtt"]["port"])),
        "{conf}"
    );
    assert!(
        conf.contains("allow_anonymous true"),
        "mosquitto 2 refuses anonymous clients otherwise"
    );
    let mosquitto_conf_mounted = bind_mounts(service(&c, "mosquitto"))
        .iter()
        .any(|(_, dst)| dst == "/mosquitto/config/mosquitto.conf");
    assert!(mosquitto_conf_mounted);
}

#[test]
fn the_mounted_registers_are_the_city_the_simulator_publishes() {
    let command = service(&compose(), "simulator")["command"].to_string();
    assert!(command.contains("--seed 1 "), "{command}");
    let dir = tempfile::tempdir().expect("tempdir");
    // The register depends on the seed only, not on the start or the duration.
    let opts = SimOptions::default_with_seed(1, EventTime(1_795_300_000_000), 60);
    write_city(dir.path(), &opts).expect("city written");
    for file in ["devices.csv", "crews.csv"] {
        assert_eq!(
            read(&dir.path().join(file)),
            read(&repo().join("deploy/citybrain/registers").join(file)),
            "deploy/citybrain/registers/{file}: regenerate with `citybrain simulate --seed 1 --out DIR`"
        );
    }
}
