//! The pool's chain records in SQLite: providers' address bindings, chain payouts' sequence ids and
//! recipients, and the signed transactions that carry them (one or more per nonce: a fee bump is a
//! second transaction at the same nonce). What `pool::chain` decides is kept here before anything
//! is sent, so a crash at any point resumes from these rows.

use iroh::PublicKey;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::store::{DuePayout, PayoutState, StoreError, amount, due_payout, key};
use crate::amount::Amount;
use crate::statement::{AddressBinding, Id, Signed};

/// Keeps `binding` if it is newer than the one held; says whether it was.
pub fn bind_address(
    tx: &Transaction,
    binding: &Signed<AddressBinding>,
) -> Result<bool, StoreError> {
    let body = &binding.body;
    let changed = tx.execute(
        "INSERT INTO bindings (provider, address, seq, signed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (provider) DO UPDATE SET address = ?2, seq = ?3, signed = ?4
         WHERE excluded.seq > bindings.seq",
        params![
            &body.provider.as_bytes()[..],
            &body.address[..],
            seq_sql(body.seq),
            binding.to_bytes()
        ],
    )?;
    Ok(changed > 0)
}

/// The address `provider` last bound, if any.
pub fn bound_address(
    conn: &Connection,
    provider: &PublicKey,
) -> Result<Option<[u8; 20]>, StoreError> {
    let address: Option<Vec<u8>> = conn
        .query_row(
            "SELECT address FROM bindings WHERE provider = ?1",
            [&provider.as_bytes()[..]],
            |r| r.get(0),
        )
        .optional()?;
    address
        .map(|a| a.try_into().map_err(|_| StoreError::Corrupt("address")))
        .transpose()
}

/// The next chain payout's sequence id.
pub fn next_seq(tx: &Transaction) -> Result<u64, StoreError> {
    let next: i64 = tx.query_row("SELECT COALESCE(MAX(seq) + 1, 0) FROM payouts", [], |r| {
        r.get(0)
    })?;
    Ok(u64::try_from(next).unwrap_or(0))
}

pub fn set_seq(tx: &Transaction, payout: &Id, seq: u64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE payouts SET seq = ?2 WHERE id = ?1",
        params![&payout.0[..], seq_sql(seq)],
    )?;
    Ok(())
}

/// A due chain payout and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainPayout {
    pub due: DuePayout,
    pub seq: u64,
    /// Set once a transaction carries it.
    pub recipient: Option<[u8; 20]>,
    pub nonce: Option<u64>,
}

/// Due chain payouts, by sequence id: those no transaction carries yet (`nonce` is `None`), and
/// those in flight.
pub fn due_chain_payouts(conn: &Connection) -> Result<Vec<ChainPayout>, StoreError> {
    chain_payouts(conn, None)
}

/// Whether any chain payout is due: such a pool must be opened on its chain.
pub fn any_chain_payout_due(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM payouts WHERE state = ?1 AND seq IS NOT NULL LIMIT 1",
            [PayoutState::Due],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Due chain payouts by sequence id; with `in_flight_for`, only that provider's that a transaction
/// carries (asked on every ask, so filtered in SQL rather than after reading every payout).
fn chain_payouts(
    conn: &Connection,
    in_flight_for: Option<&PublicKey>,
) -> Result<Vec<ChainPayout>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, provider, amount, seq, recipient, nonce FROM payouts
         WHERE state = ?1 AND seq IS NOT NULL
           AND (?2 IS NULL OR (provider = ?2 AND nonce IS NOT NULL))
         ORDER BY seq",
    )?;
    let provider = in_flight_for.map(|p| p.as_bytes().to_vec());
    let rows = statement
        .query_map(params![PayoutState::Due, provider], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(payout, provider, micros, seq, recipient, nonce)| {
            Ok(ChainPayout {
                due: due_payout(conn, payout, provider, micros)?,
                seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt("sequence id"))?,
                recipient: recipient
                    .map(|a| a.try_into().map_err(|_| StoreError::Corrupt("address")))
                    .transpose()?,
                nonce: nonce.and_then(|n| u64::try_from(n).ok()),
            })
        })
        .collect()
}

/// One signed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSend {
    pub hash: [u8; 32],
    pub nonce: u64,
    pub raw: Vec<u8>,
    pub max_fee: u128,
    pub tip: u128,
    pub sent_ms: u64,
    /// The block it was last seen mined in.
    pub block: Option<u64>,
}

/// Stores a signed transaction at its nonce and, for a new batch, marks the payouts it carries.
pub fn insert_send(
    tx: &Transaction,
    send: &ChainSend,
    carries: &[(Id, [u8; 20])],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO chain_txs (hash, nonce, raw, max_fee, tip, sent_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            &send.hash[..],
            seq_sql(send.nonce),
            &send.raw,
            send.max_fee.to_string(),
            send.tip.to_string(),
            seq_sql(send.sent_ms)
        ],
    )?;
    let mut carry =
        tx.prepare_cached("UPDATE payouts SET nonce = ?2, recipient = ?3 WHERE id = ?1")?;
    for (payout, recipient) in carries {
        carry.execute(params![&payout.0[..], seq_sql(send.nonce), &recipient[..]])?;
    }
    Ok(())
}

/// The transactions signed at `nonce`, oldest first.
pub fn sends_at(conn: &Connection, nonce: u64) -> Result<Vec<ChainSend>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT hash, nonce, raw, max_fee, tip, sent_ms, block FROM chain_txs WHERE nonce = ?1
         ORDER BY sent_ms, rowid",
    )?;
    let rows = statement.query_map([seq_sql(nonce)], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<i64>>(6)?,
        ))
    })?;
    rows.map(|row| {
        let (hash, nonce, raw, max_fee, tip, sent_ms, block) = row?;
        Ok(ChainSend {
            hash: hash.try_into().map_err(|_| StoreError::Corrupt("hash"))?,
            nonce: u64::try_from(nonce).unwrap_or(0),
            raw,
            max_fee: max_fee.parse().map_err(|_| StoreError::Corrupt("fee"))?,
            tip: tip.parse().map_err(|_| StoreError::Corrupt("fee"))?,
            sent_ms: u64::try_from(sent_ms).unwrap_or(0),
            block: block.and_then(|b| u64::try_from(b).ok()),
        })
    })
    .collect()
}

/// The highest nonce the pool ever signed at.
pub fn highest_nonce(conn: &Connection) -> Result<Option<u64>, StoreError> {
    let nonce: Option<i64> =
        conn.query_row("SELECT MAX(nonce) FROM chain_txs", [], |r| r.get(0))?;
    Ok(nonce.and_then(|n| u64::try_from(n).ok()))
}

/// Where the chain last showed the transaction: in `block`, or (after a reorg) nowhere.
pub fn set_block(conn: &Connection, hash: &[u8; 32], block: Option<u64>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE chain_txs SET block = ?2 WHERE hash = ?1",
        params![&hash[..], block.map(seq_sql)],
    )?;
    Ok(())
}

/// Frees the payouts a transaction at `nonce` carried, to be sent again in a new one.
pub fn requeue(tx: &Transaction, nonce: u64, payouts: &[Id]) -> Result<(), StoreError> {
    let mut free = tx.prepare_cached(
        "UPDATE payouts SET nonce = NULL, recipient = NULL WHERE id = ?1 AND nonce = ?2 AND state = ?3",
    )?;
    for payout in payouts {
        free.execute(params![&payout.0[..], seq_sql(nonce), PayoutState::Due])?;
    }
    Ok(())
}

/// Providers owed money (unsettled receipts) with no address to pay it to, and what each is owed.
pub fn owed_without_address(conn: &Connection) -> Result<Vec<(PublicKey, Amount)>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT provider, SUM(amount) FROM receipts
         WHERE payout IS NULL AND provider NOT IN (SELECT provider FROM bindings)
         GROUP BY provider ORDER BY provider",
    )?;
    let rows = statement.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
    rows.map(|row| {
        let (provider, micros) = row?;
        Ok((key(provider)?, amount(micros)))
    })
    .collect()
}

/// The pool's books: what it owes (receipts not yet in a signed payout), what it has paid (signed
/// payouts), and the payouts due (fixed, not yet signed), each as (count, sum).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Books {
    pub unsettled: Amount,
    pub paid: (u64, Amount),
    pub due: (u64, Amount),
    pub in_flight: (u64, Amount),
}

pub fn books(conn: &Connection) -> Result<Books, StoreError> {
    let sum = |sql: &str| -> Result<(u64, Amount), StoreError> {
        let (count, micros): (i64, i64) =
            conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((u64::try_from(count).unwrap_or(0), amount(micros)))
    };
    Ok(Books {
        unsettled: sum(
            "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM receipts WHERE payout IS NULL",
        )?
        .1,
        paid: sum("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payouts WHERE state = 'signed'")?,
        due: sum("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payouts WHERE state = 'due'")?,
        in_flight: sum(
            "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payouts WHERE state = 'due' AND nonce IS NOT NULL",
        )?,
    })
}

/// Chain payouts of `provider` that a transaction carries and that are not signed yet.
pub fn in_flight_for(
    conn: &Connection,
    provider: &PublicKey,
) -> Result<Vec<ChainPayout>, StoreError> {
    chain_payouts(conn, Some(provider))
}

fn seq_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
