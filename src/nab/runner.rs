//! Running the ensemble over a NAB data root: every `DIR/<category>/<file>.csv` is one
//! independent stream, scored into `RESULTS/<category>/<file>.csv`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::config::EnsembleConfig;
use super::data::{read_file, write_results};
use super::ensemble::Ensemble;
use super::NabError;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Files scored.
    pub files: usize,
    /// Rows scored, over all files.
    pub rows: usize,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scored {} rows in {} files", self.rows, self.files)
    }
}

/// The data files under `data`, as paths relative to it (`category/file.csv`), sorted.
pub fn data_files(data: &Path) -> Result<Vec<PathBuf>, NabError> {
    let mut files = Vec::new();
    for category in sorted_entries(data)? {
        if !category.is_dir() {
            continue;
        }
        for file in sorted_entries(&category)? {
            if file.is_file() && file.extension().is_some_and(|e| e == "csv") {
                if let Ok(rel) = file.strip_prefix(data) {
                    files.push(rel.to_path_buf());
                }
            }
        }
    }
    if files.is_empty() {
        return Err(NabError::NoData(data.to_path_buf()));
    }
    Ok(files)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, NabError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| NabError::io(dir, e))? {
        out.push(entry.map_err(|e| NabError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Scores one data file into one result file; returns the row count.
pub fn score_file(cfg: &EnsembleConfig, input: &Path, output: &Path) -> Result<usize, NabError> {
    let rows = read_file(input)?;
    let name = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ensemble = Ensemble::new(cfg, &name);
    let scores: Vec<f64> = rows.iter().map(|r| ensemble.score(r.ts, r.value)).collect();
    write_results(output, &rows, &scores)?;
    Ok(rows.len())
}

/// Scores every data file under `data` into `out`, on all cores (files are independent).
/// Stops at the first error (files already written stay).
pub fn run_dir(cfg: &EnsembleConfig, data: &Path, out: &Path) -> Result<RunSummary, NabError> {
    let files = data_files(data)?;
    let next = AtomicUsize::new(0);
    let result: Mutex<Result<usize, NabError>> = Mutex::new(Ok(0));
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(rel) = files.get(i) else { break };
                let done = score_file(cfg, &data.join(rel), &out.join(rel));
                let mut total = result.lock().unwrap_or_else(|p| p.into_inner());
                match (&mut *total, done) {
                    (Ok(sum), Ok(n)) => *sum += n,
                    (Ok(_), Err(e)) => *total = Err(e),
                    (Err(_), _) => {}
                }
                if total.is_err() {
                    break;
                }
            });
        }
    });
    let rows = result.into_inner().unwrap_or_else(|p| p.into_inner())?;
    Ok(RunSummary {
        files: files.len(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streaming: a score never depends on later rows, so scoring a prefix of a file gives the
    /// prefix of the full file's scores.
    #[test]
    fn scores_do_not_look_ahead() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/nab/data/realTraffic/speed_7578.csv");
        let text = std::fs::read_to_string(&src).expect("fixture");
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix: String = text.lines().take(701).map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.path().join("prefix.csv"), prefix).expect("write");
        let cfg = EnsembleConfig::load(None).expect("config");
        let full_out = dir.path().join("full_out.csv");
        let prefix_out = dir.path().join("prefix_out.csv");
        assert!(score_file(&cfg, &src, &full_out).expect("full") > 1000);
        assert_eq!(
            score_file(&cfg, &dir.path().join("prefix.csv"), &prefix_out).expect("prefix"),
            700
        );
        let full = std::fs::read_to_string(full_out).expect("read");
        let part = std::fs::read_to_string(prefix_out).expect("read");
        let full: Vec<&str> = full.lines().take(701).collect();
        assert_eq!(part.lines().collect::<Vec<_>>(), full);
        assert!(
            full.iter().skip(1).any(|l| !l.ends_with(",0")),
            "some row scored"
        );
    }

    #[test]
    fn an_empty_data_root_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = data_files(dir.path()).expect_err("no files");
        assert!(matches!(err, NabError::NoData(_)), "{err}");
    }

    #[test]
    fn a_bad_file_fails_the_run_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cat = dir.path().join("data/cat");
        std::fs::create_dir_all(&cat).expect("mkdir");
        std::fs::write(
            cat.join("good.csv"),
            "timestamp,value\n2014-04-01 00:00:00,1\n",
        )
        .expect("write");
        std::fs::write(
            cat.join("bad.csv"),
            "timestamp,value\n2014-04-01 00:00:00,x\n",
        )
        .expect("write");
        let cfg = EnsembleConfig::load(None).expect("config");
        let err =
            run_dir(&cfg, &dir.path().join("data"), &dir.path().join("out")).expect_err("bad row");
        assert!(err.to_string().contains("bad.csv:2"), "{err}");
    }
}
