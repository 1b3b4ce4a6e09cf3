//! The disk spool: batches the server did not take, kept as line-protocol files until it does.
//!
//! One file per batch, named `<sequence:020>-<points>.lp` so a directory listing sorts oldest
//! first and the point count survives a restart without reading the file. Each file is written
//! under a `.tmp` name, fsync'd, renamed and the directory fsync'd, so after a crash a batch is
//! either wholly in the spool or not at all. The total size is bounded: a batch that would pass
//! the bound evicts the oldest batches first (losing the oldest data rather than the newest,
//! which operators care about most). Blocking I/O: call from a blocking thread.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::InfluxError;

/// Name suffix of a complete spooled batch.
const SUFFIX: &str = "lp";

/// One spooled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolFile {
    /// Where it is.
    pub path: PathBuf,
    /// Position in the spool (increasing).
    pub seq: u64,
    /// Points in it.
    pub points: usize,
    /// Size on disk.
    pub bytes: u64,
}

/// Batches evicted to make room, reported so the caller can count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Batches deleted.
    pub batches: usize,
    /// Points in them.
    pub points: usize,
}

/// The spool directory and what is in it (oldest first).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<SpoolFile>,
    bytes: u64,
    next_seq: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InfluxError + '_ {
    move |source| InfluxError::Spool {
        path: path.to_path_buf(),
        source,
    }
}

impl Spool {
    /// Opens (creating) `dir`, picking up batches left by an earlier run and deleting
    /// half-written `.tmp` files (their batch was never acknowledged as spooled).
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, InfluxError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let path = entry.map_err(io_err(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let Some((seq, points)) = parse_name(name) else {
                // Not ours: leave it alone rather than delete an operator's file.
                continue;
            };
            let bytes = fs::metadata(&path).map_err(io_err(&path))?.len();
            files.push(SpoolFile {
                path,
                seq,
                points,
                bytes,
            });
        }
        files.sort_by_key(|f| f.seq);
        let next_seq = files.last().map_or(0, |f| f.seq + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            bytes: files.iter().map(|f| f.bytes).sum(),
            files: files.into(),
            next_seq,
        })
    }

    /// Appends a batch as the newest file, evicting the oldest batches while it would not fit.
    /// A single batch larger than the bound is still kept (alone).
    pub fn push(&mut self, body: &[u8], points: usize) -> Result<Evicted, InfluxError> {
        let mut evicted = Evicted::default();
        let size = body.len() as u64;
        while !self.files.is_empty() && self.bytes + size > self.max_bytes {
            if let Some(old) = self.pop_oldest()? {
                evicted.batches += 1;
                evicted.points += old.points;
            }
        }
        let seq = self.next_seq;
        let path = self.dir.join(format!("{seq:020}-{points}.{SUFFIX}"));
        let tmp = path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let written = f
            .write_all(body)
            .and_then(|()| f.sync_all())
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&path)(e));
        }
        sync_dir(&self.dir)?;
        self.next_seq += 1;
        self.bytes += size;
        self.files.push_back(SpoolFile {
            path,
            seq,
            points,
            bytes: size,
        });
        Ok(evicted)
    }

    /// The oldest batch and its contents, if any.
    pub fn read_oldest(&self) -> Result<Option<(SpoolFile, Vec<u8>)>, InfluxError> {
        let Some(f) = self.files.front() else {
            return Ok(None);
        };
        let body = fs::read(&f.path).map_err(io_err(&f.path))?;
        Ok(Some((f.clone(), body)))
    }

    /// Deletes the oldest batch (after it was written, or to make room).
    pub fn pop_oldest(&mut self) -> Result<Option<SpoolFile>, InfluxError> {
        let Some(f) = self.files.pop_front() else {
            return Ok(None);
        };
        self.bytes = self.bytes.saturating_sub(f.bytes);
        match fs::remove_file(&f.path) {
            Ok(()) => Ok(Some(f)),
            // Already gone (an operator cleaned up): the bookkeeping is what matters.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(f)),
            Err(e) => Err(io_err(&f.path)(e)),
        }
    }

    /// No batch waiting.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Batches waiting.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Points waiting.
    pub fn points(&self) -> usize {
        self.files.iter().map(|f| f.points).sum()
    }
}

/// `00000000000000000042-5000.lp` → (42, 5000).
fn parse_name(name: &str) -> Option<(u64, usize)> {
    let stem = name.strip_suffix(SUFFIX)?.strip_suffix('.')?;
    let (seq, points) = stem.split_once('-')?;
    Some((seq.parse().ok()?, points.parse().ok()?))
}

/// Makes the rename durable (the directory entry is what a crash would otherwise lose).
fn sync_dir(dir: &Path) -> Result<(), InfluxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_reopen_and_ignores_foreign_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path(), 1 << 20).expect("open");
        s.push(b"a 1\n", 1).expect("push");
        s.push(b"b 1\nb 2\n", 2).expect("push");
        std::fs::write(dir.path().join("notes.txt"), "keep me").expect("write");
        std::fs::write(dir.path().join("00000000000000000009-1.tmp"), "torn").expect("write");
        drop(s);
        let mut s = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!((s.len(), s.points(), s.bytes()), (2, 3, 12));
        assert!(!dir.path().join("00000000000000000009-1.tmp").exists());
        assert!(dir.path().join("notes.txt").exists());
        s.push(b"c 1\n", 1).expect("push after reopen");
        let mut seen = Vec::new();
        while let Some((f, body)) = s.read_oldest().expect("read") {
            seen.push((f.points, String::from_utf8(body).expect("utf8")));
            s.pop_oldest().expect("pop");
        }
        assert_eq!(
            seen,
            vec![
                (1, "a 1\n".to_string()),
                (2, "b 1\nb 2\n".to_string()),
                (1, "c 1\n".to_string())
            ]
        );
        assert_eq!((s.bytes(), s.is_empty()), (0, true));
    }

    #[test]
    fn full_spool_evicts_the_oldest_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path(), 10).expect("open");
        assert_eq!(s.push(b"1234", 4).expect("push"), Evicted::default());
        assert_eq!(s.push(b"5678", 2).expect("push"), Evicted::default());
        // 8 + 4 > 10: the first batch goes.
        let ev = s.push(b"9abc", 3).expect("push");
        assert_eq!(
            ev,
            Evicted {
                batches: 1,
                points: 4
            }
        );
        let (oldest, body) = s.read_oldest().expect("read").expect("some");
        assert_eq!((oldest.points, body.as_slice()), (2, &b"5678"[..]));
        // Bigger than the bound on its own: everything older goes, the batch is kept.
        let ev = s.push(b"0123456789abcdef", 7).expect("push");
        assert_eq!(
            ev,
            Evicted {
                batches: 2,
                points: 5
            }
        );
        assert_eq!((s.len(), s.bytes()), (1, 16));
        let on_disk = std::fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(on_disk, 1);
    }
}
