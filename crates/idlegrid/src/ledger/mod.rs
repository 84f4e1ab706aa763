//! The provider's ledger: every receipt and payout its pools have signed for it, and the work that
//! earned nothing, in one SQLite file of its own.
//!
//! The provider keeps its own record rather than trusting the pool's: a statement enters the ledger only
//! after its signature has been checked against the pool it came from, and it is kept whole (its signed
//! bytes), so what the ledger claims can be proven to anyone later. Statements are idempotent by id: one
//! delivered again after a crash or a reconnect counts once. Each write is one transaction in a WAL
//! database synced in full, so a refusal leaves nothing behind and an acknowledged write survives a
//! crash.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use iroh::PublicKey;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::amount::Amount;
use crate::sqlite::{self, Durability, Schema};

mod chain;
use crate::statement::{Check, Id, Payout, Receipt, Signed, Statement, StatementError, now_ms};
pub use chain::{PayoutToCheck, SignedStatements};

/// Reasons and names for unpaid work come from the pool without a signature; capped so that a pool
/// cannot grow the ledger without bound.
const MAX_TEXT_CHARS: usize = 500;

const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE payouts (
    id             TEXT PRIMARY KEY CHECK (length(id) = 64),
    pool           TEXT NOT NULL,
    amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
    rail           TEXT NOT NULL,
    reference      TEXT NOT NULL,
    issued_at_ms   INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    signed         BLOB NOT NULL
) STRICT;

CREATE TABLE receipts (
    id             TEXT PRIMARY KEY CHECK (length(id) = 64),
    pool           TEXT NOT NULL,
    job            TEXT NOT NULL,
    job_name       TEXT NOT NULL,
    amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
    output_hash    TEXT NOT NULL,
    issued_at_ms   INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    signed         BLOB NOT NULL,
    paid_by        TEXT REFERENCES payouts (id)
) STRICT;
CREATE INDEX receipts_paid_by ON receipts (paid_by);

CREATE TABLE unpaid_work (
    pool           TEXT NOT NULL,
    job            TEXT NOT NULL,
    job_name       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    UNIQUE (pool, job, at_ms, reason)
) STRICT;
";

/// Checks: the pool's signed word on each unpaid canary this provider ran, once it was judged.
const SCHEMA_V2: &str = "
CREATE TABLE checks (
    id             TEXT PRIMARY KEY CHECK (length(id) = 64),
    pool           TEXT NOT NULL,
    job            TEXT NOT NULL,
    job_name       TEXT NOT NULL,
    passed         INTEGER NOT NULL CHECK (passed IN (0, 1)),
    issued_at_ms   INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    signed         BLOB NOT NULL
) STRICT;
";

/// Payouts on a chain (see `ledger::chain`): each payout's status and what the provider's own check
/// of the chain found; the pools' unsigned notices of payouts on their way; the chain each pool pays
/// on; and the addresses this provider has bound, the only ones a payout to it may pay.
const SCHEMA_V3: &str = "
ALTER TABLE payouts ADD COLUMN status TEXT NOT NULL DEFAULT 'iou'
    CHECK (status IN ('pending', 'confirmed', 'not_found', 'iou'));
ALTER TABLE payouts ADD COLUMN block INTEGER;
ALTER TABLE payouts ADD COLUMN confirmations INTEGER;
ALTER TABLE payouts ADD COLUMN checked_via TEXT;
ALTER TABLE payouts ADD COLUMN check_note TEXT;

CREATE TABLE pending_payouts (
    id             TEXT PRIMARY KEY CHECK (length(id) = 64),
    pool           TEXT NOT NULL,
    amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
    receipt_count  INTEGER NOT NULL,
    payment        TEXT NOT NULL,
    seen_at_ms     INTEGER NOT NULL,
    block          INTEGER,
    confirmations  INTEGER,
    checked_via    TEXT
) STRICT;

CREATE TABLE pool_chains (
    pool          TEXT PRIMARY KEY,
    chain         TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE own_addresses (
    address TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    signed  BLOB NOT NULL,
    PRIMARY KEY (address, seq)
) STRICT;
";

/// NORMAL could lose the last commits on power loss; an acknowledged receipt must not vanish.
const SCHEMA: Schema = Schema {
    name: "the ledger",
    steps: &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3],
    durability: Durability::Full,
};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Open(#[from] sqlite::OpenError),
    #[error("ledger database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error("the ledger belongs to identity {ledger}, not to {me}")]
    OtherIdentity { ledger: String, me: String },
    #[error("the {kind} is for provider {provider}, not for this one ({me})")]
    NotMine {
        kind: &'static str,
        provider: String,
        me: String,
    },
    #[error("the {kind} {id} differs from the one already recorded under that id; refused")]
    Conflict { kind: &'static str, id: String },
    #[error(
        "the payout settles receipt {receipt}, but the ledger holds no such receipt from pool {pool}"
    )]
    UnknownReceipt { receipt: String, pool: String },
    #[error("the payout settles receipt {receipt}, which payout {payout} already settled")]
    AlreadyPaid { receipt: String, payout: String },
    #[error("the payout names receipt {receipt} more than once")]
    RepeatedReceipt { receipt: String },
    #[error("the payout settles no receipts")]
    EmptyPayout,
    #[error("the payout is for {claimed}, but the receipts it settles add up to {sum}")]
    PayoutMismatch { claimed: Amount, sum: Amount },
    #[error("the {what} is too large to record")]
    TooLarge { what: &'static str },
    #[error("the ledger holds a damaged entry: {0}")]
    Corrupt(String),
}

/// What a write did: a statement already in the ledger is not an error, it simply counts once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    Duplicate,
}

/// Everything the ledger holds, ready to print or to send to the window.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Earnings {
    /// The provider's public key.
    pub provider: String,
    pub receipts: Vec<ReceiptEntry>,
    /// Receipts not yet settled by a payout.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub balance: Amount,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub paid: Amount,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub total: Amount,
    pub payouts: Vec<PayoutEntry>,
    pub unpaid_work: Vec<UnpaidWork>,
    /// Unpaid checks (canaries) this provider ran, as the pools judged them.
    pub checks: Vec<CheckEntry>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ReceiptEntry {
    pub id: String,
    pub pool: String,
    pub job: String,
    pub job_name: String,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub amount: Amount,
    pub output_hash: String,
    pub issued_at_ms: u64,
    /// The payout that settled it, if one has.
    pub paid_by: Option<String>,
    /// Always true: only verified receipts enter the ledger. Kept so the window can say so.
    pub signature_verified: bool,
}

/// A payout: signed by its pool, or (status pending, `signed` false) a pool's notice of one on its
/// way. On a chain it names the transaction, and its status is what this provider's own check of the
/// chain found; only `confirmed` (and `iou`, a pool's signed word with no chain) counts as paid.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct PayoutEntry {
    pub id: String,
    pub pool: String,
    /// In the token's units, as a decimal string ("0.0012").
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub amount: Amount,
    pub receipt_count: usize,
    pub receipts: Vec<String>,
    pub rail: String,
    pub reference: String,
    pub issued_at_ms: u64,
    pub status: PayoutStatus,
    /// False for a notice the pool has not signed yet.
    pub signed: bool,
    pub chain_id: Option<u64>,
    /// The token's contract address.
    pub token: Option<String>,
    pub symbol: Option<String>,
    /// The address paid.
    pub to: Option<String>,
    pub tx_hash: Option<String>,
    pub block: Option<u64>,
    pub confirmations: Option<u64>,
    /// A link to the transaction, when the pool's chain names an explorer.
    pub explorer_url: Option<String>,
    /// The RPC the last check asked, and whether it was the pool's own (a lying pool could run a
    /// lying RPC).
    pub checked_via: Option<String>,
    pub checked_through_pool: bool,
    /// Why a payout is not found on chain, or why it could not be checked.
    pub note: Option<String>,
}

/// Where a payout stands, as the provider sees it (the window calls it `PayoutState`).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "PayoutState"))]
pub enum PayoutStatus {
    /// On its way: broadcast, or signed and not yet confirmed by this provider's own check.
    Pending,
    /// This provider's own check of the chain found it, with the confirmations asked for.
    Confirmed,
    /// The chain does not show it; never counted as paid.
    NotFound,
    /// The pool's signed word only; no chain.
    Iou,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "pending",
            PayoutStatus::Confirmed => "confirmed",
            PayoutStatus::NotFound => "not_found",
            PayoutStatus::Iou => "iou",
        }
    }

    fn parse(text: &str) -> Result<PayoutStatus, LedgerError> {
        Ok(match text {
            "pending" => PayoutStatus::Pending,
            "confirmed" => PayoutStatus::Confirmed,
            "not_found" => PayoutStatus::NotFound,
            "iou" => PayoutStatus::Iou,
            other => return Err(LedgerError::Corrupt(format!("payout status {other:?}"))),
        })
    }

    /// The words `idlegrid earnings` shows.
    pub fn label(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "pending",
            PayoutStatus::Confirmed => "confirmed on chain",
            PayoutStatus::NotFound => "not found on chain",
            PayoutStatus::Iou => "IOU",
        }
    }

    /// Whether the money is the provider's: paid on chain and checked, or the pool's signed IOU.
    pub fn counts_as_paid(self) -> bool {
        matches!(self, PayoutStatus::Confirmed | PayoutStatus::Iou)
    }
}

/// A check: a job whose answer the pool knew, run unpaid, and whether this provider got it right.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct CheckEntry {
    pub id: String,
    pub pool: String,
    pub job: String,
    pub job_name: String,
    pub passed: bool,
    pub issued_at_ms: u64,
}

/// Work that earned nothing, with the reason a person can read.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct UnpaidWork {
    pub pool: String,
    pub job: String,
    pub job_name: String,
    pub reason: String,
    pub at_ms: u64,
}

/// What one write added to the ledger, as [`Ledger::earnings`] lists it: the news a provider tells
/// whoever shows its earnings, the moment it stores a statement, so nobody polls the file.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerNews {
    Receipt(ReceiptEntry),
    Payout(PayoutEntry),
    Check(CheckEntry),
    Unpaid(UnpaidWork),
}

pub struct Ledger {
    conn: Connection,
    me: PublicKey,
}

impl Ledger {
    /// Opens the ledger at `path` for the provider `me`, creating the file and its schema if needed.
    pub fn open(path: &Path, me: PublicKey) -> Result<Ledger, LedgerError> {
        let mut conn = sqlite::open(path, &SCHEMA)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('provider', ?1)",
            [me.to_string()],
        )?;
        // One file per identity: receipts for another key are not this provider's money.
        let owner: String =
            tx.query_row("SELECT value FROM meta WHERE key = 'provider'", [], |row| {
                row.get(0)
            })?;
        if owner != me.to_string() {
            return Err(LedgerError::OtherIdentity {
                ledger: owner,
                me: me.to_string(),
            });
        }
        tx.commit()?;
        Ok(Ledger { conn, me })
    }

    /// The provider this ledger belongs to.
    pub fn me(&self) -> PublicKey {
        self.me
    }

    /// Verifies `receipt` is signed by `pool` and names `me` as provider, then stores it once.
    ///
    /// The same receipt again (the same facts, even re-signed with a later time by a pool that lost
    /// track of having sent it) is a `Duplicate`; a different one under the same id is a `Conflict`.
    pub fn record_receipt(
        &mut self,
        pool: &PublicKey,
        receipt: &Signed<Receipt>,
    ) -> Result<Recorded, LedgerError> {
        receipt.verify(pool)?;
        let body = &receipt.body;
        self.check_mine("receipt", &body.provider)?;
        let amount = to_sql(body.amount.micros(), "receipt amount")?;
        let issued_at = to_sql(body.issued_at_ms, "receipt time")?;
        let id = receipt.id().to_hex();

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(repeat) = repeat_of(&tx, "receipts", &id, body, pool)? {
            return Ok(repeat);
        }
        tx.execute(
            "INSERT INTO receipts (id, pool, job, job_name, amount_micros, output_hash, issued_at_ms,
                                   recorded_at_ms, signed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                pool.to_string(),
                body.job.to_hex(),
                body.job_name,
                amount,
                body.output_hash.to_hex(),
                issued_at,
                to_sql(now_ms(), "clock")?,
                receipt.to_bytes(),
            ],
        )?;
        tx.commit()?;
        Ok(Recorded::New)
    }

    /// Verifies `check` is signed by `pool` and names `me`, then stores it once.
    pub fn record_check(
        &mut self,
        pool: &PublicKey,
        check: &Signed<Check>,
    ) -> Result<Recorded, LedgerError> {
        check.verify(pool)?;
        let body = &check.body;
        self.check_mine("check", &body.provider)?;
        let issued_at = to_sql(body.issued_at_ms, "check time")?;
        let id = check.id().to_hex();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(repeat) = repeat_of(&tx, "checks", &id, body, pool)? {
            return Ok(repeat);
        }
        tx.execute(
            "INSERT INTO checks (id, pool, job, job_name, passed, issued_at_ms, recorded_at_ms, signed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                pool.to_string(),
                body.job.to_hex(),
                body.job_name,
                body.passed,
                issued_at,
                to_sql(now_ms(), "clock")?,
                check.to_bytes(),
            ],
        )?;
        tx.commit()?;
        Ok(Recorded::New)
    }

    /// Verifies the payout is signed by `pool` and names `me`, that every receipt it settles is in the
    /// ledger from that pool and unpaid, and that its amount is exactly their sum; then stores it and
    /// marks the receipts paid, all in one transaction.
    pub fn record_payout(
        &mut self,
        pool: &PublicKey,
        payout: &Signed<Payout>,
    ) -> Result<Recorded, LedgerError> {
        payout.verify(pool)?;
        let body = &payout.body;
        self.check_mine("payout", &body.provider)?;
        if body.receipts.is_empty() {
            return Err(LedgerError::EmptyPayout);
        }
        // A receipt listed twice would be paid for twice.
        let mut seen = HashSet::new();
        if let Some(repeated) = body.receipts.iter().find(|id| !seen.insert(**id)) {
            return Err(LedgerError::RepeatedReceipt {
                receipt: repeated.to_hex(),
            });
        }
        let amount = to_sql(body.amount.micros(), "payout amount")?;
        let issued_at = to_sql(body.issued_at_ms, "payout time")?;
        let id = payout.id().to_hex();
        let pool_key = pool.to_string();

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(repeat) = repeat_of(&tx, "payouts", &id, body, pool)? {
            return Ok(repeat);
        }
        // A payout on a chain is pending until this provider's own check of the chain confirms it;
        // any other rail is the pool's signed word.
        let status = if body.rail == crate::onchain::RAIL {
            PayoutStatus::Pending
        } else {
            PayoutStatus::Iou
        };
        tx.execute(
            "INSERT INTO payouts (id, pool, amount_micros, rail, reference, issued_at_ms,
                                  recorded_at_ms, signed, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                pool_key,
                amount,
                body.rail,
                body.reference,
                issued_at,
                to_sql(now_ms(), "clock")?,
                payout.to_bytes(),
                status.as_str(),
            ],
        )?;
        tx.execute("DELETE FROM pending_payouts WHERE id = ?1", [&id])?;
        // Receipts are marked as they are checked; any refusal below drops `tx`, which rolls back the
        // marks already made together with the payout row.
        let mut sum = Amount::ZERO;
        for receipt in &body.receipts {
            let receipt = receipt.to_hex();
            let row: Option<(String, i64, Option<String>)> = tx
                .query_row(
                    "SELECT pool, amount_micros, paid_by FROM receipts WHERE id = ?1",
                    [&receipt],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let micros = match row {
                Some((from, micros, None)) if from == pool_key => micros,
                Some((from, _, Some(payout))) if from == pool_key => {
                    return Err(LedgerError::AlreadyPaid { receipt, payout });
                }
                _ => {
                    return Err(LedgerError::UnknownReceipt {
                        receipt,
                        pool: pool_key,
                    });
                }
            };
            sum = sum
                .checked_add(Amount::from_micros(from_sql(micros, "receipt amount")?))
                .ok_or(LedgerError::TooLarge {
                    what: "sum of the payout's receipts",
                })?;
            tx.execute(
                "UPDATE receipts SET paid_by = ?1 WHERE id = ?2",
                [&id, &receipt],
            )?;
        }
        if sum != body.amount {
            return Err(LedgerError::PayoutMismatch {
                claimed: body.amount,
                sum,
            });
        }
        tx.commit()?;
        Ok(Recorded::New)
    }

    /// Work that earned nothing: rejected by a quorum, timed out, given back. For the app's "unpaid
    /// work" list. Recording the same event twice keeps one entry; the entry is returned when new.
    pub fn record_unpaid(
        &mut self,
        pool: &PublicKey,
        job: Id,
        job_name: &str,
        reason: &str,
        at_ms: u64,
    ) -> Result<Option<UnpaidWork>, LedgerError> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO unpaid_work (pool, job, job_name, reason, at_ms, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                pool.to_string(),
                job.to_hex(),
                capped(job_name),
                capped(reason),
                to_sql(at_ms, "time of the unpaid work")?,
                to_sql(now_ms(), "clock")?,
            ],
        )?;
        if added == 0 {
            return Ok(None);
        }
        let rowid = self.conn.last_insert_rowid();
        let sql = format!("SELECT {UNPAID_COLUMNS} FROM unpaid_work WHERE rowid = ?1");
        self.conn
            .query_row_and_then(&sql, [rowid], unpaid_from_row)
            .map(Some)
    }

    /// The receipt stored under `id`.
    pub fn receipt(&self, id: &str) -> Result<Option<ReceiptEntry>, LedgerError> {
        let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts WHERE id = ?1");
        one(&self.conn, &sql, id, receipt_from_row)
    }

    /// The payout stored under `id`, with the receipts it settled.
    /// The payout stored under `id`, or the pool's notice of it while it is on its way.
    pub fn payout(&self, id: &str) -> Result<Option<PayoutEntry>, LedgerError> {
        let mut settled = self.conn.prepare(SETTLED)?;
        let sql = format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = ?1");
        let signed = one(&self.conn, &sql, id, |row| {
            payout_from_row(row, &mut settled)
        })?;
        let mut entry = match signed {
            Some(entry) => Some(entry),
            None => chain::pending_entries(&self.conn)?
                .into_iter()
                .find(|p| p.id == id),
        };
        chain::add_explorer_links(&self.conn, entry.as_mut_slice())?;
        Ok(entry)
    }

    /// The check stored under `id`.
    pub fn check(&self, id: &str) -> Result<Option<CheckEntry>, LedgerError> {
        let sql = format!("SELECT {CHECK_COLUMNS} FROM checks WHERE id = ?1");
        one(&self.conn, &sql, id, check_from_row)
    }

    /// Everything in the ledger, oldest first, with the balance summed by SQLite in integers (its `SUM`
    /// fails on overflow rather than wrapping or going to floating point).
    pub fn earnings(&self) -> Result<Earnings, LedgerError> {
        // One read transaction, so the lists and the sums agree even while another process writes.
        let tx = self.conn.unchecked_transaction()?;
        // Receipts count as paid only through a payout that counts: confirmed on chain, or an IOU.
        let (balance, paid, total): (i64, i64, i64) = tx.query_row(
            "SELECT COALESCE(SUM(r.amount_micros) FILTER (WHERE p.status IS NULL
                        OR p.status NOT IN ('confirmed', 'iou')), 0),
                    COALESCE(SUM(r.amount_micros) FILTER (WHERE p.status IN ('confirmed', 'iou')), 0),
                    COALESCE(SUM(r.amount_micros), 0)
             FROM receipts r LEFT JOIN payouts p ON p.id = r.paid_by",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;

        let receipts = tx
            .prepare(&format!(
                "SELECT {RECEIPT_COLUMNS} FROM receipts ORDER BY issued_at_ms, id"
            ))?
            .query_and_then([], receipt_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut settled = tx.prepare(SETTLED)?;
        let mut payouts = tx
            .prepare(&format!(
                "SELECT {PAYOUT_COLUMNS} FROM payouts ORDER BY issued_at_ms, id"
            ))?
            .query_and_then([], |row| payout_from_row(row, &mut settled))?
            .collect::<Result<Vec<_>, _>>()?;
        payouts.extend(chain::pending_entries(&tx)?);
        chain::add_explorer_links(&tx, &mut payouts)?;
        let unpaid_work = tx
            .prepare(&format!(
                "SELECT {UNPAID_COLUMNS} FROM unpaid_work ORDER BY at_ms, rowid"
            ))?
            .query_and_then([], unpaid_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let checks = tx
            .prepare(&format!(
                "SELECT {CHECK_COLUMNS} FROM checks ORDER BY issued_at_ms, id"
            ))?
            .query_and_then([], check_from_row)?
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Earnings {
            provider: self.me.to_string(),
            receipts,
            balance: amount_from_sql(balance)?,
            paid: amount_from_sql(paid)?,
            total: amount_from_sql(total)?,
            payouts,
            unpaid_work,
            checks,
        })
    }

    /// Re-verifies every stored statement from its signed bytes and checks that the columns the
    /// balance is computed from still say what was signed. Returns how many statements were checked.
    pub fn audit(&self) -> Result<usize, LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut checked = 0;
        let mut receipts = tx.prepare("SELECT id, pool, amount_micros, signed FROM receipts")?;
        let mut rows = receipts.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let pool = parse_key(&row.get::<_, String>(1)?)?;
            let signed = decode::<Receipt>(&row.get::<_, Vec<u8>>(3)?)?;
            signed.verify(&pool)?;
            let amount = amount_from_sql(row.get(2)?)?;
            if signed.id().to_hex() != id || signed.body.amount != amount {
                return Err(LedgerError::Corrupt(format!(
                    "receipt {id} does not match what was signed"
                )));
            }
            self.check_mine("receipt", &signed.body.provider)?;
            checked += 1;
        }
        let mut payouts = tx.prepare("SELECT id, pool, amount_micros, signed FROM payouts")?;
        let mut rows = payouts.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let pool = parse_key(&row.get::<_, String>(1)?)?;
            let signed = decode::<Payout>(&row.get::<_, Vec<u8>>(3)?)?;
            signed.verify(&pool)?;
            let amount = amount_from_sql(row.get(2)?)?;
            let mut settled: Vec<String> = tx
                .prepare_cached("SELECT id FROM receipts WHERE paid_by = ?1 ORDER BY id")?
                .query_map([&id], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut signed_receipts: Vec<String> =
                signed.body.receipts.iter().map(Id::to_hex).collect();
            settled.sort();
            signed_receipts.sort();
            if signed.id().to_hex() != id
                || signed.body.amount != amount
                || settled != signed_receipts
            {
                return Err(LedgerError::Corrupt(format!(
                    "payout {id} does not match what was signed"
                )));
            }
            self.check_mine("payout", &signed.body.provider)?;
            checked += 1;
        }
        Ok(checked)
    }

    fn check_mine(&self, kind: &'static str, provider: &PublicKey) -> Result<(), LedgerError> {
        if *provider == self.me {
            Ok(())
        } else {
            Err(LedgerError::NotMine {
                kind,
                provider: provider.to_string(),
                me: self.me.to_string(),
            })
        }
    }
}

/// The statement stored under `id` in `table`, decoded from its signed bytes.
fn stored_statement<T: Statement>(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
) -> Result<Option<Signed<T>>, LedgerError> {
    let bytes: Option<Vec<u8>> = tx
        .query_row(
            &format!("SELECT signed FROM {table} WHERE id = ?1"),
            [id],
            |row| row.get(0),
        )
        .optional()?;
    bytes.map(|bytes| decode(&bytes)).transpose()
}

/// A statement already stored under `id`: `Duplicate` when it states the same facts (its time
/// aside: a pool that lost track of sending it may re-sign it later), a `Conflict` when it states
/// others; `None` when it is new.
fn repeat_of<T: Statement>(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
    body: &T,
    pool: &PublicKey,
) -> Result<Option<Recorded>, LedgerError> {
    let Some(stored) = stored_statement::<T>(tx, table, id)? else {
        return Ok(None);
    };
    let mut same = stored.body;
    same.set_issued_at_ms(body.issued_at_ms());
    if same == *body {
        return Ok(Some(Recorded::Duplicate));
    }
    let kind = T::kind();
    tracing::warn!(%id, %pool, kind, "pool sent a statement that contradicts one it sent before");
    Err(LedgerError::Conflict {
        kind,
        id: id.to_owned(),
    })
}

fn decode<T: Statement>(bytes: &[u8]) -> Result<Signed<T>, LedgerError> {
    Signed::from_bytes(bytes).map_err(|e| LedgerError::Corrupt(e.to_string()))
}

fn parse_key(text: &str) -> Result<PublicKey, LedgerError> {
    text.parse()
        .map_err(|_| LedgerError::Corrupt(format!("`{text}` is not a public key")))
}

/// SQLite integers are signed; values past `i64::MAX` are refused rather than wrapped.
fn to_sql(value: u64, what: &'static str) -> Result<i64, LedgerError> {
    i64::try_from(value).map_err(|_| LedgerError::TooLarge { what })
}

// Each entry read one way, for `earnings` and for the news of one write alike.
const RECEIPT_COLUMNS: &str =
    "id, pool, job, job_name, amount_micros, output_hash, issued_at_ms, paid_by";
const PAYOUT_COLUMNS: &str = "id, pool, amount_micros, rail, reference, issued_at_ms, status, block, \
                              confirmations, checked_via, check_note";
const CHECK_COLUMNS: &str = "id, pool, job, job_name, passed, issued_at_ms";
const UNPAID_COLUMNS: &str = "pool, job, job_name, reason, at_ms";
/// The receipts a payout settled.
const SETTLED: &str = "SELECT id FROM receipts WHERE paid_by = ?1 ORDER BY issued_at_ms, id";

/// The entry `sql` selects by `id`, if there is one.
fn one<T>(
    conn: &Connection,
    sql: &str,
    id: &str,
    read: impl FnMut(&rusqlite::Row<'_>) -> Result<T, LedgerError>,
) -> Result<Option<T>, LedgerError> {
    conn.prepare(sql)?
        .query_and_then([id], read)?
        .next()
        .transpose()
}

fn receipt_from_row(row: &rusqlite::Row<'_>) -> Result<ReceiptEntry, LedgerError> {
    Ok(ReceiptEntry {
        id: row.get(0)?,
        pool: row.get(1)?,
        job: row.get(2)?,
        job_name: row.get(3)?,
        amount: amount_from_sql(row.get(4)?)?,
        output_hash: row.get(5)?,
        issued_at_ms: from_sql(row.get(6)?, "receipt time")?,
        paid_by: row.get(7)?,
        signature_verified: true,
    })
}

fn payout_from_row(
    row: &rusqlite::Row<'_>,
    settled: &mut rusqlite::Statement<'_>,
) -> Result<PayoutEntry, LedgerError> {
    let id: String = row.get(0)?;
    let receipts = settled
        .query_map([&id], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    let rail: String = row.get(3)?;
    let reference: String = row.get(4)?;
    let checked_via: Option<String> = row.get(9)?;
    let entry = PayoutEntry {
        receipt_count: receipts.len(),
        receipts,
        id,
        pool: row.get(1)?,
        amount: amount_from_sql(row.get(2)?)?,
        issued_at_ms: from_sql(row.get(5)?, "payout time")?,
        status: PayoutStatus::parse(&row.get::<_, String>(6)?)?,
        signed: true,
        block: row
            .get::<_, Option<i64>>(7)?
            .and_then(|b| u64::try_from(b).ok()),
        confirmations: row
            .get::<_, Option<i64>>(8)?
            .and_then(|c| u64::try_from(c).ok()),
        checked_through_pool: false,
        checked_via,
        note: row.get(10)?,
        ..PayoutEntry::blank(rail, reference)
    };
    Ok(chain::with_payment_fields(entry))
}

fn check_from_row(row: &rusqlite::Row<'_>) -> Result<CheckEntry, LedgerError> {
    Ok(CheckEntry {
        id: row.get(0)?,
        pool: row.get(1)?,
        job: row.get(2)?,
        job_name: row.get(3)?,
        passed: row.get(4)?,
        issued_at_ms: from_sql(row.get(5)?, "check time")?,
    })
}

fn unpaid_from_row(row: &rusqlite::Row<'_>) -> Result<UnpaidWork, LedgerError> {
    Ok(UnpaidWork {
        pool: row.get(0)?,
        job: row.get(1)?,
        job_name: row.get(2)?,
        reason: row.get(3)?,
        at_ms: from_sql(row.get(4)?, "time of the unpaid work")?,
    })
}

fn from_sql(value: i64, what: &str) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::Corrupt(format!("negative {what}: {value}")))
}

fn amount_from_sql(micros: i64) -> Result<Amount, LedgerError> {
    from_sql(micros, "amount").map(Amount::from_micros)
}

fn capped(text: &str) -> &str {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

impl Earnings {
    /// The ledger as a person reads it: receipts, the sums, payouts and unpaid work. Times are UTC.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(out, "Ledger of provider {}", self.provider);
        let _ = writeln!(out);
        if self.receipts.is_empty() {
            let _ = writeln!(out, "No receipts yet.");
        } else {
            let _ = writeln!(out, "Receipts");
            let _ = writeln!(
                out,
                "  {:<16}  {:<10}  {:<32}  {:>14}  paid by",
                "date (UTC)", "pool", "job", "amount"
            );
            for receipt in &self.receipts {
                let job = format!(
                    "{} ({})",
                    printable(&receipt.job_name, 20),
                    short(&receipt.job)
                );
                let _ = writeln!(
                    out,
                    "  {:<16}  {:<10}  {:<32}  {:>14}  {}",
                    utc(receipt.issued_at_ms),
                    short(&receipt.pool),
                    job,
                    receipt.amount.to_string(),
                    receipt.paid_by.as_deref().map_or("unpaid", short),
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "Balance (unpaid): {}", self.balance);
        let _ = writeln!(out, "Paid:             {}", self.paid);
        let _ = writeln!(out, "Total earned:     {}", self.total);
        let _ = writeln!(out);
        if self.payouts.is_empty() {
            let _ = writeln!(out, "No payouts yet.");
        } else {
            let _ = writeln!(out, "Payouts");
            let _ = writeln!(
                out,
                "  {:<16}  {:<10}  {:<10}  {:>8}  {:>20}  {:<18}  payment",
                "date (UTC)", "payout", "pool", "receipts", "amount", "status"
            );
            for payout in &self.payouts {
                let _ = writeln!(
                    out,
                    "  {:<16}  {:<10}  {:<10}  {:>8}  {:>20}  {:<18}  {}",
                    utc(payout.issued_at_ms),
                    short(&payout.id),
                    short(&payout.pool),
                    payout.receipt_count,
                    amount_with_symbol(payout),
                    payout.status.label(),
                    payment(payout),
                );
            }
        }
        if !self.unpaid_work.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "Unpaid work");
            let _ = writeln!(
                out,
                "  {:<16}  {:<10}  {:<32}  reason",
                "date (UTC)", "pool", "job"
            );
            for work in &self.unpaid_work {
                let job = format!("{} ({})", printable(&work.job_name, 20), short(&work.job));
                let _ = writeln!(
                    out,
                    "  {:<16}  {:<10}  {:<32}  {}",
                    utc(work.at_ms),
                    short(&work.pool),
                    job,
                    printable(&work.reason, 80),
                );
            }
        }
        if !self.checks.is_empty() {
            let passed = self.checks.iter().filter(|c| c.passed).count();
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "Checks (unpaid jobs of known answer): {passed} of {} passed",
                self.checks.len()
            );
            for check in &self.checks {
                let job = format!("{} ({})", printable(&check.job_name, 20), short(&check.job));
                let _ = writeln!(
                    out,
                    "  {:<16}  {:<10}  {:<32}  {}",
                    utc(check.issued_at_ms),
                    short(&check.pool),
                    job,
                    if check.passed { "passed" } else { "failed" },
                );
            }
        }
        out
    }
}

/// The amount and, for a payout on a chain, the token's symbol.
fn amount_with_symbol(payout: &PayoutEntry) -> String {
    match &payout.symbol {
        Some(symbol) => format!("{} {}", payout.amount, printable(symbol, 12)),
        None => payout.amount.to_string(),
    }
}

/// What identifies the payment: the transaction on a chain (and why the chain does not show it), or
/// the rail and the pool's reference for an IOU.
fn payment(payout: &PayoutEntry) -> String {
    let Some(tx_hash) = &payout.tx_hash else {
        return format!(
            "{}: {}",
            printable(&payout.rail, 20),
            printable(&payout.reference, 40)
        );
    };
    let mut text = format!("tx {}", printable(tx_hash, 66));
    if let Some(block) = payout.block {
        let _ = write!(text, " in block {block}");
    }
    if let Some(note) = &payout.note {
        let _ = write!(text, " ({})", printable(note, 80));
    }
    text
}

/// The first ten hex digits of a key or id: enough to tell them apart on screen.
fn short(hex: &str) -> &str {
    hex.get(..10).unwrap_or(hex)
}

/// Names and reasons come from pools; control characters in them must not reach the terminal.
fn printable(text: &str, max_chars: usize) -> String {
    let mut shown: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        shown.pop();
        shown.push('…');
    }
    shown
}

/// "YYYY-MM-DD HH:MM" in UTC for milliseconds since the Unix epoch.
fn utc(ms: u64) -> String {
    let seconds = ms / 1000;
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let minutes = seconds % 86_400 / 60;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01. Counts in 400-year eras (146,097 days each),
/// with years starting on 1 March so that the leap day falls at the end of a year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the origin to 0000-03-01.
    let from_0000_03_01 = days + 719_468;
    let era = from_0000_03_01 / 146_097;
    let day_of_era = from_0000_03_01 % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, of lengths 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 28/29.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;
    use tempfile::TempDir;

    use super::*;

    const T0: u64 = 1_700_000_000_000;

    struct Setup {
        _dir: TempDir,
        path: std::path::PathBuf,
        pool: SecretKey,
        me: SecretKey,
        ledger: Ledger,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("ledger.sqlite");
        let me = SecretKey::generate();
        let ledger = Ledger::open(&path, me.public()).unwrap();
        Setup {
            _dir: dir,
            path,
            pool: SecretKey::generate(),
            me,
            ledger,
        }
    }

    fn receipt(pool: &SecretKey, provider: PublicKey, job: u32, micros: u64) -> Receipt {
        let mut job_id = [0; 32];
        job_id[..4].copy_from_slice(&job.to_le_bytes());
        Receipt {
            pool: pool.public(),
            provider,
            job: Id(job_id),
            job_name: format!("job-{job}"),
            amount: Amount::from_micros(micros),
            output_hash: Id(*blake3::hash(&job.to_le_bytes()).as_bytes()),
            issued_at_ms: T0 + u64::from(job) * 1000,
        }
    }

    fn signed_receipt(s: &Setup, job: u32, micros: u64) -> Signed<Receipt> {
        Signed::sign(receipt(&s.pool, s.me.public(), job, micros), &s.pool)
    }

    fn payout_for(s: &Setup, receipts: &[&Signed<Receipt>], micros: u64) -> Signed<Payout> {
        let body = Payout {
            pool: s.pool.public(),
            provider: s.me.public(),
            receipts: receipts.iter().map(|r| r.id()).collect(),
            amount: Amount::from_micros(micros),
            rail: "ledger".into(),
            reference: "transfer-1".into(),
            issued_at_ms: T0 + 1_000_000,
        };
        Signed::sign(body, &s.pool)
    }

    fn micros(amount: Amount) -> u64 {
        amount.micros()
    }

    #[test]
    fn a_verified_receipt_is_stored() {
        let mut s = setup();
        let r = signed_receipt(&s, 1, 500);
        assert_eq!(
            s.ledger.record_receipt(&s.pool.public(), &r).unwrap(),
            Recorded::New
        );
        let e = s.ledger.earnings().unwrap();
        assert_eq!(e.receipts.len(), 1);
        let entry = &e.receipts[0];
        assert_eq!(entry.id, r.id().to_hex());
        assert_eq!(entry.pool, s.pool.public().to_string());
        assert_eq!(entry.job, r.body.job.to_hex());
        assert_eq!(entry.job_name, "job-1");
        assert_eq!(entry.amount, Amount::from_micros(500));
        assert_eq!(entry.output_hash, r.body.output_hash.to_hex());
        assert_eq!(entry.issued_at_ms, r.body.issued_at_ms);
        assert_eq!(entry.paid_by, None);
        assert!(entry.signature_verified);
        assert_eq!(e.balance, Amount::from_micros(500));
        assert_eq!(e.paid, Amount::ZERO);
        assert_eq!(e.total, Amount::from_micros(500));
        assert_eq!(s.ledger.audit().unwrap(), 1);
    }

    #[test]
    fn the_balance_adds_up_exactly_over_a_thousand_receipts() {
        let mut s = setup();
        let amount: Amount = "0.000333".parse().unwrap();
        for job in 0..1000 {
            let r = signed_receipt(&s, job, amount.micros());
            s.ledger.record_receipt(&s.pool.public(), &r).unwrap();
        }
        let e = s.ledger.earnings().unwrap();
        assert_eq!(e.receipts.len(), 1000);
        assert_eq!(e.balance.to_string(), "0.333");
        assert_eq!(micros(e.balance), 333_000);
        assert_eq!(e.total, e.balance);
    }

    #[test]
    fn the_same_receipt_twice_counts_once() {
        let mut s = setup();
        let r = signed_receipt(&s, 1, 500);
        let pool = s.pool.public();
        assert_eq!(s.ledger.record_receipt(&pool, &r).unwrap(), Recorded::New);
        assert_eq!(
            s.ledger.record_receipt(&pool, &r).unwrap(),
            Recorded::Duplicate
        );
        // Re-signed later by a pool that lost track of having sent it: the same fact.
        let mut later = r.body.clone();
        later.issued_at_ms += 60_000;
        let later = Signed::sign(later, &s.pool);
        assert_eq!(
            s.ledger.record_receipt(&pool, &later).unwrap(),
            Recorded::Duplicate
        );
        let e = s.ledger.earnings().unwrap();
        assert_eq!(e.receipts.len(), 1);
        assert_eq!(e.receipts[0].issued_at_ms, r.body.issued_at_ms);
        assert_eq!(e.balance, Amount::from_micros(500));
    }

    #[test]
    fn a_forged_receipt_is_refused() {
        let mut s = setup();
        let before = s.ledger.earnings().unwrap();
        let forger = SecretKey::generate();
        let mut forged = Signed::sign(receipt(&forger, s.me.public(), 1, 500), &forger);
        forged.body.pool = s.pool.public();
        let err = s
            .ledger
            .record_receipt(&s.pool.public(), &forged)
            .unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Statement(StatementError::BadSignature { kind: "receipt" })
            ),
            "{err}"
        );
        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn a_receipt_altered_after_signing_is_refused() {
        let mut s = setup();
        let before = s.ledger.earnings().unwrap();
        let mut altered = signed_receipt(&s, 1, 500);
        altered.body.amount = Amount::from_micros(500_000_000);
        let err = s
            .ledger
            .record_receipt(&s.pool.public(), &altered)
            .unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Statement(StatementError::BadSignature { .. })
            ),
            "{err}"
        );
        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn a_receipt_from_another_pool_is_refused() {
        let mut s = setup();
        let before = s.ledger.earnings().unwrap();
        let other = SecretKey::generate();
        let honest = Signed::sign(receipt(&other, s.me.public(), 1, 500), &other);
        let err = s
            .ledger
            .record_receipt(&s.pool.public(), &honest)
            .unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Statement(StatementError::WrongSigner { .. })
            ),
            "{err}"
        );
        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn a_receipt_for_another_provider_is_refused() {
        let mut s = setup();
        let before = s.ledger.earnings().unwrap();
        let someone = SecretKey::generate().public();
        let theirs = Signed::sign(receipt(&s.pool, someone, 1, 500), &s.pool);
        let err = s
            .ledger
            .record_receipt(&s.pool.public(), &theirs)
            .unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::NotMine {
                    kind: "receipt",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn a_replayed_receipt_with_altered_content_is_a_conflict() {
        let mut s = setup();
        let pool = s.pool.public();
        let r = signed_receipt(&s, 1, 500);
        s.ledger.record_receipt(&pool, &r).unwrap();
        let before = s.ledger.earnings().unwrap();
        // Same pool, job and provider (so the same id), but a larger amount.
        let inflated = signed_receipt(&s, 1, 5_000);
        assert_eq!(inflated.id(), r.id());
        let err = s.ledger.record_receipt(&pool, &inflated).unwrap_err();
        assert!(
            matches!(err, LedgerError::Conflict { kind: "receipt", ref id } if *id == r.id().to_hex())
        );
        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn a_payout_settles_its_receipts() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        let b = signed_receipt(&s, 2, 250);
        let c = signed_receipt(&s, 3, 1);
        for r in [&a, &b, &c] {
            s.ledger.record_receipt(&pool, r).unwrap();
        }
        let payout = payout_for(&s, &[&a, &b], 750);
        assert_eq!(
            s.ledger.record_payout(&pool, &payout).unwrap(),
            Recorded::New
        );
        let e = s.ledger.earnings().unwrap();
        assert_eq!(e.balance, Amount::from_micros(1));
        assert_eq!(e.paid, Amount::from_micros(750));
        assert_eq!(e.total, Amount::from_micros(751));
        assert_eq!(e.payouts.len(), 1);
        let entry = &e.payouts[0];
        assert_eq!(entry.id, payout.id().to_hex());
        assert_eq!(entry.amount, Amount::from_micros(750));
        assert_eq!(entry.receipt_count, 2);
        assert_eq!(entry.receipts, vec![a.id().to_hex(), b.id().to_hex()]);
        assert_eq!(
            (entry.rail.as_str(), entry.reference.as_str()),
            ("ledger", "transfer-1")
        );
        let paid_by: Vec<_> = e.receipts.iter().map(|r| r.paid_by.clone()).collect();
        assert_eq!(
            paid_by,
            vec![Some(payout.id().to_hex()), Some(payout.id().to_hex()), None]
        );

        let last = payout_for(&s, &[&c], 1);
        s.ledger.record_payout(&pool, &last).unwrap();
        let e = s.ledger.earnings().unwrap();
        assert_eq!(e.balance, Amount::ZERO);
        assert_eq!(e.paid, Amount::from_micros(751));
        assert_eq!(s.ledger.audit().unwrap(), 5);
    }

    #[test]
    fn the_same_payout_twice_counts_once() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        s.ledger.record_receipt(&pool, &a).unwrap();
        let payout = payout_for(&s, &[&a], 500);
        assert_eq!(
            s.ledger.record_payout(&pool, &payout).unwrap(),
            Recorded::New
        );
        let after_first = s.ledger.earnings().unwrap();
        assert_eq!(
            s.ledger.record_payout(&pool, &payout).unwrap(),
            Recorded::Duplicate
        );
        assert_eq!(s.ledger.earnings().unwrap(), after_first);
        assert_eq!(after_first.paid, Amount::from_micros(500));
        assert_eq!(after_first.payouts.len(), 1);

        // The same settlement with another reference is a contradiction, not a repeat.
        let mut other = payout.body.clone();
        other.reference = "transfer-2".into();
        let err = s
            .ledger
            .record_payout(&pool, &Signed::sign(other, &s.pool))
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::Conflict { kind: "payout", .. }),
            "{err}"
        );
        assert_eq!(s.ledger.earnings().unwrap(), after_first);
    }

    #[test]
    fn a_payout_whose_amount_is_not_the_sum_is_refused() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        let b = signed_receipt(&s, 2, 250);
        s.ledger.record_receipt(&pool, &a).unwrap();
        s.ledger.record_receipt(&pool, &b).unwrap();
        let before = s.ledger.earnings().unwrap();
        for wrong in [749, 751, 0] {
            let err = s
                .ledger
                .record_payout(&pool, &payout_for(&s, &[&a, &b], wrong))
                .unwrap_err();
            assert!(
                matches!(err, LedgerError::PayoutMismatch { claimed, sum }
                    if claimed.micros() == wrong && sum.micros() == 750),
                "{err}"
            );
        }
        // Both receipts were marked before the sum was compared: the rollback undid the marks.
        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn a_payout_naming_an_unknown_receipt_is_refused() {
        let mut s = setup();
        let pool = s.pool.public();
        let known = signed_receipt(&s, 1, 500);
        s.ledger.record_receipt(&pool, &known).unwrap();
        let before = s.ledger.earnings().unwrap();
        let never_received = signed_receipt(&s, 2, 250);
        let payout = payout_for(&s, &[&known, &never_received], 750);
        let err = s.ledger.record_payout(&pool, &payout).unwrap_err();
        assert!(
            matches!(err, LedgerError::UnknownReceipt { ref receipt, .. }
                if *receipt == never_received.id().to_hex()),
            "{err}"
        );
        // The known receipt, checked and marked first, is unpaid again; no payout row remains.
        assert_eq!(s.ledger.earnings().unwrap(), before);
        // And the payout can still be delivered once the pool fixes it.
        s.ledger
            .record_payout(&pool, &payout_for(&s, &[&known], 500))
            .unwrap();
    }

    #[test]
    fn a_payout_cannot_settle_another_pools_receipt() {
        let mut s = setup();
        let other = SecretKey::generate();
        let theirs = Signed::sign(receipt(&other, s.me.public(), 1, 500), &other);
        s.ledger.record_receipt(&other.public(), &theirs).unwrap();
        let before = s.ledger.earnings().unwrap();
        let payout = payout_for(&s, &[&theirs], 500);
        let err = s
            .ledger
            .record_payout(&s.pool.public(), &payout)
            .unwrap_err();
        assert!(matches!(err, LedgerError::UnknownReceipt { .. }), "{err}");
        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn a_receipt_paid_by_another_payout_cannot_be_paid_again() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        let b = signed_receipt(&s, 2, 250);
        s.ledger.record_receipt(&pool, &a).unwrap();
        s.ledger.record_receipt(&pool, &b).unwrap();
        let first = payout_for(&s, &[&a], 500);
        s.ledger.record_payout(&pool, &first).unwrap();
        let before = s.ledger.earnings().unwrap();
        // A different set of receipts, so a different payout id, that pays `a` again.
        let again = payout_for(&s, &[&b, &a], 750);
        let err = s.ledger.record_payout(&pool, &again).unwrap_err();
        assert!(
            matches!(err, LedgerError::AlreadyPaid { ref receipt, ref payout }
                if *receipt == a.id().to_hex() && *payout == first.id().to_hex()),
            "{err}"
        );
        // `b` was marked before `a` was found paid; the refusal left it unpaid.
        assert_eq!(s.ledger.earnings().unwrap(), before);
        assert_eq!(before.balance, Amount::from_micros(250));
    }

    #[test]
    fn malformed_payouts_are_refused() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        s.ledger.record_receipt(&pool, &a).unwrap();
        let before = s.ledger.earnings().unwrap();

        let err = s
            .ledger
            .record_payout(&pool, &payout_for(&s, &[&a, &a], 1000))
            .unwrap_err();
        assert!(matches!(err, LedgerError::RepeatedReceipt { .. }), "{err}");
        let err = s
            .ledger
            .record_payout(&pool, &payout_for(&s, &[], 0))
            .unwrap_err();
        assert!(matches!(err, LedgerError::EmptyPayout), "{err}");

        let mut altered = payout_for(&s, &[&a], 500);
        altered.body.amount = Amount::from_micros(5);
        let err = s.ledger.record_payout(&pool, &altered).unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Statement(StatementError::BadSignature { .. })
            ),
            "{err}"
        );

        let mut theirs = payout_for(&s, &[&a], 500).body;
        theirs.provider = SecretKey::generate().public();
        let err = s
            .ledger
            .record_payout(&pool, &Signed::sign(theirs, &s.pool))
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::NotMine { kind: "payout", .. }),
            "{err}"
        );

        assert_eq!(s.ledger.earnings().unwrap(), before);
    }

    #[test]
    fn the_ledger_survives_close_and_reopen() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        let b = signed_receipt(&s, 2, 250);
        s.ledger.record_receipt(&pool, &a).unwrap();
        s.ledger.record_receipt(&pool, &b).unwrap();
        s.ledger
            .record_payout(&pool, &payout_for(&s, &[&a], 500))
            .unwrap();
        s.ledger
            .record_unpaid(&pool, Id([3; 32]), "job-3", "timed out", T0)
            .unwrap();
        let before = s.ledger.earnings().unwrap();
        drop(s.ledger);

        let mut reopened = Ledger::open(&s.path, s.me.public()).unwrap();
        assert_eq!(reopened.earnings().unwrap(), before);
        assert_eq!(reopened.audit().unwrap(), 3);
        // Still idempotent after a restart: a redelivered receipt counts once.
        assert_eq!(
            reopened.record_receipt(&pool, &b).unwrap(),
            Recorded::Duplicate
        );
        assert_eq!(
            reopened.earnings().unwrap().balance,
            Amount::from_micros(250)
        );
    }

    #[test]
    fn a_ledger_belongs_to_one_identity_and_one_schema() {
        let s = setup();
        drop(s.ledger);
        let err = Ledger::open(&s.path, SecretKey::generate().public())
            .err()
            .unwrap();
        assert!(matches!(err, LedgerError::OtherIdentity { .. }), "{err}");

        let conn = Connection::open(&s.path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Ledger::open(&s.path, s.me.public()).err().unwrap();
        assert!(
            matches!(
                err,
                LedgerError::Open(sqlite::OpenError::NewerSchema {
                    found: 99,
                    supported: 3,
                    ..
                })
            ),
            "{err}"
        );
    }

    #[test]
    fn unpaid_work_is_listed_with_its_reason() {
        let mut s = setup();
        let pool = s.pool.public();
        s.ledger
            .record_unpaid(
                &pool,
                Id([1; 32]),
                "matmul",
                "disagreed with the quorum",
                T0,
            )
            .unwrap();
        s.ledger
            .record_unpaid(&pool, Id([2; 32]), "collatz", "timed out", T0 + 5)
            .unwrap();
        // The same event reported twice is one entry.
        s.ledger
            .record_unpaid(&pool, Id([2; 32]), "collatz", "timed out", T0 + 5)
            .unwrap();
        let long = "x".repeat(10_000);
        s.ledger
            .record_unpaid(&pool, Id([4; 32]), "long", &long, T0 + 9)
            .unwrap();
        let e = s.ledger.earnings().unwrap();
        let listed: Vec<_> = e
            .unpaid_work
            .iter()
            .map(|w| (w.job_name.as_str(), w.reason.len()))
            .collect();
        assert_eq!(
            listed,
            vec![("matmul", 25), ("collatz", 9), ("long", MAX_TEXT_CHARS)]
        );
        assert_eq!(e.unpaid_work[0].job, Id([1; 32]).to_hex());
        assert_eq!(e.unpaid_work[0].reason, "disagreed with the quorum");
        assert_eq!(e.balance, Amount::ZERO);
    }

    #[test]
    fn what_a_write_added_reads_back_as_earnings_lists_it() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        s.ledger.record_receipt(&pool, &a).unwrap();
        let payout = payout_for(&s, &[&a], 500);
        s.ledger.record_payout(&pool, &payout).unwrap();
        let unpaid = s
            .ledger
            .record_unpaid(&pool, Id([2; 32]), "collatz", "timed out", T0 + 5)
            .unwrap();
        let again = s
            .ledger
            .record_unpaid(&pool, Id([2; 32]), "collatz", "timed out", T0 + 5)
            .unwrap();
        let check = Signed::sign(
            Check {
                pool,
                provider: s.me.public(),
                job: Id([3; 32]),
                job_name: "fft".into(),
                passed: false,
                issued_at_ms: T0 + 7,
            },
            &s.pool,
        );
        s.ledger.record_check(&pool, &check).unwrap();
        let e = s.ledger.earnings().unwrap();
        assert_eq!(
            s.ledger.check(&check.id().to_hex()).unwrap().as_ref(),
            e.checks.first()
        );
        assert_eq!(
            s.ledger.receipt(&a.id().to_hex()).unwrap().as_ref(),
            e.receipts.first()
        );
        let read = s.ledger.payout(&payout.id().to_hex()).unwrap();
        assert_eq!(read.as_ref(), e.payouts.first());
        assert_eq!(read.unwrap().receipts, vec![a.id().to_hex()]);
        assert_eq!(unpaid.as_ref(), e.unpaid_work.first());
        // Noted twice, it is news once.
        assert_eq!(again, None);
        assert_eq!(s.ledger.receipt("no such id").unwrap(), None);
    }

    #[test]
    fn earnings_json_has_receipts_balance_and_payouts() {
        let mut s = setup();
        let pool = s.pool.public();
        let a = signed_receipt(&s, 1, 500);
        let b = signed_receipt(&s, 2, 250);
        s.ledger.record_receipt(&pool, &a).unwrap();
        s.ledger.record_receipt(&pool, &b).unwrap();
        s.ledger
            .record_payout(&pool, &payout_for(&s, &[&b], 250))
            .unwrap();
        let json = serde_json::to_value(s.ledger.earnings().unwrap()).unwrap();
        assert_eq!(json["balance"], "0.0005");
        assert_eq!(json["paid"], "0.00025");
        assert_eq!(json["total"], "0.00075");
        let receipts = json["receipts"].as_array().unwrap();
        assert_eq!(receipts.len(), 2);
        assert_eq!(receipts[0]["amount"], "0.0005");
        assert_eq!(receipts[0]["id"], a.id().to_hex());
        assert_eq!(receipts[0]["paid_by"], serde_json::Value::Null);
        assert_eq!(receipts[0]["signature_verified"], true);
        let payouts = json["payouts"].as_array().unwrap();
        assert_eq!(payouts.len(), 1);
        assert_eq!(payouts[0]["amount"], "0.00025");
        assert_eq!(payouts[0]["receipt_count"], 1);
        assert_eq!(payouts[0]["receipts"][0], b.id().to_hex());
        assert!(json["unpaid_work"].as_array().unwrap().is_empty());
    }

    #[test]
    fn describe_shows_a_chain_payouts_status_symbol_and_transaction() {
        let tx = format!("0x{}", "ab".repeat(32));
        let chain = PayoutEntry {
            id: "c".repeat(64),
            pool: "p".repeat(64),
            amount: Amount::from_micros(1_200),
            receipt_count: 3,
            issued_at_ms: T0,
            status: PayoutStatus::Confirmed,
            chain_id: Some(31_337),
            symbol: Some("tUSD".into()),
            tx_hash: Some(tx.clone()),
            block: Some(12),
            ..PayoutEntry::blank(crate::onchain::RAIL.into(), "{\"chain_id\":31337}".into())
        };
        let missing = PayoutEntry {
            status: PayoutStatus::NotFound,
            block: None,
            note: Some("the transaction paid someone else".into()),
            ..chain.clone()
        };
        let iou = PayoutEntry {
            pool: "p".repeat(64),
            amount: Amount::from_micros(250),
            issued_at_ms: T0,
            ..PayoutEntry::blank(crate::onchain::IOU_RAIL.into(), "week 47".into())
        };
        let earnings = Earnings {
            provider: "me".into(),
            receipts: Vec::new(),
            balance: Amount::ZERO,
            paid: Amount::ZERO,
            total: Amount::ZERO,
            payouts: vec![chain, missing, iou],
            unpaid_work: Vec::new(),
            checks: Vec::new(),
        };
        let text = earnings.describe();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("2023-11-14")).collect();
        assert_eq!(lines.len(), 3, "{text}");
        for wanted in [
            "0.0012 tUSD",
            "confirmed on chain",
            &format!("tx {tx} in block 12"),
        ] {
            assert!(lines[0].contains(wanted), "{wanted:?} not in {}", lines[0]);
        }
        assert!(
            !text.contains("chain_id"),
            "the raw reference is shown: {text}"
        );
        assert!(lines[1].contains("not found on chain"), "{}", lines[1]);
        assert!(
            lines[1].contains("(the transaction paid someone else)"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("IOU") && lines[2].contains("statement: week 47"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn describe_shows_dates_amounts_and_sums() {
        let mut s = setup();
        let pool = s.pool.public();
        let mut body = receipt(&s.pool, s.me.public(), 1, 500);
        body.job_name = "evil\x1b[2Jname".into();
        let a = Signed::sign(body, &s.pool);
        s.ledger.record_receipt(&pool, &a).unwrap();
        let b = signed_receipt(&s, 2, 250);
        s.ledger.record_receipt(&pool, &b).unwrap();
        s.ledger
            .record_payout(&pool, &payout_for(&s, &[&b], 250))
            .unwrap();
        s.ledger
            .record_unpaid(&pool, Id([9; 32]), "fft", "timed out", T0)
            .unwrap();
        let text = s.ledger.earnings().unwrap().describe();
        // T0 + 1 s is 2023-11-14 22:13:21 UTC.
        assert!(text.contains("2023-11-14 22:13"), "{text}");
        assert!(text.contains(short(&pool.to_string())), "{text}");
        assert!(text.contains("0.0005"), "{text}");
        assert!(text.contains("Balance (unpaid): 0.0005"), "{text}");
        assert!(text.contains("Paid:             0.00025"), "{text}");
        assert!(text.contains("ledger: transfer-1"), "{text}");
        assert!(text.contains("timed out"), "{text}");
        assert!(
            !text.contains('\x1b'),
            "control characters reach the terminal: {text}"
        );

        let empty = Ledger::open(&s.path.with_file_name("empty.sqlite"), s.me.public()).unwrap();
        let text = empty.earnings().unwrap().describe();
        assert!(
            text.contains("No receipts yet.") && text.contains("Balance (unpaid): 0"),
            "{text}"
        );
    }

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(10_956), (1999, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(T0), "2023-11-14 22:13");
    }
}
