//! The ledger's side of payouts on a chain: the chain each pool says it pays on, the pools' unsigned
//! notices of payouts on their way, the addresses this provider bound, and what the provider's own
//! check of the chain found for each payout. Only a payout that check confirms counts as paid.

use idlegrid_chain::check::Finding;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Ledger, LedgerError, PayoutEntry, PayoutStatus, amount_from_sql, to_sql};
use crate::onchain::{ChainPayment, PendingPayout, PoolChain};
use crate::statement::{AddressBinding, Signed, now_ms};

/// Signed statements as stored: (pool, bytes) for receipts and payouts, and the binding bytes.
#[derive(Clone, Debug, Default)]
pub struct SignedStatements {
    pub receipts: Vec<(String, Vec<u8>)>,
    pub payouts: Vec<(String, Vec<u8>)>,
    pub bindings: Vec<Vec<u8>>,
}

/// A payout (or a notice of one) the provider should check on chain.
#[derive(Clone, Debug, PartialEq)]
pub struct PayoutToCheck {
    pub id: String,
    pub pool: String,
    pub amount: crate::amount::Amount,
    pub signed: bool,
    /// `None` when a chain payout's reference names no payment it can be checked by.
    pub payment: Option<ChainPayment>,
}

impl Ledger {
    /// Keeps the chain `pool` says it pays on.
    pub fn record_pool_chain(&self, pool: &str, chain: &PoolChain) -> Result<(), LedgerError> {
        let text = serde_json::to_string(chain).unwrap_or_default();
        self.conn.execute(
            "INSERT INTO pool_chains (pool, chain, updated_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (pool) DO UPDATE SET chain = ?2, updated_at_ms = ?3 WHERE chain != ?2",
            params![pool, text, to_sql(now_ms(), "clock")?],
        )?;
        Ok(())
    }

    pub fn pool_chain(&self, pool: &str) -> Result<Option<PoolChain>, LedgerError> {
        pool_chain(&self.conn, pool)
    }

    /// Every chain a pool named, by pool.
    pub fn pool_chains(&self) -> Result<Vec<(String, PoolChain)>, LedgerError> {
        let mut statement = self
            .conn
            .prepare("SELECT pool, chain FROM pool_chains ORDER BY pool")?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut chains = Vec::new();
        for row in rows {
            let (pool, text) = row?;
            if let Ok(chain) = serde_json::from_str(&text) {
                chains.push((pool, chain));
            }
        }
        Ok(chains)
    }

    /// Replaces `pool`'s notices of payouts on their way with `pending`; one already signed and
    /// stored is not a notice any more. Says whether anything changed.
    pub fn record_pending(
        &mut self,
        pool: &str,
        pending: &[PendingPayout],
    ) -> Result<bool, LedgerError> {
        let tx = self.conn.transaction()?;
        let ids: Vec<String> = pending.iter().map(|p| p.payout.to_hex()).collect();
        let mut changed = 0;
        {
            let mut stale = tx.prepare("SELECT id FROM pending_payouts WHERE pool = ?1")?;
            let held: Vec<String> = stale
                .query_map([pool], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in held.iter().filter(|id| !ids.contains(id)) {
                changed += tx.execute("DELETE FROM pending_payouts WHERE id = ?1", [id])?;
            }
        }
        for (notice, id) in pending.iter().zip(&ids) {
            let signed: bool = tx
                .query_row("SELECT 1 FROM payouts WHERE id = ?1", [id], |_| Ok(()))
                .optional()?
                .is_some();
            if signed {
                continue;
            }
            let payment = serde_json::to_string(&notice.payment).unwrap_or_default();
            changed += tx.execute(
                "INSERT INTO pending_payouts (id, pool, amount_micros, receipt_count, payment, seen_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET payment = ?5 WHERE payment != ?5",
                params![
                    id,
                    pool,
                    to_sql(notice.amount.micros(), "payout amount")?,
                    notice.receipts,
                    payment,
                    to_sql(now_ms(), "clock")?
                ],
            )?;
        }
        tx.commit()?;
        Ok(changed > 0)
    }

    /// Keeps a binding this provider signed; a payout may pay only an address bound here, and the
    /// bindings go into its proof of earnings.
    pub fn record_own_binding(&self, binding: &Signed<AddressBinding>) -> Result<(), LedgerError> {
        binding.verify(&self.me)?;
        self.conn.execute(
            "INSERT INTO own_addresses (address, seq, signed) VALUES (?1, ?2, ?3)
             ON CONFLICT (address, seq) DO NOTHING",
            params![
                binding.body.address_hex(),
                to_sql(binding.body.seq, "binding sequence")?,
                binding.to_bytes()
            ],
        )?;
        Ok(())
    }

    /// Every statement a proof of earnings carries, as signed bytes: the receipts and the signed
    /// payouts, each with the pool that signed it, and this provider's address bindings.
    pub fn signed_statements(&self) -> Result<SignedStatements, LedgerError> {
        let pairs = |sql: &str| -> Result<Vec<(String, Vec<u8>)>, LedgerError> {
            let mut statement = self.conn.prepare(sql)?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        Ok(SignedStatements {
            receipts: pairs("SELECT pool, signed FROM receipts ORDER BY issued_at_ms, id")?,
            payouts: pairs("SELECT pool, signed FROM payouts ORDER BY issued_at_ms, id")?,
            bindings: pairs("SELECT address, signed FROM own_addresses ORDER BY seq")?
                .into_iter()
                .map(|(_, signed)| signed)
                .collect(),
        })
    }

    pub fn is_own_address(&self, address: &str) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM own_addresses WHERE address = ?1 LIMIT 1",
                [address.to_lowercase()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Chain payouts not yet confirmed, and notices of payouts on their way.
    pub fn payouts_to_check(&self) -> Result<Vec<PayoutToCheck>, LedgerError> {
        let mut out = self.to_check(
            "SELECT id, pool, reference, amount_micros FROM payouts
             WHERE rail = 'evm' AND status IN ('pending', 'not_found') ORDER BY issued_at_ms",
            true,
        )?;
        out.extend(self.to_check(
            "SELECT id, pool, payment, amount_micros FROM pending_payouts ORDER BY seen_at_ms",
            false,
        )?);
        Ok(out)
    }

    /// The payouts `sql` selects as (id, pool, payment JSON, amount).
    fn to_check(&self, sql: &str, signed: bool) -> Result<Vec<PayoutToCheck>, LedgerError> {
        let mut statement = self.conn.prepare(sql)?;
        let rows = statement.query_and_then([], |r| -> Result<PayoutToCheck, LedgerError> {
            Ok(PayoutToCheck {
                id: r.get(0)?,
                pool: r.get(1)?,
                amount: amount_from_sql(r.get(3)?)?,
                signed,
                payment: serde_json::from_str(&r.get::<_, String>(2)?).ok(),
            })
        })?;
        rows.collect()
    }

    /// Records what the chain showed of a payout through `rpc`. A signed payout becomes confirmed or
    /// not found; a notice stays pending, whatever the chain shows yet. Says whether its status
    /// changed.
    pub fn record_finding(
        &self,
        payout: &PayoutToCheck,
        finding: &Finding,
        rpc: &str,
    ) -> Result<bool, LedgerError> {
        let (block, confirmations, note) = match finding {
            Finding::Confirmed {
                block,
                confirmations,
            } => (Some(*block), Some(*confirmations), None),
            Finding::Waiting {
                block,
                confirmations,
            } => (*block, Some(*confirmations), None),
            Finding::NotFound(why) => (None, None, Some(why.clone())),
        };
        let block = block.map(|b| to_sql(b, "block")).transpose()?;
        let confirmations = confirmations
            .map(|c| to_sql(c, "confirmations"))
            .transpose()?;
        if !payout.signed {
            self.conn.execute(
                "UPDATE pending_payouts SET block = ?2, confirmations = ?3, checked_via = ?4 WHERE id = ?1",
                params![payout.id, block, confirmations, rpc],
            )?;
            return Ok(false);
        }
        let status = match finding {
            Finding::Confirmed { .. } => PayoutStatus::Confirmed,
            Finding::Waiting { .. } => PayoutStatus::Pending,
            Finding::NotFound(_) => PayoutStatus::NotFound,
        };
        let before: String = self.conn.query_row(
            "SELECT status FROM payouts WHERE id = ?1",
            [&payout.id],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "UPDATE payouts SET status = ?2, block = ?3, confirmations = ?4, checked_via = ?5,
                                check_note = ?6 WHERE id = ?1",
            params![payout.id, status.as_str(), block, confirmations, rpc, note],
        )?;
        Ok(before != status.as_str())
    }
}

fn pool_chain(conn: &Connection, pool: &str) -> Result<Option<PoolChain>, LedgerError> {
    let text: Option<String> = conn
        .query_row(
            "SELECT chain FROM pool_chains WHERE pool = ?1",
            [pool],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

impl PayoutEntry {
    /// An entry with only its rail and reference; the caller fills in the rest.
    pub fn blank(rail: String, reference: String) -> PayoutEntry {
        PayoutEntry {
            id: String::new(),
            pool: String::new(),
            amount: crate::amount::Amount::ZERO,
            receipt_count: 0,
            receipts: Vec::new(),
            rail,
            reference,
            issued_at_ms: 0,
            status: PayoutStatus::Iou,
            signed: true,
            chain_id: None,
            token: None,
            symbol: None,
            to: None,
            tx_hash: None,
            block: None,
            confirmations: None,
            explorer_url: None,
            checked_via: None,
            checked_through_pool: false,
            note: None,
        }
    }
}

/// Fills in the chain fields from the payment a chain payout's reference names.
pub(super) fn with_payment_fields(entry: PayoutEntry) -> PayoutEntry {
    let payment: Option<ChainPayment> = (entry.rail == crate::onchain::RAIL)
        .then(|| serde_json::from_str(&entry.reference).ok())
        .flatten();
    let Some(payment) = payment else {
        return entry;
    };
    PayoutEntry {
        chain_id: Some(payment.chain_id),
        token: Some(payment.token.to_string()),
        symbol: Some(payment.symbol.clone()),
        to: Some(payment.to.to_string()),
        tx_hash: Some(payment.tx_hash.to_string()),
        block: entry.block.or(payment.block),
        ..entry
    }
}

/// The pools' notices of payouts on their way, as pending entries.
pub(super) fn pending_entries(conn: &Connection) -> Result<Vec<PayoutEntry>, LedgerError> {
    let mut statement = conn.prepare(
        "SELECT id, pool, amount_micros, receipt_count, payment, seen_at_ms, block, confirmations,
                checked_via
         FROM pending_payouts ORDER BY seen_at_ms, id",
    )?;
    let rows = statement.query_and_then([], |row| -> Result<PayoutEntry, LedgerError> {
        let entry = PayoutEntry {
            id: row.get(0)?,
            pool: row.get(1)?,
            amount: amount_from_sql(row.get(2)?)?,
            receipt_count: usize::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
            issued_at_ms: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
            status: PayoutStatus::Pending,
            signed: false,
            block: row
                .get::<_, Option<i64>>(6)?
                .and_then(|b| u64::try_from(b).ok()),
            confirmations: row
                .get::<_, Option<i64>>(7)?
                .and_then(|c| u64::try_from(c).ok()),
            checked_via: row.get(8)?,
            ..PayoutEntry::blank(crate::onchain::RAIL.to_owned(), row.get(4)?)
        };
        Ok(with_payment_fields(entry))
    })?;
    rows.collect()
}

/// Adds explorer links, and whether each check went through the pool's own RPC.
pub(super) fn add_explorer_links(
    conn: &Connection,
    payouts: &mut [PayoutEntry],
) -> Result<(), LedgerError> {
    for payout in payouts.iter_mut() {
        let Some(chain) = pool_chain(conn, &payout.pool)? else {
            continue;
        };
        if let Some(hash) = &payout.tx_hash {
            payout.explorer_url = chain.terms.explorer_link(hash);
        }
        payout.checked_through_pool = payout.checked_via.as_deref() == Some(chain.rpc.as_str());
    }
    Ok(())
}
