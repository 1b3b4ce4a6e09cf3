//! The command line: every command has `--help`; `check` validates everything shipped and names
//! file, line and field of each problem; `simulate` + `replay` work as documented.

mod common;

use std::process::Command;

use common::repo;

fn citybrain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citybrain"));
    c.current_dir(repo());
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = citybrain().args(args).output().expect("citybrain runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_has_help() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for cmd in ["demo", "run", "replay", "record", "check", "simulate"] {
        assert!(out.contains(cmd), "top-level help lists {cmd}");
        let (code, help, err) = run(&[cmd, "--help"]);
        assert_eq!(code, 0, "{cmd} --help: {err}");
        assert!(
            help.contains("Usage: citybrain"),
            "{cmd} --help shows usage"
        );
    }
}

#[test]
fn check_accepts_everything_shipped() {
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4 incident rules ok"), "{out}");
    let (code, out, err) = run(&["check", "--config", "citybrain.example.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn check_names_file_line_and_field_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).expect("mkdir");
    for f in std::fs::read_dir(repo().join("pipelines")).expect("pipelines") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, pipelines.join(f.file_name().expect("name"))).expect("copy");
    }
    let bad = pipelines.join("water_main_burst.yaml");
    let text = std::fs::read_to_string(&bad)
        .expect("read")
        .replace("radius_m: 500", "radius_m: -5");
    std::fs::write(&bad, text).expect("write");
    std::fs::write(
        pipelines.join("typo.yaml"),
        "signals:\n  - name: x\n    profiles: [pressure-logger]\n    metrik: pressure_kpa\n",
    )
    .expect("write");
    let (code, _out, err) = run(&["check", "--pipelines", pipelines.to_str().expect("utf8")]);
    assert_ne!(code, 0, "check must fail");
    let radius = err
        .lines()
        .find(|l| l.contains("water_main_burst.yaml"))
        .unwrap_or_default();
    assert!(
        radius.contains("incident.radius_m") && radius.contains("must be > 0"),
        "{err}"
    );
    assert!(
        radius.contains("water_main_burst.yaml:"),
        "names the line: {err}"
    );
    let typo = err
        .lines()
        .find(|l| l.contains("typo.yaml"))
        .unwrap_or_default();
    assert!(
        typo.contains("typo.yaml:4") && typo.contains("metrik"),
        "{err}"
    );
}

#[test]
fn check_rejects_a_bad_register_row_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devices = dir.path().join("devices.csv");
    std::fs::write(&devices, "device_id,profile,lat,lon,department,district\nTC-1,traffic-camera,north,120.1,traffic,Xihu\n").expect("write");
    let (code, _, err) = run(&["check", "--devices", devices.to_str().expect("utf8")]);
    assert_ne!(code, 0);
    assert!(
        err.contains("devices.csv:2") && err.contains("lat"),
        "{err}"
    );
}

#[test]
fn simulate_then_replay_writes_incidents_in_the_api_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8");
    let (code, _, err) = run(&[
        "simulate",
        "--out",
        d,
        "--seed",
        "5",
        "--duration-mins",
        "120",
        "--start",
        "2026-11-22T06:00:00Z",
    ]);
    assert_eq!(code, 0, "{err}");
    for f in ["devices.csv", "crews.csv", "recording.ndjson", "truth.json"] {
        assert!(dir.path().join(f).exists(), "simulate wrote {f}");
    }
    let out = dir.path().join("incidents.ndjson");
    let (code, _, err) = run(&[
        "replay",
        &format!("{d}/recording.ndjson"),
        "--devices",
        &format!("{d}/devices.csv"),
        "--crews",
        &format!("{d}/crews.csv"),
        "--out",
        out.to_str().expect("utf8"),
        "--truth",
        &format!("{d}/truth.json"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ALL"), "prints the backtest table: {err}");
    let text = std::fs::read_to_string(&out).expect("incidents written");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    for inc in &lines {
        for field in [
            "id",
            "kind",
            "severity",
            "status",
            "location",
            "departments",
            "opened_at",
            "updated_at",
            "evidence",
        ] {
            assert!(inc.get(field).is_some(), "incident has {field}: {inc}");
        }
        let ev = &inc["evidence"][0];
        for field in ["device_id", "metric", "detector", "ts", "value"] {
            assert!(ev.get(field).is_some(), "evidence has {field}: {ev}");
        }
        assert!(inc["location"]["lat"].is_f64());
        assert!(
            inc["opened_at"].as_str().is_some_and(|s| s.ends_with('Z')),
            "RFC 3339"
        );
    }
    // Deterministic: the same seed gives the same recording bytes.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let d2 = dir2.path().to_str().expect("utf8");
    let (code, _, _) = run(&[
        "simulate",
        "--out",
        d2,
        "--seed",
        "5",
        "--duration-mins",
        "120",
        "--start",
        "2026-11-22T06:00:00Z",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read(dir.path().join("recording.ndjson")).expect("a"),
        std::fs::read(dir2.path().join("recording.ndjson")).expect("b")
    );
}
