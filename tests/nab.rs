//! `citybrain nab` end to end on five NAB files copied into `tests/data/nab/` (MIT, see the
//! LICENSE.txt there): runs the built binary, checks the result files' format against the data
//! files, then scores them with NAB's scoring procedure (`tests/tools/nab_score.py`, a copy of
//! the shared scorer) and asserts the standard-profile score stays above a floor, so a change
//! that makes the detectors worse on real labelled data fails here.
//!
//! Needs python3 (standard library only); without it the test fails, it does not skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Standard-profile NAB score measured on these five files with `nab/ensemble.yaml` when the
/// test was written, minus a margin for harmless numeric changes. See BENCHMARKS.md, NAB.
const MEASURED_STANDARD: f64 = 73.2;
const MARGIN: f64 = 5.0;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nab")
}

fn data_files() -> Vec<PathBuf> {
    let data = root().join("data");
    let mut files = Vec::new();
    for cat in std::fs::read_dir(&data).expect("tests/data/nab/data exists") {
        let cat = cat.expect("dir entry").path();
        for f in std::fs::read_dir(&cat).expect("category dir") {
            let f = f.expect("dir entry").path();
            if f.extension().is_some_and(|e| e == "csv") {
                files.push(f.strip_prefix(&data).expect("under data").to_path_buf());
            }
        }
    }
    files.sort();
    files
}

fn run_nab(out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_citybrain"))
        .arg("nab")
        .arg("--data")
        .arg(root().join("data"))
        .arg("--out")
        .arg(out)
        .status()
        .expect("runs citybrain");
    assert!(status.success(), "citybrain nab failed: {status}");
}

/// Checks one result file against its data file; returns the number of rows.
fn check_format(data: &Path, result: &Path) -> usize {
    let data_text = std::fs::read_to_string(data).expect("data file");
    let result_text = std::fs::read_to_string(result)
        .unwrap_or_else(|e| panic!("{}: no result file: {e}", result.display()));
    let mut data_lines = data_text.lines();
    let mut result_lines = result_text.lines();
    assert_eq!(data_lines.next(), Some("timestamp,value"));
    assert_eq!(
        result_lines.next(),
        Some("timestamp,value,anomaly_score"),
        "{}: header",
        result.display()
    );
    let (d, r): (Vec<&str>, Vec<&str>) = (data_lines.collect(), result_lines.collect());
    assert_eq!(
        d.len(),
        r.len(),
        "{}: one row per data row",
        result.display()
    );
    let mut positive = 0;
    for (i, (dl, rl)) in d.iter().zip(&r).enumerate() {
        let (prefix, score) = rl
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("{}:{}: `{rl}`", result.display(), i + 2));
        assert_eq!(
            prefix,
            *dl,
            "{}:{}: same timestamp and value",
            result.display(),
            i + 2
        );
        let score: f64 = score
            .parse()
            .unwrap_or_else(|_| panic!("{}:{}: score `{score}`", result.display(), i + 2));
        assert!(
            (0.0..=1.0).contains(&score),
            "{}:{}: {score}",
            result.display(),
            i + 2
        );
        positive += usize::from(score > 0.0);
    }
    assert!(
        positive > 0,
        "{}: no reading scored at all",
        result.display()
    );
    d.len()
}

fn standard_score(results: &Path, json: &Path) -> f64 {
    let scorer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/nab_score.py");
    let output = Command::new("python3")
        .arg(&scorer)
        .arg(results)
        .arg("--nab-root")
        .arg(root())
        .arg("--json")
        .arg(json)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is required to score NAB results (install python3; .ci/test does): {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "nab_score.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("scorer wrote JSON"))
            .expect("scorer JSON");
    assert_eq!(report["files_scored"], data_files().len(), "{stdout}");
    report["profiles"]["standard"]["normalised"]
        .as_f64()
        .unwrap_or_else(|| panic!("no standard score in:\n{stdout}"))
}

#[test]
fn nab_results_have_the_nab_format_and_score_above_the_floor() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let results = tmp.path().join("citybrain");
    run_nab(&results);
    let mut rows = 0;
    for rel in data_files() {
        rows += check_format(&root().join("data").join(&rel), &results.join(&rel));
    }
    assert!(rows > 5000, "{rows} rows");
    let score = standard_score(&results, &tmp.path().join("score.json"));
    let floor = MEASURED_STANDARD - MARGIN;
    assert!(
        score >= floor,
        "NAB standard score on tests/data/nab fell to {score:.2} (measured {MEASURED_STANDARD}, \
         floor {floor}): a detector or ensemble change made detection worse"
    );
}

#[test]
fn nab_help_names_the_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_citybrain"))
        .args(["nab", "--help"])
        .output()
        .expect("runs citybrain");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for arg in ["--data", "--out", "--config"] {
        assert!(help.contains(arg), "{arg} missing from:\n{help}");
    }
}

#[test]
fn a_missing_data_root_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_citybrain"))
        .arg("nab")
        .arg("--data")
        .arg(tmp.path().join("nope"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .expect("runs citybrain");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}
