//! The pool's SQLite database: jobs, leases, results, receipts, payouts, checks and providers' records.
//!
//! WAL mode, and every change inside one transaction committed before the pool answers, so a pool
//! killed at any moment restarts with everything it acknowledged. Decisions live elsewhere (`lease`,
//! `judge`, `settle`, `verify`); this module only reads and writes rows. The states rows move through
//! are enums here, kept as their lowercase names.

use std::path::Path;

use iroh::PublicKey;
use rusqlite::types::{FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::amount::Amount;
use crate::job::{Fault, Job};
use crate::sqlite::{self, Durability, Schema};
use crate::statement::Id;

const SCHEMA_V1: &str = "
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

/// Why a lease failed and when it ended (for the give-up time); payouts that are due before they are
/// paid, so the rail is called outside the transaction; checks (canary verdicts) owed to providers.
const SCHEMA_V2: &str = "
ALTER TABLE leases ADD COLUMN fault TEXT;
ALTER TABLE leases ADD COLUMN ended_ms INTEGER;
ALTER TABLE payouts RENAME TO payouts_v1;
CREATE TABLE payouts (
    id BLOB PRIMARY KEY,
    provider BLOB NOT NULL,
    amount INTEGER NOT NULL,
    state TEXT NOT NULL,
    reference TEXT,
    signed BLOB,
    delivered INTEGER NOT NULL DEFAULT 0
);
INSERT INTO payouts (id, provider, amount, state, signed, delivered)
    SELECT id, provider, amount, 'signed', signed, delivered FROM payouts_v1;
DROP TABLE payouts_v1;
CREATE INDEX payouts_undelivered ON payouts (provider, state, delivered);
CREATE INDEX payouts_due ON payouts (state);
CREATE TABLE checks (
    id BLOB PRIMARY KEY,
    provider BLOB NOT NULL,
    signed BLOB NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX checks_undelivered ON checks (provider, delivered);
";

/// Payouts on a chain: each provider's latest address binding; each chain payout's sequence id (the
/// contract pays each at most once), its recipient and the nonce of the transaction carrying it; and
/// every transaction signed, stored before it is broadcast (see `pool::chain`).
const SCHEMA_V3: &str = "
CREATE TABLE bindings (
    provider BLOB PRIMARY KEY,
    address BLOB NOT NULL,
    seq INTEGER NOT NULL,
    signed BLOB NOT NULL
);
ALTER TABLE payouts ADD COLUMN seq INTEGER;
ALTER TABLE payouts ADD COLUMN recipient BLOB;
ALTER TABLE payouts ADD COLUMN nonce INTEGER;
CREATE UNIQUE INDEX payouts_seq ON payouts (seq);
CREATE TABLE chain_txs (
    hash BLOB PRIMARY KEY,
    nonce INTEGER NOT NULL,
    raw BLOB NOT NULL,
    max_fee TEXT NOT NULL,
    tip TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    block INTEGER
);
CREATE INDEX chain_txs_nonce ON chain_txs (nonce);
";

/// The queue is written often and its peers repeat what a power cut loses: NORMAL durability.
const SCHEMA: Schema = Schema {
    name: "the pool database",
    steps: &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3],
    durability: Durability::Normal,
};

/// Implements SQLite storage for a state enum: each variant is kept as the text given.
macro_rules! stored_as_text {
    ($type:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $type {
            /// The name it is stored under.
            pub fn as_str(self) -> &'static str {
                match self { $(<$type>::$variant => $text),+ }
            }
        }

        impl rusqlite::types::ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $type {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok(<$type>::$variant),)+
                    other => Err(FromSqlError::Other(
                        format!("unknown {} {other:?}", stringify!($type)).into(),
                    )),
                }
            }
        }
    };
}

/// Where a job is in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStage {
    Queued,
    Verified,
    Failed,
}
stored_as_text!(JobStage { Queued => "queued", Verified => "verified", Failed => "failed" });

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// Held by its provider until it expires.
    Active,
    /// Its result came back (in time or late).
    Done,
    /// Given back unfinished (the provider's person came back): no fault of anyone.
    Returned,
    /// Lapsed without a word from its provider.
    Expired,
    /// Its provider could not run the job; the lease's `fault` says whose fault that was.
    Failed,
}
stored_as_text!(LeaseState {
    Active => "active",
    Done => "done",
    Returned => "returned",
    Expired => "expired",
    Failed => "failed",
});

impl std::fmt::Display for LeaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeaseState::Active => "active",
            LeaseState::Done => "done",
            LeaseState::Returned => "given back",
            LeaseState::Expired => "expired",
            LeaseState::Failed => "failed",
        })
    }
}

/// What the judge made of one provider's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultVerdict {
    Pending,
    Agreed,
    Rejected,
    /// The job failed without a majority: nobody is blamed.
    Undecided,
}
stored_as_text!(ResultVerdict {
    Pending => "pending",
    Agreed => "agreed",
    Rejected => "rejected",
    Undecided => "undecided",
});

stored_as_text!(Fault {
    Job => "job",
    Machine => "machine",
    Deadline => "deadline",
    Cancelled => "cancelled",
});

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutState {
    /// Its receipts and amount are fixed; the rail has not confirmed paying it yet.
    Due,
    /// Paid and signed: delivered to its provider.
    Signed,
}
stored_as_text!(PayoutState { Due => "due", Signed => "signed" });

/// What one event adds to a provider's record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordChange {
    /// Results that agreed with the quorum or passed a canary.
    pub clean: u64,
    /// Results that disagreed or failed a canary.
    pub strikes: u64,
    pub leases: u64,
}

impl RecordChange {
    pub const SEEN: RecordChange = RecordChange {
        clean: 0,
        strikes: 0,
        leases: 0,
    };
    pub const CLEAN: RecordChange = RecordChange {
        clean: 1,
        ..RecordChange::SEEN
    };
    pub const STRIKE: RecordChange = RecordChange {
        strikes: 1,
        ..RecordChange::SEEN
    };

    pub fn leased(leases: usize) -> RecordChange {
        RecordChange {
            leases: leases as u64,
            ..RecordChange::SEEN
        }
    }

    /// A clean result or a strike.
    pub fn judged(clean: bool) -> RecordChange {
        if clean {
            RecordChange::CLEAN
        } else {
            RecordChange::STRIKE
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Open(#[from] sqlite::OpenError),
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
    pub stage: JobStage,
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
    pub state: LeaseState,
}

/// A try on a job that ended without a result: a failure its provider reported, or a lapse.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedTry {
    pub provider: PublicKey,
    /// `None` for a lease that lapsed without a word.
    pub fault: Option<Fault>,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct ResultRow {
    pub provider: PublicKey,
    pub digest: Id,
    pub outputs: Vec<u8>,
}

pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = sqlite::open(path, &SCHEMA)?;
    // Query planner stability: plans do not depend on bound values. Without it SQLite marks the
    // two UNION queries of the scheduler (`has_taken`, `participants`) as re-plannable per value, and
    // as every cached statement has its bindings cleared on return to the cache, they were parsed and
    // planned again on each of the hundreds of calls an ask makes.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

pub(super) fn key(bytes: Vec<u8>) -> Result<PublicKey, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt("key"))?;
    PublicKey::from_bytes(&bytes).map_err(|_| StoreError::Corrupt("key"))
}

pub(super) fn id(bytes: Vec<u8>) -> Result<Id, StoreError> {
    bytes
        .try_into()
        .map(Id)
        .map_err(|_| StoreError::Corrupt("id"))
}

pub(super) fn amount(micros: i64) -> Amount {
    Amount::from_micros(u64::try_from(micros).unwrap_or(0))
}

pub(super) fn micros(amount: Amount) -> i64 {
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

/// The canary waiting for `provider`, if one is queued and not out on a lease already (a canary
/// given back waits again).
pub fn queued_canary(tx: &Transaction, provider: &PublicKey) -> Result<Option<Id>, StoreError> {
    tx.query_row(
        "SELECT id FROM jobs AS j WHERE state = 'queued' AND canary_for = ?1
           AND NOT EXISTS (SELECT 1 FROM leases WHERE job = j.id AND state IN (?2, ?3, ?4))
         LIMIT 1",
        params![
            &provider.as_bytes()[..],
            LeaseState::Active,
            LeaseState::Done,
            LeaseState::Failed
        ],
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
        "UPDATE leases SET state = ?2, ended_ms = ?1 WHERE state = ?3 AND expires_ms < ?1 RETURNING job",
    )?;
    let rows = statement.query_map(
        params![now_ms as i64, LeaseState::Expired, LeaseState::Active],
        |r| r.get(0),
    )?;
    rows.map(|row| id(row?)).collect()
}

/// The tries on `job` that ended without a result, oldest first.
pub fn failed_tries(tx: &Transaction, job: &Id) -> Result<Vec<FailedTry>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT provider, fault, reason FROM leases WHERE job = ?1 AND state IN (?2, ?3) ORDER BY id",
    )?;
    let rows = statement.query_map(
        params![&job.0[..], LeaseState::Failed, LeaseState::Expired],
        |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Option<Fault>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )?;
    rows.map(|row| {
        let (provider, fault, reason) = row?;
        Ok(FailedTry {
            provider: key(provider)?,
            fault,
            reason: reason.unwrap_or_default(),
        })
    })
    .collect()
}

/// Distinct providers that hold, finished or failed a lease on `job`, or returned a result for it.
pub fn takers(tx: &Transaction, job: &Id) -> Result<Vec<PublicKey>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT provider FROM leases WHERE job = ?1 AND state IN (?2, ?3, ?4)
         UNION SELECT provider FROM results WHERE job = ?1",
    )?;
    let rows = statement.query_map(
        params![
            &job.0[..],
            LeaseState::Active,
            LeaseState::Done,
            LeaseState::Failed
        ],
        |r| r.get(0),
    )?;
    rows.map(|row| key(row?)).collect()
}

/// Providers that asked for work or returned a result at or after `since_ms`.
pub fn providers_seen_since(tx: &Transaction, since_ms: u64) -> Result<Vec<PublicKey>, StoreError> {
    let mut statement = tx.prepare_cached("SELECT key FROM providers WHERE last_seen_ms >= ?1")?;
    let rows = statement.query_map([since_ms as i64], |r| r.get(0))?;
    rows.map(|row| key(row?)).collect()
}

/// Submitted jobs still queued with no lease out whose last lease ended (or which were queued, if
/// none was ever leased) before `before_ms`: nobody has tried them since.
pub fn stalled_jobs(tx: &Transaction, before_ms: u64) -> Result<Vec<Id>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT id FROM jobs AS j
         WHERE state = ?2 AND canary_for IS NULL
           AND NOT EXISTS (SELECT 1 FROM leases WHERE job = j.id AND state = ?3)
           AND max(created_ms, coalesce((SELECT max(max(granted_ms, coalesce(ended_ms, 0)))
                                         FROM leases WHERE job = j.id), 0)) < ?1",
    )?;
    let rows = statement.query_map(
        params![before_ms as i64, JobStage::Queued, LeaseState::Active],
        |r| r.get(0),
    )?;
    rows.map(|row| id(row?)).collect()
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

/// How a lease ended: its new state, and for a failure whose fault it was and why.
pub struct LeaseEnd<'a> {
    pub state: LeaseState,
    pub fault: Option<Fault>,
    pub reason: Option<&'a str>,
}

impl<'a> LeaseEnd<'a> {
    pub fn done() -> LeaseEnd<'a> {
        LeaseEnd {
            state: LeaseState::Done,
            fault: None,
            reason: None,
        }
    }
}

pub fn end_lease(
    tx: &Transaction,
    lease: u64,
    end: &LeaseEnd,
    now_ms: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE leases SET state = ?2, fault = ?3, reason = ?4, ended_ms = ?5 WHERE id = ?1",
        params![
            lease as i64,
            end.state,
            end.fault,
            end.reason,
            now_ms as i64
        ],
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
    verdict: ResultVerdict,
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
    state: JobStage,
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

/// The job's row fields the result path needs.
pub fn job_terms(tx: &Transaction, job: &Id) -> Result<Option<JobTerms>, StoreError> {
    tx.query_row(
        "SELECT state, replicas, tolerance, reward, name, canary_for, expected FROM jobs WHERE id = ?1",
        [&job.0[..]],
        |r| {
            Ok((
                r.get::<_, JobStage>(0)?,
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
    .map(|(stage, replicas, tolerance, reward, name, canary_for, expected)| {
        Ok(JobTerms {
            stage,
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
    pub stage: JobStage,
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
            (SELECT COUNT(*) FROM leases WHERE job = ?1 AND state = ?3 AND expires_ms >= ?2),
            (SELECT COUNT(*) FROM results WHERE job = ?1)
         FROM jobs WHERE id = ?1",
        params![&job.0[..], now_ms as i64, LeaseState::Active],
        |r| {
            Ok(JobStatus {
                stage: r.get(0)?,
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
    change: RecordChange,
    now_ms: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO providers (key, clean, strikes, leases, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET clean = clean + ?2, strikes = strikes + ?3,
             leases = leases + ?4, last_seen_ms = max(last_seen_ms, ?5)",
        params![
            &provider.as_bytes()[..],
            change.clean as i64,
            change.strikes as i64,
            change.leases as i64,
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

/// A payout fixed but not yet paid: its receipts are reserved for it from here on.
#[derive(Clone, Debug, PartialEq)]
pub struct DuePayout {
    pub id: Id,
    pub provider: PublicKey,
    pub amount: Amount,
    /// In the order they were issued.
    pub receipts: Vec<Id>,
}

/// Records `payout` as due and reserves its receipts, so no other payout can settle them.
pub fn insert_due_payout(tx: &Transaction, payout: &DuePayout) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO payouts (id, provider, amount, state) VALUES (?1, ?2, ?3, ?4)",
        params![
            &payout.id.0[..],
            &payout.provider.as_bytes()[..],
            micros(payout.amount),
            PayoutState::Due
        ],
    )?;
    let mut settle = tx.prepare_cached("UPDATE receipts SET payout = ?2 WHERE id = ?1")?;
    for receipt in &payout.receipts {
        settle.execute(params![&receipt.0[..], &payout.id.0[..]])?;
    }
    Ok(())
}

/// Payouts due and not yet paid, oldest first.
pub fn due_payouts(conn: &Connection) -> Result<Vec<DuePayout>, StoreError> {
    let mut payouts = conn.prepare_cached(
        "SELECT id, provider, amount FROM payouts WHERE state = ?1 ORDER BY rowid",
    )?;
    let rows = payouts
        .query_map([PayoutState::Due], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(payout, provider, micros)| due_payout(conn, payout, provider, micros))
        .collect()
}

/// A due payout from its row, with the receipts it settles.
pub(super) fn due_payout(
    conn: &Connection,
    payout: Vec<u8>,
    provider: Vec<u8>,
    micros: i64,
) -> Result<DuePayout, StoreError> {
    let mut receipts =
        conn.prepare_cached("SELECT id FROM receipts WHERE payout = ?1 ORDER BY rowid")?;
    let settled = receipts
        .query_map([&payout[..]], |r| r.get::<_, Vec<u8>>(0))?
        .map(|row| id(row?))
        .collect::<Result<_, _>>()?;
    Ok(DuePayout {
        id: id(payout)?,
        provider: key(provider)?,
        amount: amount(micros),
        receipts: settled,
    })
}

/// A due payout was paid: its signed statement is now owed to its provider.
pub fn sign_payout(
    tx: &Transaction,
    payout: &Id,
    reference: &str,
    signed: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE payouts SET state = ?2, reference = ?3, signed = ?4 WHERE id = ?1 AND state = ?5",
        params![
            &payout.0[..],
            PayoutState::Signed,
            reference,
            signed,
            PayoutState::Due
        ],
    )?;
    Ok(())
}

/// A canary's verdict, owed to its provider; the same check again is stored once.
pub fn insert_check(
    tx: &Transaction,
    check: &Id,
    provider: &PublicKey,
    signed: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO checks (id, provider, signed) VALUES (?1, ?2, ?3)",
        params![&check.0[..], &provider.as_bytes()[..], signed],
    )?;
    Ok(())
}

/// The kinds of statement a pool delivers, in the order a provider must store them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    Receipt,
    Payout,
    Check,
}

/// Signed statements for `provider` it has not confirmed storing: receipts first, then payouts, so
/// a payout never arrives before the receipts it settles, then checks.
pub fn undelivered(
    tx: &Transaction,
    provider: &PublicKey,
    limit: u32,
) -> Result<Vec<(StatementKind, Vec<u8>)>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT 0, signed FROM (SELECT signed FROM receipts WHERE provider = ?1 AND delivered = 0
             ORDER BY rowid LIMIT ?2)
         UNION ALL
         SELECT 1, signed FROM (SELECT signed FROM payouts WHERE provider = ?1 AND state = ?3
             AND delivered = 0 ORDER BY rowid LIMIT ?2)
         UNION ALL
         SELECT 2, signed FROM (SELECT signed FROM checks WHERE provider = ?1 AND delivered = 0
             ORDER BY rowid LIMIT ?2)",
    )?;
    let rows = statement.query_map(
        params![&provider.as_bytes()[..], limit, PayoutState::Signed],
        |r| Ok((r.get::<_, u8>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )?;
    rows.map(|row| {
        let (kind, bytes) = row?;
        let kind = match kind {
            0 => StatementKind::Receipt,
            1 => StatementKind::Payout,
            _ => StatementKind::Check,
        };
        Ok((kind, bytes))
    })
    .collect()
}

/// Marks statements `provider` confirmed storing.
pub fn mark_delivered(
    tx: &Transaction,
    provider: &PublicKey,
    ids: &[Id],
) -> Result<(), StoreError> {
    for table in ["receipts", "payouts", "checks"] {
        let mut mark = tx.prepare_cached(&format!(
            "UPDATE {table} SET delivered = 1 WHERE id = ?1 AND provider = ?2"
        ))?;
        for statement_id in ids {
            mark.execute(params![&statement_id.0[..], &provider.as_bytes()[..]])?;
        }
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
