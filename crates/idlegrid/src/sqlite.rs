//! The one way the engine opens its SQLite files (the pool's queue, the provider's ledger, the node's
//! settings): WAL, a busy timeout, the durability the file asks for, and a schema version kept in
//! `PRAGMA user_version` that is created, upgraded step by step, or refused when a newer Idlegrid wrote
//! it. Each upgrade runs in the same transaction as the version it writes, so a process killed during
//! one leaves the file as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

/// Another process (the command line reading while a provider or pool runs) may hold the write lock
/// for a moment; waiting briefly beats failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How much a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Synced on every commit: an acknowledged write survives power loss (money, settings).
    Full,
    /// Under WAL a killed process loses nothing; power loss may lose the last commits. For the pool's
    /// queue, whose writes are many and which its peers repeat after a loss.
    Normal,
}

/// A file's schema: `steps[i]` takes a file at version `i` to `i + 1`, so `steps.len()` is the version
/// this code writes. A step is SQL run inside the upgrade's transaction.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    /// What the file is called in messages: "the ledger", "the pool database".
    pub name: &'static str,
    pub steps: &'static [&'static str],
    pub durability: Durability,
}

impl Schema {
    pub fn version(&self) -> i64 {
        self.steps.len() as i64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the folder {} for {name}: {source}", path.display())]
    Folder {
        name: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: {source}")]
    Sql {
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{name} was written by a newer Idlegrid (schema {found}; this one knows {supported})")]
    NewerSchema {
        name: &'static str,
        found: i64,
        supported: i64,
    },
}

/// Opens (or creates) the file at `path` with `schema`, upgrading an older file.
pub fn open(path: &Path, schema: &Schema) -> Result<Connection, OpenError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| OpenError::Folder {
            name: schema.name,
            path: parent.to_owned(),
            source,
        })?;
    }
    let sql = |source| OpenError::Sql {
        name: schema.name,
        source,
    };
    let mut conn = Connection::open(path).map_err(sql)?;
    configure(&conn, path, schema).map_err(sql)?;
    upgrade(&mut conn, schema)?;
    Ok(conn)
}

fn configure(conn: &Connection, path: &Path, schema: &Schema) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some file systems (network shares) cannot hold a WAL; the file still works, only readers
        // then wait for writers.
        tracing::warn!(path = %path.display(), %mode, "{} could not switch to WAL", schema.name);
    }
    let synchronous = match schema.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", true)
}

fn upgrade(conn: &mut Connection, schema: &Schema) -> Result<(), OpenError> {
    let sql = |source| OpenError::Sql {
        name: schema.name,
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql)?;
    if found > schema.version() || found < 0 {
        return Err(OpenError::NewerSchema {
            name: schema.name,
            found,
            supported: schema.version(),
        });
    }
    for step in &schema.steps[found as usize..] {
        tx.execute_batch(step).map_err(sql)?;
    }
    if found < schema.version() {
        tx.pragma_update(None, "user_version", schema.version())
            .map_err(sql)?;
    }
    tx.commit().map_err(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "CREATE TABLE things (name TEXT NOT NULL) STRICT;";
    const V2: &str = "ALTER TABLE things ADD COLUMN size INTEGER NOT NULL DEFAULT 0;";

    fn schema(steps: &'static [&'static str]) -> Schema {
        Schema {
            name: "the test file",
            steps,
            durability: Durability::Full,
        }
    }

    #[test]
    fn a_new_file_gets_every_step_and_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("t.sqlite");
        let conn = open(&path, &schema(&[V1, V2])).unwrap();
        conn.execute("INSERT INTO things (name, size) VALUES ('a', 3)", [])
            .unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn an_older_file_is_upgraded_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        open(&path, &schema(&[V1]))
            .unwrap()
            .execute("INSERT INTO things (name) VALUES ('kept')", [])
            .unwrap();
        let conn = open(&path, &schema(&[V1, V2])).unwrap();
        let (name, size): (String, i64) = conn
            .query_row("SELECT name, size FROM things", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((name.as_str(), size), ("kept", 0));
        // Opening again runs nothing twice (a second ALTER would fail).
        open(&path, &schema(&[V1, V2])).unwrap();
    }

    #[test]
    fn a_newer_file_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        open(&path, &schema(&[V1, V2])).unwrap();
        let error = open(&path, &schema(&[V1])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the test file was written by a newer Idlegrid (schema 2; this one knows 1)"
        );
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
    }

    #[test]
    fn a_failing_step_leaves_the_file_at_its_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        open(&path, &schema(&[V1])).unwrap();
        let broken: &'static [&'static str] = &[V1, "ALTER TABLE nowhere ADD COLUMN x;"];
        assert!(matches!(
            open(&path, &schema(broken)),
            Err(OpenError::Sql { .. })
        ));
        let conn = open(&path, &schema(&[V1])).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }
}
