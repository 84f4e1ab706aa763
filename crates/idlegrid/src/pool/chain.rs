//! Paying on a chain: the pool's chain rail. A payout fixed as due gets a sequence id at once; this
//! loop then carries due payouts to the chain in batches and signs each payout's statement only once
//! its transaction has the confirmations the chain file asks for.
//!
//! Every step is written down before it is taken, so a crash anywhere resumes without paying twice:
//! the batch's transaction is signed at a nonce the pool chose and stored with the payouts it carries
//! before it is broadcast; after a restart the stored bytes are looked up, and broadcast again if the
//! chain does not know them. The contract pays each sequence id at most once, whatever is resent.
//! What to do with a transaction in flight is one pure decision (`next_step`) over what the chain
//! shows: wait, broadcast again (dropped, never sent, or removed by a reorg), replace it with higher
//! fees at the same nonce (stuck), take its verdict (mined and confirmed), or free its payouts for a
//! new transaction (reverted, or its nonce taken by another).

use std::sync::Mutex;
use std::time::Duration;

use idlegrid_chain::payer::{Fees, PayItem, Payer, SignedTx, TxStatus};
use idlegrid_chain::{Address, B256, ChainError, ChainFile, U256};
use rusqlite::Connection;

use super::chain_store::{self, ChainPayout, ChainSend};
use super::store::StoreError;
use super::{Pool, PoolError};
use crate::crash_point;
use crate::onchain::{ChainPayment, PendingPayout};
use crate::statement::now_ms;

/// Most payouts one transaction carries.
pub const BATCH: usize = 100;

/// How the chain rail behaves; the defaults suit a public chain.
#[derive(Clone, Debug)]
pub struct ChainPolicy {
    /// A transaction not mined this long after it was sent is replaced with higher fees.
    pub bump_after: Duration,
    /// How often the chain is looked at.
    pub poll: Duration,
}

impl Default for ChainPolicy {
    fn default() -> Self {
        ChainPolicy {
            bump_after: Duration::from_secs(60),
            poll: Duration::from_secs(1),
        }
    }
}

/// A pool's chain: where it pays, with which key, and what it last found out.
pub struct ChainRail {
    pub(super) payer: Payer,
    pub(super) file: ChainFile,
    pub(super) policy: ChainPolicy,
    status: Mutex<RailStatus>,
    /// Woken when a payout falls due, so it goes out without waiting for the next look.
    due: tokio::sync::Notify,
}

/// What the rail last saw, for `idlegrid pool status` and the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RailStatus {
    /// Token units the contract holds.
    pub deposit: Option<U256>,
    /// Set while the deposit cannot cover the next payout: (sequence id, units it needs).
    pub short: Option<(u64, U256)>,
    pub last_error: Option<String>,
}

impl ChainRail {
    pub fn new(payer: Payer, file: ChainFile, policy: ChainPolicy) -> ChainRail {
        ChainRail {
            payer,
            file,
            policy,
            status: Mutex::new(RailStatus::default()),
            due: tokio::sync::Notify::new(),
        }
    }

    /// Says a payout fell due.
    pub(super) fn wake(&self) {
        self.due.notify_one();
    }

    pub fn file(&self) -> &ChainFile {
        &self.file
    }

    pub fn status(&self) -> RailStatus {
        crate::sync::lock(&self.status).clone()
    }

    fn note(&self, change: impl FnOnce(&mut RailStatus)) {
        change(&mut crate::sync::lock(&self.status));
    }
}

/// What to do with the transactions signed at one nonce, given what the chain shows of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// Send these stored bytes again.
    Broadcast(Vec<u8>),
    /// Replace the transaction with one offering higher fees, at the same nonce.
    Bump,
    /// Mined with enough blocks on top: sign the payouts it paid.
    Settle {
        hash: [u8; 32],
        block: u64,
        paid: Vec<u64>,
    },
    /// The nonce is used up without paying (reverted, or taken by another transaction): free the
    /// payouts for a new transaction.
    Requeue(String),
}

/// What the chain shows around one nonce.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Each stored transaction at the nonce, oldest first, with its status.
    pub sends: Vec<(ChainSend, TxStatus)>,
    pub head: u64,
    /// The payer's transactions in blocks: every nonce below it is used up.
    pub mined_nonce: u64,
    pub confirmations: u64,
    pub now_ms: u64,
    pub bump_after_ms: u64,
}

pub fn next_step(seen: &Seen) -> Step {
    let mined = seen.sends.iter().find_map(|(send, status)| match status {
        TxStatus::Mined {
            block,
            success,
            paid,
        } => Some((send, *block, *success, paid)),
        _ => None,
    });
    if let Some((send, block, success, paid)) = mined {
        if !success {
            return Step::Requeue(format!("transaction {} reverted", B256::from(send.hash)));
        }
        return if seen.head + 1 >= block + seen.confirmations {
            Step::Settle {
                hash: send.hash,
                block,
                paid: paid.clone(),
            }
        } else {
            Step::Wait
        };
    }
    let Some((latest, _)) = seen.sends.last() else {
        return Step::Wait;
    };
    if seen.mined_nonce > latest.nonce {
        return Step::Requeue(format!(
            "nonce {} was used by a transaction the pool did not sign",
            latest.nonce
        ));
    }
    let known = seen
        .sends
        .iter()
        .any(|(_, status)| *status == TxStatus::Pending);
    if !known {
        return Step::Broadcast(latest.raw.clone());
    }
    if seen.now_ms.saturating_sub(latest.sent_ms) >= seen.bump_after_ms {
        Step::Bump
    } else {
        Step::Wait
    }
}

impl Pool {
    fn chain(&self) -> Option<&ChainRail> {
        self.shared.chain.as_ref()
    }

    /// Runs the chain rail until the pool shuts down; does nothing for a pool without a chain.
    pub async fn drive_chain(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(rail) = self.chain() else { return };
        let poll = rail.policy.poll;
        loop {
            if let Err(error) = self.chain_round().await {
                tracing::warn!(%error, "chain payouts: will try again");
                if let Some(rail) = self.chain() {
                    rail.note(|s| s.last_error = Some(error.to_string()));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = rail.due.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One look at the chain: every transaction in flight moved on a step, then a new batch if none
    /// is waiting to be mined.
    pub async fn chain_round(&self) -> Result<(), ChainRoundError> {
        let Some(rail) = self.chain() else {
            return Ok(());
        };
        let due = chain_store::due_chain_payouts(&self.db())?;
        if due.is_empty() {
            return Ok(());
        }
        let mut nonces: Vec<u64> = due.iter().filter_map(|p| p.nonce).collect();
        nonces.sort_unstable();
        nonces.dedup();
        let head = rail.payer.head().await?;
        let mined_nonce = rail.payer.mined_nonce().await?;
        let mut unmined = false;
        for nonce in nonces {
            let carried: Vec<&ChainPayout> =
                due.iter().filter(|p| p.nonce == Some(nonce)).collect();
            unmined |= !self
                .advance(rail, nonce, &carried, head, mined_nonce)
                .await?;
        }
        rail.note(|s| s.last_error = None);
        if unmined {
            return Ok(());
        }
        let unsent: Vec<&ChainPayout> = due.iter().filter(|p| p.nonce.is_none()).collect();
        self.send_batch(rail, &unsent, mined_nonce).await
    }

    /// Moves the transaction at `nonce` on one step; says whether it is in a block.
    async fn advance(
        &self,
        rail: &ChainRail,
        nonce: u64,
        carried: &[&ChainPayout],
        head: u64,
        mined_nonce: u64,
    ) -> Result<bool, ChainRoundError> {
        let sends = chain_store::sends_at(&self.db(), nonce)?;
        let mut seen = Vec::with_capacity(sends.len());
        for send in sends {
            let status = rail.payer.status(B256::from(send.hash)).await?;
            let block = match &status {
                TxStatus::Mined { block, .. } => Some(*block),
                _ => None,
            };
            if block != send.block {
                if send.block.is_some() && block.is_none() {
                    tracing::warn!(tx = %B256::from(send.hash), "a reorg removed the payout transaction; sending it again");
                }
                chain_store::set_block(&self.db(), &send.hash, block)?;
            }
            seen.push((send, status));
        }
        if in_block_before_confirmed(&seen, head, rail.file.terms.confirmations) {
            crash_point::reached("chain-mined");
        }
        let step = next_step(&Seen {
            sends: seen.clone(),
            head,
            mined_nonce,
            confirmations: rail.file.terms.confirmations,
            now_ms: now_ms(),
            bump_after_ms: u64::try_from(rail.policy.bump_after.as_millis()).unwrap_or(u64::MAX),
        });
        let in_block = seen
            .iter()
            .any(|(_, s)| matches!(s, TxStatus::Mined { .. }));
        match step {
            Step::Wait => {}
            Step::Broadcast(raw) => {
                tracing::info!(nonce, "broadcasting the payout transaction (again)");
                match rail.payer.broadcast(&raw).await {
                    // The chain's fees rose past it while it was out of the pool: offer more.
                    Err(ChainError::Refused(why)) if underpriced(&why) => {
                        self.bump(rail, nonce, &seen).await?;
                    }
                    sent => sent?,
                }
            }
            Step::Bump => self.bump(rail, nonce, &seen).await?,
            Step::Settle { hash, block, paid } => {
                self.settle_mined(rail, carried, hash, block, &paid).await?;
            }
            Step::Requeue(why) => self.requeue(rail, nonce, carried, &why).await?,
        }
        Ok(in_block)
    }

    /// Replaces a stuck transaction with one offering more, at the same nonce and for the same payouts.
    async fn bump(
        &self,
        rail: &ChainRail,
        nonce: u64,
        seen: &[(ChainSend, TxStatus)],
    ) -> Result<(), ChainRoundError> {
        let Some((latest, _)) = seen.last() else {
            return Ok(());
        };
        let items = {
            let db = self.db();
            batch_items(rail, &chain_store::due_chain_payouts(&db)?, Some(nonce))
        };
        let old = Fees {
            max_fee: latest.max_fee,
            tip: latest.tip,
        };
        let fees = old.bumped(rail.payer.fees().await?);
        let signed = rail.payer.sign(nonce, fees, &items).await?;
        tracing::info!(nonce, old = %B256::from(latest.hash), new = %signed.hash, max_fee = fees.max_fee, "payout transaction not mined in time: replacing it with higher fees");
        self.store_send(nonce, &signed, fees, &[])?;
        rail.payer.broadcast(&signed.raw).await?;
        Ok(())
    }

    /// Signs the payouts a confirmed transaction paid. One it skipped (paid before, by another of the
    /// pool's transactions) is signed with the transaction that paid it, found in the contract's log.
    async fn settle_mined(
        &self,
        rail: &ChainRail,
        carried: &[&ChainPayout],
        hash: [u8; 32],
        block: u64,
        paid: &[u64],
    ) -> Result<(), ChainRoundError> {
        for payout in carried {
            let Some(recipient) = payout.recipient else {
                continue;
            };
            let (hash, block) = if paid.contains(&payout.seq) {
                (hash, block)
            } else {
                match rail.payer.find_payment(payout.seq).await? {
                    Some(found) => found,
                    None => {
                        tracing::warn!(
                            seq = payout.seq,
                            "a confirmed payout transaction did not pay payout {}; sending it again",
                            payout.seq
                        );
                        self.requeue_payouts(payout.nonce.unwrap_or_default(), &[payout.due.id])?;
                        continue;
                    }
                }
            };
            let payment = payment(rail, payout, recipient, hash, Some(block));
            self.sign_paid(&payout.due, crate::onchain::RAIL, payment.to_reference())?;
            tracing::info!(provider = %payout.due.provider.fmt_short(), amount = %payout.due.amount, seq = payout.seq, tx = %B256::from(hash), block, "paid on chain");
        }
        Ok(())
    }

    async fn requeue(
        &self,
        rail: &ChainRail,
        nonce: u64,
        carried: &[&ChainPayout],
        why: &str,
    ) -> Result<(), ChainRoundError> {
        let mut free = Vec::new();
        for payout in carried {
            if rail.payer.paid(payout.seq).await? {
                // Paid by a transaction the next round will find in the log.
                continue;
            }
            free.push(payout.due.id);
        }
        tracing::warn!(
            nonce,
            payouts = free.len(),
            "{why}; the payouts go into a new transaction"
        );
        self.requeue_payouts(nonce, &free)
    }

    fn requeue_payouts(&self, nonce: u64, payouts: &[super::Id]) -> Result<(), ChainRoundError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        chain_store::requeue(&tx, nonce, payouts)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Signs a batch of the payouts no transaction carries yet, as many as the deposit covers, stores
    /// it, then broadcasts it.
    async fn send_batch(
        &self,
        rail: &ChainRail,
        unsent: &[&ChainPayout],
        mined_nonce: u64,
    ) -> Result<(), ChainRoundError> {
        if unsent.is_empty() {
            return Ok(());
        }
        let deposit = rail.payer.deposit().await?;
        let mut covered = U256::ZERO;
        let mut carries = Vec::new();
        let mut items = Vec::new();
        for payout in unsent.iter().take(BATCH) {
            let units = rail.file.terms.units(payout.due.amount.micros());
            let Some(to) = chain_store::bound_address(&self.db(), &payout.due.provider)? else {
                continue;
            };
            if covered + units > deposit {
                break;
            }
            covered += units;
            carries.push((payout.due.id, to));
            items.push(PayItem {
                seq: payout.seq,
                to: Address::from(to),
                units,
            });
        }
        self.note_deposit(rail, deposit, unsent, items.len());
        if items.is_empty() {
            return Ok(());
        }
        let highest = chain_store::highest_nonce(&self.db())?;
        let nonce = highest.map_or(mined_nonce, |n| mined_nonce.max(n + 1));
        let fees = rail.payer.fees().await?;
        let signed = rail.payer.sign(nonce, fees, &items).await?;
        self.store_send(nonce, &signed, fees, &carries)?;
        crash_point::reached("chain-signed");
        tracing::info!(nonce, payouts = items.len(), tx = %signed.hash, "broadcasting payouts");
        rail.payer.broadcast(&signed.raw).await?;
        crash_point::reached("chain-broadcast");
        Ok(())
    }

    fn note_deposit(&self, rail: &ChainRail, deposit: U256, unsent: &[&ChainPayout], taken: usize) {
        let short = (taken == 0)
            .then(|| unsent.first())
            .flatten()
            .map(|p| (p.seq, rail.file.terms.units(p.due.amount.micros())));
        let before = rail.status();
        if short != before.short
            && let Some((seq, units)) = short
        {
            let terms = &rail.file.terms;
            tracing::warn!(
                "the deposit ({} {}) cannot cover payout {seq} ({} {}); it will be paid once the contract {} is topped up",
                terms.format(deposit),
                terms.symbol,
                terms.format(units),
                terms.symbol,
                terms.contract
            );
        }
        rail.note(|s| {
            s.deposit = Some(deposit);
            s.short = short;
        });
    }

    fn store_send(
        &self,
        nonce: u64,
        signed: &SignedTx,
        fees: Fees,
        carries: &[(super::Id, [u8; 20])],
    ) -> Result<(), ChainRoundError> {
        let send = ChainSend {
            hash: signed.hash.0,
            nonce,
            raw: signed.raw.clone(),
            max_fee: fees.max_fee,
            tip: fees.tip,
            sent_ms: now_ms(),
            block: None,
        };
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        chain_store::insert_send(&tx, &send, carries)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// The chain this pool pays on, as providers are told it.
    pub fn pool_chain(&self) -> Option<ChainFile> {
        self.chain().map(|rail| rail.file.clone())
    }

    /// `provider`'s payouts now on their way on chain, unsigned.
    pub(super) fn pending_payouts(
        &self,
        conn: &Connection,
        provider: &iroh::PublicKey,
    ) -> Result<Vec<PendingPayout>, StoreError> {
        let Some(rail) = self.chain() else {
            return Ok(Vec::new());
        };
        let mut pending = Vec::new();
        for payout in chain_store::in_flight_for(conn, provider)? {
            let (Some(nonce), Some(recipient)) = (payout.nonce, payout.recipient) else {
                continue;
            };
            let sends = chain_store::sends_at(conn, nonce)?;
            let shown = sends.iter().find(|s| s.block.is_some()).or(sends.last());
            let Some(send) = shown else { continue };
            pending.push(PendingPayout {
                payout: payout.due.id,
                amount: payout.due.amount,
                receipts: u32::try_from(payout.due.receipts.len()).unwrap_or(u32::MAX),
                payment: payment(rail, &payout, recipient, send.hash, send.block),
            });
        }
        Ok(pending)
    }
}

/// Whether a node refused a transaction for its fees.
fn underpriced(refusal: &str) -> bool {
    let refusal = refusal.to_lowercase();
    ["underpriced", "base fee", "fee too low", "max fee per gas"]
        .iter()
        .any(|words| refusal.contains(words))
}

/// Whether a transaction at this nonce is in a block without its confirmations yet.
fn in_block_before_confirmed(
    seen: &[(ChainSend, TxStatus)],
    head: u64,
    confirmations: u64,
) -> bool {
    seen.iter().any(|(_, status)| {
        matches!(status, TxStatus::Mined { block, .. } if head + 1 < block + confirmations)
    })
}

/// The payouts carried at `nonce`, as the items of its transaction.
fn batch_items(rail: &ChainRail, due: &[ChainPayout], nonce: Option<u64>) -> Vec<PayItem> {
    due.iter()
        .filter(|p| p.nonce == nonce)
        .filter_map(|p| {
            Some(PayItem {
                seq: p.seq,
                to: Address::from(p.recipient?),
                units: rail.file.terms.units(p.due.amount.micros()),
            })
        })
        .collect()
}

fn payment(
    rail: &ChainRail,
    payout: &ChainPayout,
    recipient: [u8; 20],
    hash: [u8; 32],
    block: Option<u64>,
) -> ChainPayment {
    let terms = &rail.file.terms;
    ChainPayment {
        chain_id: terms.chain_id,
        contract: terms.contract,
        token: terms.token,
        symbol: terms.symbol.clone(),
        decimals: terms.decimals,
        to: Address::from(recipient),
        seq: payout.seq,
        units: terms.units(payout.due.amount.micros()),
        tx_hash: B256::from(hash),
        block,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChainRoundError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(hash: u8, nonce: u64, sent_ms: u64) -> ChainSend {
        ChainSend {
            hash: [hash; 32],
            nonce,
            raw: vec![hash],
            max_fee: 10,
            tip: 1,
            sent_ms,
            block: None,
        }
    }

    fn seen(sends: Vec<(ChainSend, TxStatus)>) -> Seen {
        Seen {
            sends,
            head: 100,
            mined_nonce: 5,
            confirmations: 3,
            now_ms: 10_000,
            bump_after_ms: 5_000,
        }
    }

    fn mined(block: u64, success: bool) -> TxStatus {
        TxStatus::Mined {
            block,
            success,
            paid: vec![1, 2],
        }
    }

    #[test]
    fn what_to_do_with_a_transaction_in_flight() {
        use TxStatus::{Pending, Unknown};
        let cases: Vec<(&str, Seen, Step)> = vec![
            (
                "just sent, waiting",
                seen(vec![(send(1, 5, 9_000), Pending)]),
                Step::Wait,
            ),
            (
                "dropped or never sent: the stored bytes again",
                seen(vec![(send(1, 5, 9_000), Unknown)]),
                Step::Broadcast(vec![1]),
            ),
            (
                "stuck past the bump time",
                seen(vec![(send(1, 5, 1_000), Pending)]),
                Step::Bump,
            ),
            (
                "bumped: the newest bytes are sent again when both are gone",
                seen(vec![
                    (send(1, 5, 1_000), Unknown),
                    (send(2, 5, 2_000), Unknown),
                ]),
                Step::Broadcast(vec![2]),
            ),
            (
                "an old send still pending keeps the bump clock on the newest",
                seen(vec![
                    (send(1, 5, 1_000), Pending),
                    (send(2, 5, 9_000), Unknown),
                ]),
                Step::Wait,
            ),
            (
                "mined, not yet confirmed (block 99, head 100: 2 of 3)",
                seen(vec![(send(1, 5, 1_000), mined(99, true))]),
                Step::Wait,
            ),
            (
                "mined and confirmed (block 98, head 100: 3 of 3)",
                seen(vec![(send(1, 5, 1_000), mined(98, true))]),
                Step::Settle {
                    hash: [1; 32],
                    block: 98,
                    paid: vec![1, 2],
                },
            ),
            (
                "the bump was mined, not the first",
                seen(vec![
                    (send(1, 5, 1_000), Unknown),
                    (send(2, 5, 2_000), mined(90, true)),
                ]),
                Step::Settle {
                    hash: [2; 32],
                    block: 90,
                    paid: vec![1, 2],
                },
            ),
            (
                "reverted",
                seen(vec![(send(1, 5, 1_000), mined(90, false))]),
                Step::Requeue(format!("transaction {} reverted", B256::from([1; 32]))),
            ),
        ];
        for (what, seen, expected) in cases {
            assert_eq!(next_step(&seen), expected, "{what}");
        }
        let taken = Seen {
            mined_nonce: 6,
            ..seen(vec![(send(1, 5, 1_000), Unknown)])
        };
        assert!(matches!(next_step(&taken), Step::Requeue(why) if why.contains("nonce 5")));
    }
}
