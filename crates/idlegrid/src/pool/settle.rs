//! Settling: a receipt for each provider a verdict pays and a check for each canary judged, signed in
//! the verdict's transaction; then, when a provider's unpaid receipts reach the threshold, a payout
//! over a rail, with a `Payout` statement naming exactly the receipts it settles.
//!
//! Paying happens outside any SQLite transaction, in three steps, so a rail that moves real money
//! can be slow or fail without holding the database, and a crash between the steps loses nothing:
//! the payout is fixed first (its id, amount and receipts committed as due), then the rail pays it
//! under that id, then the signed statement is committed and delivered. A payout still due after a
//! crash or a rail failure is paid again under the same id, on the next settling or when the pool
//! opens; a rail must therefore pay each id at most once. The rail is a trait so a real payment system
//! can replace the first one, which only records the signed statement.

use iroh::PublicKey;
use rusqlite::Transaction;

use super::chain_store;
use super::judge::Judged;
use super::store::{self, DuePayout, JobTerms, StoreError};
use super::{Pool, PoolError};
use crate::amount::Amount;
use crate::statement::{Check, Id, Payout, Receipt, Signed, Statement, now_ms};

#[derive(Debug, thiserror::Error)]
#[error("the {rail} rail could not pay {amount} to {provider}: {message}")]
pub struct RailError {
    pub rail: String,
    pub amount: Amount,
    pub provider: String,
    pub message: String,
}

/// Moves money to a provider; returns the rail's reference for the transfer.
pub trait SettlementRail: Send + Sync {
    fn name(&self) -> &str;
    fn pay(&self, provider: &PublicKey, amount: Amount, payout: &Id) -> Result<String, RailError>;
}

/// The first rail: the signed payout statement is the whole settlement (an IOU the provider can
/// show); no money moves.
pub struct StatementRail;

impl SettlementRail for StatementRail {
    fn name(&self) -> &str {
        "statement"
    }

    fn pay(
        &self,
        _provider: &PublicKey,
        _amount: Amount,
        payout: &Id,
    ) -> Result<String, RailError> {
        Ok(payout.to_hex()[..16].to_owned())
    }
}

impl Pool {
    /// Signs the receipts and checks a verdict asks for, inside its transaction.
    pub(super) fn issue(
        &self,
        tx: &Transaction,
        job: &Id,
        terms: &JobTerms,
        judged: &Judged,
        now: u64,
    ) -> Result<(), PoolError> {
        for (provider, output_hash) in &judged.receipts {
            let receipt = Receipt {
                pool: self.public_key(),
                provider: *provider,
                job: *job,
                job_name: terms.name.clone(),
                amount: terms.reward,
                output_hash: *output_hash,
                issued_at_ms: now,
            };
            let signed = Signed::sign(receipt, &self.shared.key);
            store::insert_receipt(
                tx,
                &signed.id(),
                job,
                provider,
                terms.reward,
                &signed.to_bytes(),
            )?;
        }
        for (provider, passed) in &judged.checks {
            let check = Check {
                pool: self.public_key(),
                provider: *provider,
                job: *job,
                job_name: terms.name.clone(),
                passed: *passed,
                issued_at_ms: now,
            };
            let signed = Signed::sign(check, &self.shared.key);
            store::insert_check(tx, &signed.id(), provider, &signed.to_bytes())?;
        }
        Ok(())
    }

    /// Pays `provider` if its unpaid receipts reached the threshold, and any payout left due.
    pub(super) fn settle(&self, provider: &PublicKey) -> Result<(), PoolError> {
        self.fix_payout(provider)?;
        self.settle_due()
    }

    /// Commits a payout of `provider`'s unpaid receipts as due, once they reach the threshold.
    fn fix_payout(&self, provider: &PublicKey) -> Result<(), PoolError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        let unpaid = store::unpaid_receipts(&tx, provider)?;
        let Some((receipts, amount)) = due(&unpaid, self.shared.config.payout_threshold) else {
            return Ok(());
        };
        // On a chain, a provider with no address bound keeps its balance until it binds one.
        let on_chain = self.shared.chain.is_some();
        if on_chain && chain_store::bound_address(&tx, provider)?.is_none() {
            return Ok(());
        }
        let payout = DuePayout {
            id: self
                .payout_body(provider, &receipts, amount, String::new())
                .id(),
            provider: *provider,
            amount,
            receipts,
        };
        store::insert_due_payout(&tx, &payout)?;
        if on_chain {
            let seq = chain_store::next_seq(&tx)?;
            chain_store::set_seq(&tx, &payout.id, seq)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Pays every payout that is due, each under its id, and signs it once the rail has paid. A
    /// payout the rail cannot pay now stays due and is tried again later.
    pub(super) fn settle_due(&self) -> Result<(), PoolError> {
        if let Some(chain) = &self.shared.chain {
            // The chain rail's own loop pays (see `pool::chain`): a chain is too slow to wait on here.
            chain.wake();
            return Ok(());
        }
        let due = store::due_payouts(&self.db())?;
        for payout in due {
            let reference = match self
                .shared
                .rail
                .pay(&payout.provider, payout.amount, &payout.id)
            {
                Ok(reference) => reference,
                Err(error) => {
                    tracing::warn!(%error, payout = %payout.id, "payout failed; it stays due");
                    continue;
                }
            };
            self.sign_paid(&payout, self.shared.rail.name(), reference)?;
            tracing::info!(provider = %payout.provider.fmt_short(), amount = %payout.amount, receipts = payout.receipts.len(), "paid out");
        }
        Ok(())
    }

    /// Signs the statement of a payout the rail has paid, making it owed to its provider.
    pub(super) fn sign_paid(
        &self,
        payout: &DuePayout,
        rail: &str,
        reference: String,
    ) -> Result<(), PoolError> {
        let mut body =
            self.payout_body(&payout.provider, &payout.receipts, payout.amount, reference);
        body.rail = rail.to_owned();
        let signed = Signed::sign(body, &self.shared.key);
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        store::sign_payout(&tx, &payout.id, &signed.body.reference, &signed.to_bytes())?;
        tx.commit().map_err(StoreError::from)?;
        self.changed();
        Ok(())
    }

    /// A payout statement; its id depends on pool, provider and receipts only, so it is known
    /// before the rail's reference is.
    fn payout_body(
        &self,
        provider: &PublicKey,
        receipts: &[Id],
        amount: Amount,
        reference: String,
    ) -> Payout {
        Payout {
            pool: self.public_key(),
            provider: *provider,
            receipts: receipts.to_vec(),
            amount,
            rail: self.shared.rail.name().to_owned(),
            reference,
            issued_at_ms: now_ms(),
        }
    }
}

/// The receipts a payout should settle now: all unpaid ones once their sum reaches `threshold`.
pub fn due(unpaid: &[(Id, Amount)], threshold: Amount) -> Option<(Vec<Id>, Amount)> {
    let total = unpaid
        .iter()
        .try_fold(Amount::ZERO, |sum, (_, a)| sum.checked_add(*a))?;
    (total >= threshold && total > Amount::ZERO)
        .then(|| (unpaid.iter().map(|(id, _)| *id).collect(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pays_all_unpaid_receipts_once_the_threshold_is_reached() {
        let receipts = |n: u8| -> Vec<(Id, Amount)> {
            (0..n)
                .map(|i| (Id([i; 32]), Amount::from_micros(300)))
                .collect()
        };
        let threshold = Amount::from_micros(1000);
        assert_eq!(due(&receipts(3), threshold), None);
        let (ids, total) = due(&receipts(4), threshold).unwrap();
        assert_eq!((ids.len(), total), (4, Amount::from_micros(1200)));
        assert_eq!(due(&[], Amount::ZERO), None);
    }
}
