//! The node's own SQLite file, `node.db` in the data dir: the pools this person joined (with the names
//! they gave them, their tickets, and which they blocked), the app's settings, and each GPU's last
//! benchmark. SQLite rather than a JSON file because a crash mid-write must leave the old state or the
//! new one, never half of either. Money lives in the ledger, not here.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::NodeError;
use super::views::{EmbeddingScore, Score};
use crate::sqlite::{self, Durability, Schema};

const SCHEMA_V1: &str = "
CREATE TABLE pools (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    ticket       TEXT NOT NULL,
    local        INTEGER NOT NULL DEFAULT 0 CHECK (local IN (0, 1)),
    blocked      INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    joined_at_ms INTEGER NOT NULL,
    -- Left pools keep their row so earnings from them still show the name the person gave.
    left_at_ms   INTEGER
) STRICT;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE scores (
    adapter        TEXT PRIMARY KEY,
    matmul_gflops  REAL NOT NULL,
    copy_gbps      REAL NOT NULL,
    measured_at_ms INTEGER NOT NULL
) STRICT;
";

/// Embeddings a second and their model; NULL in scores kept before the benchmark measured them.
const SCHEMA_V2: &str = "
ALTER TABLE scores ADD COLUMN embeddings_per_second REAL;
ALTER TABLE scores ADD COLUMN embedding_model TEXT;
";

/// Synced in full: the person's choices must survive a power cut.
const SCHEMA: Schema = Schema {
    name: "node.db",
    steps: &[SCHEMA_V1, SCHEMA_V2],
    durability: Durability::Full,
};

/// One pool as remembered: joined (`left_at_ms` is None), left, or blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolRecord {
    pub id: String,
    pub name: String,
    pub ticket: String,
    pub local: bool,
    pub blocked: bool,
    pub joined_at_ms: u64,
    pub left_at_ms: Option<u64>,
}

impl PoolRecord {
    /// Joined and not blocked: a provider works for it.
    pub fn is_member(&self) -> bool {
        self.left_at_ms.is_none() && !self.blocked
    }
}

pub struct NodeStore {
    conn: Connection,
}

impl NodeStore {
    pub fn open(path: &Path) -> Result<NodeStore, NodeError> {
        Ok(NodeStore {
            conn: sqlite::open(path, &SCHEMA)?,
        })
    }

    /// Every pool ever joined, oldest first.
    pub fn pools(&self) -> Result<Vec<PoolRecord>, NodeError> {
        let mut statement = self.conn.prepare(
            "SELECT id, name, ticket, local, blocked, joined_at_ms, left_at_ms
             FROM pools ORDER BY joined_at_ms, id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(PoolRecord {
                id: row.get(0)?,
                name: row.get(1)?,
                ticket: row.get(2)?,
                local: row.get(3)?,
                blocked: row.get(4)?,
                joined_at_ms: row.get::<_, i64>(5)?.max(0) as u64,
                left_at_ms: row.get::<_, Option<i64>>(6)?.map(|ms| ms.max(0) as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn pool(&self, id: &str) -> Result<Option<PoolRecord>, NodeError> {
        Ok(self.pools()?.into_iter().find(|p| p.id == id))
    }

    /// Records a join (again): a pool left before becomes a member with its new name and ticket.
    pub fn join(&self, record: &PoolRecord) -> Result<(), NodeError> {
        self.conn.execute(
            "INSERT INTO pools (id, name, ticket, local, blocked, joined_at_ms, left_at_ms)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, NULL)
             ON CONFLICT (id) DO UPDATE SET name = ?2, ticket = ?3, local = ?4, blocked = 0,
                                            joined_at_ms = ?5, left_at_ms = NULL",
            params![
                record.id,
                record.name,
                record.ticket,
                record.local,
                sql_ms(record.joined_at_ms)
            ],
        )?;
        Ok(())
    }

    pub fn leave(&self, id: &str, at_ms: u64, block: bool) -> Result<(), NodeError> {
        self.conn.execute(
            "UPDATE pools SET left_at_ms = ?2, blocked = (blocked OR ?3) WHERE id = ?1",
            params![id, sql_ms(at_ms), block],
        )?;
        Ok(())
    }

    /// A setting's JSON text, if it was ever saved.
    pub fn setting(&self, key: &str) -> Result<Option<String>, NodeError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, json: &str) -> Result<(), NodeError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, json],
        )?;
        Ok(())
    }

    pub fn score(&self, adapter: &str) -> Result<Option<Score>, NodeError> {
        Ok(self
            .conn
            .query_row(
                "SELECT matmul_gflops, copy_gbps, measured_at_ms, embeddings_per_second,
                        embedding_model
                 FROM scores WHERE adapter = ?1",
                [adapter],
                |row| {
                    let per_second: Option<f64> = row.get(3)?;
                    let model: Option<String> = row.get(4)?;
                    Ok(Score {
                        matmul_gflops: row.get(0)?,
                        copy_gbps: row.get(1)?,
                        embeddings: per_second
                            .zip(model)
                            .map(|(per_second, model)| EmbeddingScore { per_second, model }),
                        measured_at_ms: row.get::<_, i64>(2)?.max(0) as u64,
                    })
                },
            )
            .optional()?)
    }

    pub fn set_score(&self, adapter: &str, score: &Score) -> Result<(), NodeError> {
        let embeddings = score.embeddings.as_ref();
        self.conn.execute(
            "INSERT INTO scores (adapter, matmul_gflops, copy_gbps, measured_at_ms,
                                 embeddings_per_second, embedding_model)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (adapter) DO UPDATE SET matmul_gflops = ?2, copy_gbps = ?3,
                                                 measured_at_ms = ?4, embeddings_per_second = ?5,
                                                 embedding_model = ?6",
            params![
                adapter,
                score.matmul_gflops,
                score.copy_gbps,
                sql_ms(score.measured_at_ms),
                embeddings.map(|e| e.per_second),
                embeddings.map(|e| e.model.as_str()),
            ],
        )?;
        Ok(())
    }
}

/// Times are far below `i64::MAX` milliseconds; a clock that says otherwise is stored as the maximum.
fn sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> PoolRecord {
        PoolRecord {
            id: id.into(),
            name: "Home".into(),
            ticket: "endpointabc".into(),
            local: false,
            blocked: false,
            joined_at_ms: 1_000,
            left_at_ms: None,
        }
    }

    #[test]
    fn pools_join_leave_block_and_rejoin() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(&dir.path().join("node.db")).unwrap();
        store.join(&record("a")).unwrap();
        store.join(&record("b")).unwrap();
        store.leave("a", 2_000, false).unwrap();
        store.leave("b", 2_000, true).unwrap();
        let store = NodeStore::open(&dir.path().join("node.db")).unwrap();
        let pools = store.pools().unwrap();
        assert_eq!(pools[0].left_at_ms, Some(2_000));
        assert!(!pools[0].blocked && pools[1].blocked);
        assert!(pools.iter().all(|p| !p.is_member()));
        store.join(&record("a")).unwrap();
        assert!(store.pool("a").unwrap().unwrap().is_member());
    }

    /// A score kept before the benchmark measured embeddings survives the upgrade, without them.
    #[test]
    fn a_score_from_before_embeddings_reads_back_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.db");
        {
            let old = rusqlite::Connection::open(&path).unwrap();
            old.execute_batch(SCHEMA_V1).unwrap();
            old.pragma_update(None, "user_version", 1).unwrap();
            old.execute(
                "INSERT INTO scores (adapter, matmul_gflops, copy_gbps, measured_at_ms)
                 VALUES ('llvmpipe', 12.5, 3.0, 7)",
                [],
            )
            .unwrap();
        }
        let store = NodeStore::open(&path).unwrap();
        let expected = Score {
            matmul_gflops: 12.5,
            copy_gbps: 3.0,
            embeddings: None,
            measured_at_ms: 7,
        };
        assert_eq!(store.score("llvmpipe").unwrap(), Some(expected));
    }

    #[test]
    fn settings_and_scores_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(&dir.path().join("node.db")).unwrap();
        assert_eq!(store.setting("x").unwrap(), None);
        store.set_setting("x", "1").unwrap();
        store.set_setting("x", "2").unwrap();
        assert_eq!(store.setting("x").unwrap().as_deref(), Some("2"));
        let score = Score {
            matmul_gflops: 12.5,
            copy_gbps: 3.0,
            embeddings: Some(EmbeddingScore {
                per_second: 41.5,
                model: "tiny-bert".into(),
            }),
            measured_at_ms: 7,
        };
        store.set_score("llvmpipe", &score).unwrap();
        assert_eq!(store.score("llvmpipe").unwrap(), Some(score));
    }
}
