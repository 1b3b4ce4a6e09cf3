//! `citybrain nab`: the per-metric detectors of [`crate::detect`] run over the Numenta Anomaly
//! Benchmark (NAB) corpus, so their quality can be measured on public labelled data.
//!
//! Owns: reading NAB data files and writing NAB result files ([`data`]), the ensemble that turns
//! the detectors' per-reading grades into one streaming anomaly score ([`ensemble`]), its one
//! configuration (`nab/ensemble.yaml`, [`config`]), and the run over a data root ([`runner`]).
//! Scoring the results against NAB's labels is done by NAB's scorer (a copy lives in
//! `tests/tools/nab_score.py`); results and method are in `BENCHMARKS.md`, section "NAB".
//!
//! ```text
//!  DIR/<category>/<file>.csv ─► rows ─► Ensemble (one per file) ─► RESULTS/<category>/<file>.csv
//!  timestamp,value                      spike, seasonal, ...        timestamp,value,anomaly_score
//! ```

pub mod config;
pub mod data;
pub mod ensemble;
pub mod runner;

use std::path::{Path, PathBuf};

pub use config::EnsembleConfig;
pub use ensemble::Ensemble;
pub use runner::{run_dir, score_file, RunSummary};

use crate::config::ConfigErrors;

/// Everything that can go wrong in a NAB run.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// The ensemble configuration is invalid (every problem, with file and line).
    #[error("invalid NAB configuration:\n{0}")]
    Config(#[from] ConfigErrors),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A data row could not be used.
    #[error("{}:{line}: {message}", file.display())]
    BadRow {
        /// The data file.
        file: PathBuf,
        /// 1-based line in it (the header is line 1).
        line: u64,
        /// What is wrong, naming the offending text.
        message: String,
    },
    /// The data root holds no `<category>/<file>.csv`.
    #[error("{}: no data files (expected <category>/<file>.csv)", .0.display())]
    NoData(PathBuf),
}

impl NabError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        NabError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `citybrain nab --data DIR --out RESULTS [--config FILE]`: loads the configuration (the
/// built-in `nab/ensemble.yaml` when `config` is `None`) and scores every file under `data`.
pub fn run(data: &Path, out: &Path, config: Option<&Path>) -> Result<RunSummary, NabError> {
    let cfg = EnsembleConfig::load(config)?;
    run_dir(&cfg, data, out)
}
