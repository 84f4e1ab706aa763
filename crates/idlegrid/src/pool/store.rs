//! The pool's SQLite database: jobs, leases, results, receipts, payouts and providers' records.
//!
//! WAL mode, and every change inside one transaction committed before the pool answers, so a pool
//! killed at any moment restarts with everything it acknowledged. Decisions live elsewhere
//! (`verify`, `schedule`); this module only reads and writes rows.

use std::path::Path;

use iroh::PublicKey;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::amount::Amount;
use crate::job::Job;
use crate::statement::Id;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    submitter BLOB NOT NULL,
    name TEXT NOT NULL,
    manifest BLOB NOT NULL,
    replicas INTEGER NOT NULL,
    tolerance REAL NOT NULL,
    reward INTEGER NOT NULL,
    largest_buffer INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    max_workgroups INTEGER NOT NULL,
    -- A canary is leased only to this provider and its answer is known.
    canary_for BLOB,
    expected BLOB,
    state TEXT NOT NULL DEFAULT 'queued',
    reason TEXT,
    output_hash BLOB,
    outputs BLOB,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, seq);
-- Every ask looks for a canary waiting for its provider; without this it scans the whole queue.
CREATE INDEX IF NOT EXISTS jobs_canary ON jobs (canary_for, state);
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job BLOB NOT NULL,
    provider BLOB NOT NULL,
    granted_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    -- active | done | returned | expired | failed
    state TEXT NOT NULL DEFAULT 'active',
    reason TEXT
);
CREATE INDEX IF NOT EXISTS leases_job ON leases (job, state);
CREATE INDEX IF NOT EXISTS leases_active ON leases (state, expires_ms);
-- A job's unexpired leases. Without it SQLite answers `job = ? AND state = 'active' AND expires_ms
-- >= ?` from `leases_active`, reading every active lease in the pool for each job an ask considers.
CREATE INDEX IF NOT EXISTS leases_job_expiry ON leases (job, state, expires_ms);
CREATE TABLE IF NOT EXISTS results (
    job BLOB NOT NULL,
    provider BLOB NOT NULL,
    digest BLOB NOT NULL,
    outputs BLOB NOT NULL,
    gpu_micros INTEGER NOT NULL,
    -- pending | agreed | rejected | undecided
    verdict TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (job, provider)
);
CREATE TABLE IF NOT EXISTS receipts (
    id BLOB PRIMARY KEY,
    job BLOB NOT NULL,
    provider BLOB NOT NULL,
    amount INTEGER NOT NULL,
    signed BLOB NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    payout BLOB,
    UNIQUE (job, provider)
);
CREATE INDEX IF NOT EXISTS receipts_provider ON receipts (provider, payout);
-- Every ask reads the provider's undelivered statements: without these, all its receipts ever, and
-- every payout to anyone.
CREATE INDEX IF NOT EXISTS receipts_undelivered ON receipts (provider, delivered);
CREATE TABLE IF NOT EXISTS payouts (
    id BLOB PRIMARY KEY,
    provider BLOB NOT NULL,
    amount INTEGER NOT NULL,
    signed BLOB NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS payouts_undelivered ON payouts (provider, delivered);
CREATE TABLE IF NOT EXISTS providers (
    key BLOB PRIMARY KEY,
    clean INTEGER NOT NULL DEFAULT 0,
    strikes INTEGER NOT NULL DEFAULT 0,
    leases INTEGER NOT NULL DEFAULT 0,
    last_seen_ms INTEGER NOT NULL DEFAULT 0
);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("pool database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("pool database holds a malformed {0}")]
    Corrupt(&'static str),
}

/// A job as the queue keeps it.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub id: Id,
    pub submitter: PublicKey,
    pub name: String,
    pub manifest: Vec<u8>,
    pub replicas: u32,
    pub tolerance: f64,
    pub reward: Amount,
    pub largest_buffer: u64,
    pub total_bytes: u64,
    pub max_workgroups: u32,
    pub canary_for: Option<PublicKey>,
    pub expected: Option<Id>,
}

/// What the scheduler needs to know of a queued job.
#[derive(Clone, Debug)]
pub struct QueuedJob {
    pub id: Id,
    pub replicas: u32,
    pub largest_buffer: u64,
    pub max_workgroups: u32,
}

/// A job's state for its submitter.
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatus {
    pub state: String,
    pub reason: Option<String>,
    pub outputs: Option<Vec<u8>>,
    pub replicas: u32,
    pub tolerance: f64,
    pub active_leases: u32,
    pub results: u32,
}

#[derive(Clone, Debug)]
pub struct LeaseRow {
    pub job: Id,
    pub provider: PublicKey,
    pub state: String,
}

#[derive(Clone, Debug)]
pub struct ResultRow {
    pub provider: PublicKey,
    pub digest: Id,
    pub outputs: Vec<u8>,
}

pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // Query planner stability: plans do not depend on bound values. Without it SQLite marks the
    // two UNION queries of the scheduler (`has_taken`, `participants`) as re-plannable per value, and
    // as every cached statement has its bindings cleared on return to the cache, they were parsed and
    // planned again on each of the hundreds of calls an ask makes.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL under WAL survives a killed process (only power loss can lose the last commits).
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(conn)
}

fn key(bytes: Vec<u8>) -> Result<PublicKey, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt("key"))?;
    PublicKey::from_bytes(&bytes).map_err(|_| StoreError::Corrupt("key"))
}

fn id(bytes: Vec<u8>) -> Result<Id, StoreError> {
    bytes
        .try_into()
        .map(Id)
        .map_err(|_| StoreError::Corrupt("id"))
}

fn amount(micros: i64) -> Amount {
    Amount::from_micros(u64::try_from(micros).unwrap_or(0))
}

fn micros(amount: Amount) -> i64 {
    i64::try_from(amount.micros()).unwrap_or(i64::MAX)
}

pub fn job_exists(tx: &Transaction, job: &Id) -> Result<bool, StoreError> {
    Ok(tx
        .query_row("SELECT 1 FROM jobs WHERE id = ?1", [&job.0[..]], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn insert_job(tx: &Transaction, job: &JobRow, now_ms: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO jobs (id, submitter, name, manifest, replicas, tolerance, reward, largest_buffer,
             total_bytes, max_workgroups, canary_for, expected, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            &job.id.0[..],
            &job.submitter.as_bytes()[..],
            job.name,
            job.manifest,
            job.replicas,
            job.tolerance,
            micros(job.reward),
            i64::try_from(job.largest_buffer).unwrap_or(i64::MAX),
            i64::try_from(job.total_bytes).unwrap_or(i64::MAX),
            job.max_workgroups,
            job.canary_for.map(|k| k.as_bytes().to_vec()),
            job.expected.map(|e| e.0.to_vec()),
            i64::try_from(now_ms).unwrap_or(i64::MAX),
        ],
    )?;
    Ok(())
}

/// Queued jobs open to anyone, oldest first.
/// Queued jobs open to anyone that may still want a replica, oldest first: a job with as many
/// unexpired leases out as it could ever need (`at_most` or its own replicas) is skipped here, so a
/// long queue of leased-out jobs costs one index lookup each rather than a full look at each.
pub fn queued_jobs(
    tx: &Transaction,
    limit: u32,
    now_ms: u64,
    at_most: u32,
) -> Result<Vec<QueuedJob>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT id, replicas, largest_buffer, max_workgroups FROM jobs AS j
         WHERE state = 'queued' AND canary_for IS NULL
           AND (SELECT COUNT(*) FROM leases AS l
                WHERE l.job = j.id AND l.state = 'active' AND l.expires_ms >= ?2) < max(j.replicas, ?3)
         ORDER BY seq LIMIT ?1",
    )?;
    let rows = statement.query_map(params![limit, now_ms as i64, at_most], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, u32>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, u32>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (job, replicas, largest, max_workgroups) = row?;
        Ok(QueuedJob {
            id: id(job)?,
            replicas,
            largest_buffer: u64::try_from(largest).unwrap_or(0),
            max_workgroups,
        })
    })
    .collect()
}

/// The replicas of a job under way: who holds an unexpired lease on it, and who returned a result
/// still to be judged, with that result's digest.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    pub leased: Vec<PublicKey>,
    pub pending: Vec<(PublicKey, Id)>,
}

pub fn in_flight(tx: &Transaction, job: &Id, now_ms: u64) -> Result<InFlight, StoreError> {
    let mut leases = tx.prepare_cached(
        "SELECT provider FROM leases WHERE job = ?1 AND state = 'active' AND expires_ms >= ?2",
    )?;
    let leased = leases
        .query_map(params![&job.0[..], now_ms as i64], |r| r.get(0))?
        .map(|row| key(row?))
        .collect::<Result<_, _>>()?;
    let mut results = tx.prepare_cached(
        "SELECT provider, digest FROM results WHERE job = ?1 AND verdict = 'pending'",
    )?;
    let pending = results
        .query_map([&job.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))?
        .map(|row| {
            let (provider, digest) = row?;
            Ok((key(provider)?, id(digest)?))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(InFlight { leased, pending })
}

/// Whether `provider` already ran, runs or failed `job` (replicas must come from distinct providers).
pub fn has_taken(tx: &Transaction, job: &Id, provider: &PublicKey) -> Result<bool, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT 1 FROM leases WHERE job = ?1 AND provider = ?2 AND state IN ('active', 'done', 'failed')
         UNION SELECT 1 FROM results WHERE job = ?1 AND provider = ?2",
    )?;
    Ok(statement
        .query_row(params![&job.0[..], &provider.as_bytes()[..]], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn manifest(tx: &Transaction, job: &Id) -> Result<Job, StoreError> {
    let wire: Vec<u8> = tx.query_row(
        "SELECT manifest FROM jobs WHERE id = ?1",
        [&job.0[..]],
        |r| r.get(0),
    )?;
    Job::from_wire(&wire).map_err(|_| StoreError::Corrupt("manifest"))
}

/// The canary waiting for `provider`, if one is queued.
pub fn queued_canary(tx: &Transaction, provider: &PublicKey) -> Result<Option<Id>, StoreError> {
    tx.query_row(
        "SELECT id FROM jobs WHERE state = 'queued' AND canary_for = ?1 LIMIT 1",
        [&provider.as_bytes()[..]],
        |r| r.get::<_, Vec<u8>>(0),
    )
    .optional()?
    .map(id)
    .transpose()
}

pub fn insert_lease(
    tx: &Transaction,
    job: &Id,
    provider: &PublicKey,
    now_ms: u64,
    expires_ms: u64,
) -> Result<u64, StoreError> {
    tx.execute(
        "INSERT INTO leases (job, provider, granted_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
        params![
            &job.0[..],
            &provider.as_bytes()[..],
            now_ms as i64,
            expires_ms as i64
        ],
    )?;
    Ok(u64::try_from(tx.last_insert_rowid()).unwrap_or(0))
}

/// Marks every lapsed lease expired; returns the jobs they were on.
pub fn expire_leases(tx: &Transaction, now_ms: u64) -> Result<Vec<Id>, StoreError> {
    let mut statement = tx.prepare_cached(
        "UPDATE leases SET state = 'expired' WHERE state = 'active' AND expires_ms < ?1 RETURNING job",
    )?;
    let rows = statement.query_map([now_ms as i64], |r| r.get(0))?;
    rows.map(|row| id(row?)).collect()
}

/// How many leases on `job` ended in `state`.
pub fn count_leases(tx: &Transaction, job: &Id, state: &str) -> Result<u32, StoreError> {
    Ok(tx.query_row(
        "SELECT COUNT(*) FROM leases WHERE job = ?1 AND state = ?2",
        params![&job.0[..], state],
        |r| r.get(0),
    )?)
}

pub fn lease(tx: &Transaction, lease: u64) -> Result<Option<LeaseRow>, StoreError> {
    tx.query_row(
        "SELECT job, provider, state FROM leases WHERE id = ?1",
        [lease as i64],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()?
    .map(|(job, provider, state)| {
        Ok(LeaseRow {
            job: id(job)?,
            provider: key(provider)?,
            state,
        })
    })
    .transpose()
}

pub fn end_lease(
    tx: &Transaction,
    lease: u64,
    state: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE leases SET state = ?2, reason = ?3 WHERE id = ?1",
        params![lease as i64, state, reason],
    )?;
    Ok(())
}

pub fn has_result(tx: &Transaction, job: &Id, provider: &PublicKey) -> Result<bool, StoreError> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM results WHERE job = ?1 AND provider = ?2",
            params![&job.0[..], &provider.as_bytes()[..]],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn insert_result(
    tx: &Transaction,
    job: &Id,
    provider: &PublicKey,
    digest: &Id,
    outputs: &[u8],
    gpu_micros: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO results (job, provider, digest, outputs, gpu_micros) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &job.0[..],
            &provider.as_bytes()[..],
            &digest.0[..],
            outputs,
            i64::try_from(gpu_micros).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

pub fn pending_results(tx: &Transaction, job: &Id) -> Result<Vec<ResultRow>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT provider, digest, outputs FROM results WHERE job = ?1 AND verdict = 'pending'
         ORDER BY rowid",
    )?;
    let rows = statement.query_map([&job.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.map(|row| {
        let (provider, digest, outputs) = row?;
        Ok(ResultRow {
            provider: key(provider)?,
            digest: id(digest)?,
            outputs,
        })
    })
    .collect()
}

pub fn set_verdict(
    tx: &Transaction,
    job: &Id,
    provider: &PublicKey,
    verdict: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE results SET verdict = ?3 WHERE job = ?1 AND provider = ?2",
        params![&job.0[..], &provider.as_bytes()[..], verdict],
    )?;
    Ok(())
}

/// Ends a job: `verified` with its agreed outputs, or `failed` with a reason.
pub fn finish_job(
    tx: &Transaction,
    job: &Id,
    state: &str,
    reason: Option<&str>,
    output: Option<(&Id, &[u8])>,
    now_ms: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE jobs SET state = ?2, reason = ?3, output_hash = ?4, outputs = ?5, finished_ms = ?6
         WHERE id = ?1",
        params![
            &job.0[..],
            state,
            reason,
            output.map(|(h, _)| h.0.to_vec()),
            output.map(|(_, o)| o.to_vec()),
            now_ms as i64
        ],
    )?;
    Ok(())
}

/// The job's row fields the result path needs: (state, replicas, tolerance, reward, name, canary
/// target, expected digest).
pub fn job_terms(tx: &Transaction, job: &Id) -> Result<Option<JobTerms>, StoreError> {
    tx.query_row(
        "SELECT state, replicas, tolerance, reward, name, canary_for, expected FROM jobs WHERE id = ?1",
        [&job.0[..]],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
                r.get::<_, Option<Vec<u8>>>(6)?,
            ))
        },
    )
    .optional()?
    .map(|(state, replicas, tolerance, reward, name, canary_for, expected)| {
        Ok(JobTerms {
            state,
            replicas,
            tolerance,
            reward: amount(reward),
            name,
            canary: canary_for.is_some(),
            expected: expected.map(id).transpose()?,
        })
    })
    .transpose()
}

#[derive(Clone, Debug)]
pub struct JobTerms {
    pub state: String,
    pub replicas: u32,
    pub tolerance: f64,
    pub reward: Amount,
    pub name: String,
    pub canary: bool,
    pub expected: Option<Id>,
}

pub fn job_status(
    conn: &Connection,
    job: &Id,
    now_ms: u64,
) -> Result<Option<JobStatus>, StoreError> {
    conn.query_row(
        "SELECT state, reason, outputs, replicas, tolerance,
            (SELECT COUNT(*) FROM leases WHERE job = ?1 AND state = 'active' AND expires_ms >= ?2),
            (SELECT COUNT(*) FROM results WHERE job = ?1)
         FROM jobs WHERE id = ?1",
        params![&job.0[..], now_ms as i64],
        |r| {
            Ok(JobStatus {
                state: r.get(0)?,
                reason: r.get(1)?,
                outputs: r.get(2)?,
                replicas: r.get(3)?,
                tolerance: r.get(4)?,
                active_leases: r.get(5)?,
                results: r.get(6)?,
            })
        },
    )
    .optional()
    .map_err(StoreError::from)
}

/// Adds to a provider's record; creates it on first sight.
pub fn note_provider(
    tx: &Transaction,
    provider: &PublicKey,
    clean: u64,
    strikes: u64,
    leases: u64,
    now_ms: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO providers (key, clean, strikes, leases, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET clean = clean + ?2, strikes = strikes + ?3,
             leases = leases + ?4, last_seen_ms = max(last_seen_ms, ?5)",
        params![
            &provider.as_bytes()[..],
            clean as i64,
            strikes as i64,
            leases as i64,
            now_ms as i64
        ],
    )?;
    Ok(())
}

/// (clean results, strikes) of a provider; zeros for one never seen.
pub fn provider_record(conn: &Connection, provider: &PublicKey) -> Result<(u64, u64), StoreError> {
    Ok(conn
        .query_row(
            "SELECT clean, strikes FROM providers WHERE key = ?1",
            [&provider.as_bytes()[..]],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()?
        .map_or((0, 0), |(c, s)| {
            (u64::try_from(c).unwrap_or(0), u64::try_from(s).unwrap_or(0))
        }))
}

pub fn insert_receipt(
    tx: &Transaction,
    receipt: &Id,
    job: &Id,
    provider: &PublicKey,
    amount: Amount,
    signed: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO receipts (id, job, provider, amount, signed) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &receipt.0[..],
            &job.0[..],
            &provider.as_bytes()[..],
            micros(amount),
            signed
        ],
    )?;
    Ok(())
}

/// Receipts of `provider` not yet settled by a payout: (id, amount).
pub fn unpaid_receipts(
    tx: &Transaction,
    provider: &PublicKey,
) -> Result<Vec<(Id, Amount)>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT id, amount FROM receipts WHERE provider = ?1 AND payout IS NULL ORDER BY rowid",
    )?;
    let rows = statement.query_map([&provider.as_bytes()[..]], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
    })?;
    rows.map(|row| {
        let (receipt, micros) = row?;
        Ok((id(receipt)?, amount(micros)))
    })
    .collect()
}

pub fn insert_payout(
    tx: &Transaction,
    payout: &Id,
    provider: &PublicKey,
    amount: Amount,
    signed: &[u8],
    receipts: &[Id],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO payouts (id, provider, amount, signed) VALUES (?1, ?2, ?3, ?4)",
        params![
            &payout.0[..],
            &provider.as_bytes()[..],
            micros(amount),
            signed
        ],
    )?;
    let mut settle = tx.prepare_cached("UPDATE receipts SET payout = ?2 WHERE id = ?1")?;
    for receipt in receipts {
        settle.execute(params![&receipt.0[..], &payout.0[..]])?;
    }
    Ok(())
}

/// Signed statements for `provider` it has not confirmed storing: receipts first, then payouts, so
/// a payout never arrives before the receipts it settles.
pub fn undelivered(
    tx: &Transaction,
    provider: &PublicKey,
    limit: u32,
) -> Result<Vec<(bool, Vec<u8>)>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT 1, signed FROM (SELECT signed FROM receipts WHERE provider = ?1 AND delivered = 0
             ORDER BY rowid LIMIT ?2)
         UNION ALL
         SELECT 0, signed FROM (SELECT signed FROM payouts WHERE provider = ?1 AND delivered = 0
             ORDER BY rowid LIMIT ?2)",
    )?;
    let rows = statement.query_map(params![&provider.as_bytes()[..], limit], |r| {
        Ok((r.get::<_, bool>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks statements `provider` confirmed storing.
pub fn mark_delivered(
    tx: &Transaction,
    provider: &PublicKey,
    ids: &[Id],
) -> Result<(), StoreError> {
    let mut receipts =
        tx.prepare_cached("UPDATE receipts SET delivered = 1 WHERE id = ?1 AND provider = ?2")?;
    let mut payouts =
        tx.prepare_cached("UPDATE payouts SET delivered = 1 WHERE id = ?1 AND provider = ?2")?;
    for statement_id in ids {
        receipts.execute(params![&statement_id.0[..], &provider.as_bytes()[..]])?;
        payouts.execute(params![&statement_id.0[..], &provider.as_bytes()[..]])?;
    }
    Ok(())
}

/// Jobs from submitters in any state; canaries are the pool's own and not counted.
pub fn count_submitted_jobs(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE canary_for IS NULL",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Every receipt the pool issued, as signed bytes (for operators and tests).
pub fn all_receipts(conn: &Connection) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut statement = conn.prepare("SELECT signed FROM receipts ORDER BY rowid")?;
    let rows = statement.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
