//! The tokens file: a YAML list of `{name, role, sha256}`, shared by the running server (which
//! follows it) and `citybrain token` (which edits it).
//!
//! Every edit holds an exclusive lock on a sidecar `<file>.lock` (so the CLI and the API's
//! admin routes cannot lose each other's changes) and replaces the file atomically (write a temp
//! file, fsync, rename): a reader sees the old list or the new one, never half a file. New files
//! are created readable by their owner only.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::TokenEntry;

/// Longest token name (names appear in the audit trail and in crew topics).
const MAX_NAME_CHARS: usize = 64;

/// Why the tokens file could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// Reading, writing or locking failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid list of token entries (message names the line and field).
    #[error("{0}")]
    Parse(String),
    /// A token with this name exists already.
    #[error("a token named {0:?} exists already; revoke it first or pick another name")]
    Duplicate(String),
    /// The name is not usable.
    #[error("invalid token name {name:?}: {why}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Token names are actors in the audit trail and crew ids: plain, short, unambiguous.
pub(super) fn validate_name(name: &str) -> Result<(), TokenFileError> {
    let bad = |why| {
        Err(TokenFileError::InvalidName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("must be at most 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("use only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Reads and parses a tokens file (which must exist).
pub fn read_tokens_file(path: &Path) -> Result<Vec<TokenEntry>, TokenFileError> {
    TokensFile::new(path).read()
}

/// A tokens file on disk.
#[derive(Debug, Clone)]
pub struct TokensFile {
    path: PathBuf,
}

impl TokensFile {
    /// The file at `path` (not touched until used).
    pub fn new(path: &Path) -> TokensFile {
        TokensFile {
            path: path.to_path_buf(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> TokenFileError {
        TokenFileError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The entries; the file must exist.
    pub fn read(&self) -> Result<Vec<TokenEntry>, TokenFileError> {
        let text = fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
        parse(&self.path, &text)
    }

    /// Adds `entry` (creating the file if missing) and returns every entry now in it. The line
    /// is appended so comments and layout survive, unless the file is a flow-style list.
    pub fn append(&self, entry: TokenEntry) -> Result<Vec<TokenEntry>, TokenFileError> {
        validate_name(&entry.name)?;
        self.locked(|| {
            let text = match fs::read_to_string(&self.path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(self.io(e)),
            };
            let mut entries = parse(&self.path, &text)?;
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(TokenFileError::Duplicate(entry.name));
            }
            let mut appended = text.clone();
            if !appended.is_empty() && !appended.ends_with('\n') {
                appended.push('\n');
            }
            appended.push_str(&line(&entry));
            entries.push(entry);
            // A flow-style file (`[...]`) does not take an appended block item: rewrite it.
            let text = match parse(&self.path, &appended) {
                Ok(parsed) if parsed == entries => appended,
                _ => render(&entries),
            };
            self.replace(&text)?;
            Ok(entries)
        })
    }

    /// Removes every entry named `name`; returns whether one was removed and what remains.
    pub fn revoke(&self, name: &str) -> Result<(bool, Vec<TokenEntry>), TokenFileError> {
        self.locked(|| {
            let mut entries = self.read()?;
            let before = entries.len();
            entries.retain(|e| e.name != name);
            let removed = entries.len() != before;
            if removed {
                self.replace(&render(&entries))?;
            }
            Ok((removed, entries))
        })
    }

    /// Runs `f` holding the exclusive lock on `<file>.lock`.
    fn locked<T>(
        &self,
        f: impl FnOnce() -> Result<T, TokenFileError>,
    ) -> Result<T, TokenFileError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let lock_path = sidecar(&self.path, "lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        // Released when `lock` is dropped, after `f`.
        f()
    }

    /// Atomically replaces the file with `text`, keeping its permissions (0600 when new).
    fn replace(&self, text: &str) -> Result<(), TokenFileError> {
        let tmp = sidecar(&self.path, &format!("tmp-{}", std::process::id()));
        let mut out = File::create(&tmp).map_err(|e| self.io(e))?;
        let perms = match fs::metadata(&self.path) {
            Ok(m) => Some(m.permissions()),
            Err(_) => owner_only(),
        };
        if let Some(p) = perms {
            fs::set_permissions(&tmp, p).map_err(|e| self.io(e))?;
        }
        out.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        out.sync_all().map_err(|e| self.io(e))?;
        drop(out);
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        // Make the rename itself durable.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
fn owner_only() -> Option<fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn owner_only() -> Option<fs::Permissions> {
    None
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// Parses the file's text; a file with nothing but comments and blank lines is an empty list.
fn parse(path: &Path, text: &str) -> Result<Vec<TokenEntry>, TokenFileError> {
    let has_content = text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#')
    });
    if !has_content {
        return Ok(Vec::new());
    }
    crate::config::load_yaml_str(path, text).map_err(|e| TokenFileError::Parse(e.to_string()))
}

/// One block-list item. Names are validated to plain characters; the JSON quoting is also a
/// valid YAML double-quoted scalar.
fn line(e: &TokenEntry) -> String {
    let name = serde_json::to_string(&e.name).unwrap_or_else(|_| format!("\"{}\"", e.name));
    format!(
        "- {{name: {name}, role: {}, sha256: {}}}\n",
        e.role.as_str(),
        e.sha256
    )
}

fn render(entries: &[TokenEntry]) -> String {
    let mut out = String::from(
        "# citybrain API tokens: name, role, SHA-256 of the secret (the secret is not stored).\n\
         # Managed with `citybrain token create|revoke|list`.\n",
    );
    if entries.is_empty() {
        out.push_str("[]\n");
    }
    for e in entries {
        out.push_str(&line(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Auth, Role};
    use super::*;

    #[test]
    fn append_keeps_comments_and_revoke_rewrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.yaml");
        fs::write(&path, "# ops desks\n- {name: a, role: viewer, sha256: x}\n").expect("write");
        let f = TokensFile::new(&path);
        let (_, b) = Auth::generate("b", Role::Crew);
        let all = f.append(b.clone()).expect("appends");
        assert_eq!(all.len(), 2);
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("# ops desks\n"), "{text}");
        assert_eq!(f.read().expect("reads")[1], b);
        let dup = f.append(b.clone()).expect_err("duplicate");
        assert!(matches!(dup, TokenFileError::Duplicate(_)), "{dup}");
        assert!(f.revoke("a").expect("revokes").0);
        assert!(!f.revoke("a").expect("revokes").0, "already gone");
        assert_eq!(f.read().expect("reads"), vec![b]);
        assert!(f.revoke("b").expect("revokes").0);
        assert!(f.read().expect("empty list parses").is_empty());
    }

    #[test]
    fn new_files_are_private_and_flow_lists_are_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/tokens.yaml");
        let f = TokensFile::new(&path);
        f.append(Auth::generate("ops-1", Role::Operator).1)
            .expect("creates");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(&path, "[{name: a, role: admin, sha256: y}]\n").expect("write");
        let all = f
            .append(Auth::generate("c", Role::Viewer).1)
            .expect("appends");
        assert_eq!(all.len(), 2);
        assert_eq!(f.read().expect("reads"), all);
    }

    #[test]
    fn bad_names_and_bad_files_are_refused_with_reasons() {
        for bad in ["", "a b", "x/y", &"n".repeat(65)] {
            let err = validate_name(bad).expect_err("invalid");
            assert!(err.to_string().contains("invalid token name"), "{err}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.yaml");
        fs::write(&path, "- {name: a, role: wizard, sha256: x}\n").expect("write");
        let err = read_tokens_file(&path).expect_err("bad role");
        assert!(err.to_string().contains("t.yaml"), "{err}");
        let missing = read_tokens_file(&dir.path().join("none.yaml")).expect_err("missing");
        assert!(matches!(missing, TokenFileError::Io { .. }));
    }
}
