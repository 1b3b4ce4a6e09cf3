//! The durable side of the incident store: an embedded, transactional redb database in the state
//! directory (`<state_dir>/citybrain.redb`).
//!
//! It owns the file format only: named tables of JSON records keyed by id, written in atomic
//! batches. Every batch is committed with redb's default durability (fsync before `commit`
//! returns), so whatever a caller was told succeeded survives `kill -9` and power loss. What the
//! records mean (incidents with their history, dispatch records) belongs to the callers.
//!
//! redb takes an exclusive file lock, so two citybrain processes cannot share a state directory.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Version of the record layout; a newer file is refused rather than misread.
const SCHEMA_VERSION: u64 = 1;
/// The database file inside the state directory.
const FILE_NAME: &str = "citybrain.redb";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const INCIDENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("incidents");
const DISPATCHES: TableDefinition<&str, &[u8]> = TableDefinition::new("dispatches");

/// The tables callers may write: one JSON record per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Incidents with their history and merge bookkeeping, keyed by incident id.
    Incidents,
    /// Crew dispatch records (opaque JSON owned by the dispatch module), keyed by dispatch id.
    Dispatches,
}

impl Table {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Incidents => INCIDENTS,
            Table::Dispatches => DISPATCHES,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Table::Incidents => "incidents",
            Table::Dispatches => "dispatches",
        }
    }
}

/// One change in an atomic batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert or replace `key` with a JSON document.
    Put {
        /// Table.
        table: Table,
        /// Record key.
        key: String,
        /// Encoded JSON.
        json: Vec<u8>,
    },
    /// Remove `key` (no error if absent).
    Delete {
        /// Table.
        table: Table,
        /// Record key.
        key: String,
    },
}

/// Why the durable store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created.
    #[error("cannot create state dir {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process (or another store in this one) holds the database.
    #[error("state dir {path} is in use by another citybrain process")]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The database file could not be opened or recovered.
    #[error("cannot open incident store {path}: {detail}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// redb's explanation.
        detail: String,
    },
    /// The file was written by a newer citybrain with a record layout this one does not know.
    #[error("incident store {path} has schema version {found}; this citybrain reads up to {SCHEMA_VERSION}")]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Version found.
        found: u64,
    },
    /// A read or write transaction failed.
    #[error("incident store I/O failed: {0}")]
    Io(String),
    /// A stored record does not decode (never expected: writes are atomic and checked).
    #[error("stored {table} record {key:?} is unreadable: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Record key.
        key: String,
        /// Decoder message.
        detail: String,
    },
    /// A record could not be encoded as JSON.
    #[error("cannot encode {what}: {detail}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Encoder message.
        detail: String,
    },
}

fn io(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Io(e.into().to_string())
}

/// An open redb database in a state directory.
pub struct Persist {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist").field("path", &self.path).finish()
    }
}

impl Persist {
    /// Opens (creating if needed) the database in `dir`, recovering it after a crash, and makes
    /// sure every table exists and the schema version is one this build understands.
    pub fn open(dir: &Path) -> Result<Persist, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.clone() },
            other => StoreError::Open {
                path: path.clone(),
                detail: other.to_string(),
            },
        })?;
        let txn = db.begin_write().map_err(io)?;
        {
            let mut meta = txn.open_table(META).map_err(io)?;
            let found = meta.get("schema_version").map_err(io)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema { path, found: v });
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION).map_err(io)?;
                }
            }
            txn.open_table(INCIDENTS).map_err(io)?;
            txn.open_table(DISPATCHES).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        Ok(Persist { db, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `writes` in one transaction; when this returns `Ok` they are on disk, and if it
    /// fails none of them is.
    pub fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(io)?;
        for w in writes {
            match w {
                Write::Put { table, key, json } => {
                    let mut t = txn.open_table(table.definition()).map_err(io)?;
                    t.insert(key.as_str(), json.as_slice()).map_err(io)?;
                }
                Write::Delete { table, key } => {
                    let mut t = txn.open_table(table.definition()).map_err(io)?;
                    t.remove(key.as_str()).map_err(io)?;
                }
            }
        }
        txn.commit().map_err(io)
    }

    /// Every record of `table`, decoded, in key order.
    pub fn scan<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(table.definition()).map_err(io)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            let key = k.value().to_string();
            let value = serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                table: table.name(),
                key: key.clone(),
                detail: e.to_string(),
            })?;
            out.push((key, value));
        }
        Ok(out)
    }
}

/// Encodes a record for [`Write::Put`].
pub fn put<T: serde::Serialize>(table: Table, key: &str, value: &T) -> Result<Write, StoreError> {
    let json = serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        what: format!("{} record {key:?}", table.name()),
        detail: e.to_string(),
    })?;
    Ok(Write::Put {
        table,
        key: key.to_string(),
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_reopen_and_deletes_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let p = Persist::open(dir.path()).expect("opens");
            let writes = vec![
                put(Table::Incidents, "b", &serde_json::json!({"n": 2})).expect("encodes"),
                put(Table::Incidents, "a", &serde_json::json!({"n": 1})).expect("encodes"),
                put(Table::Dispatches, "d1", &serde_json::json!({"crew": "W-1"})).expect("encodes"),
            ];
            p.commit(&writes).expect("commits");
            p.commit(&[Write::Delete {
                table: Table::Incidents,
                key: "b".into(),
            }])
            .expect("deletes");
        }
        let p = Persist::open(dir.path()).expect("reopens");
        let incidents: Vec<(String, serde_json::Value)> = p.scan(Table::Incidents).expect("scans");
        assert_eq!(incidents, vec![("a".into(), serde_json::json!({"n": 1}))]);
        let dispatches: Vec<(String, serde_json::Value)> =
            p.scan(Table::Dispatches).expect("scans");
        assert_eq!(dispatches[0].1["crew"], "W-1");
    }

    #[test]
    fn a_second_open_of_the_same_dir_is_refused_while_the_first_is_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Persist::open(dir.path()).expect("opens");
        let err = Persist::open(dir.path()).expect_err("locked");
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn a_newer_schema_is_refused_and_garbage_records_are_reported_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let p = Persist::open(dir.path()).expect("opens");
            p.commit(&[Write::Put {
                table: Table::Incidents,
                key: "x".into(),
                json: b"{not json".to_vec(),
            }])
            .expect("commits");
            let err = p
                .scan::<serde_json::Value>(Table::Incidents)
                .expect_err("corrupt");
            assert!(err.to_string().contains("\"x\""), "{err}");
            let txn = p.db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert("schema_version", SCHEMA_VERSION + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = Persist::open(dir.path()).expect_err("newer");
        assert!(
            matches!(err, StoreError::NewerSchema { found: 2, .. }),
            "{err}"
        );
    }
}
