//! `idlegrid pool status`: the pool's books as its operator checks them, read from its database while it
//! runs: what it owes, what it paid, payouts on their way, providers it cannot pay for want of an
//! address, and, on a chain, the deposit left in the payouts contract.

use std::path::Path;

use serde::Serialize;

use super::chain_store;
use super::store::{self, StoreError};
use crate::amount::Amount;
use crate::onchain::PoolChain;

/// Where the pool keeps the chain file it was started with, for this report.
pub const CHAIN_FILE: &str = "chain.toml";

#[derive(Clone, Debug, Serialize)]
pub struct PoolReport {
    /// Receipts issued and not yet in a payout.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub owed: Amount,
    pub paid_count: u64,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub paid: Amount,
    /// Payouts fixed and not yet signed (on a chain: waiting for a transaction or its confirmations).
    pub pending_count: u64,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub pending: Amount,
    /// Of those, the ones a transaction already carries.
    pub broadcast_count: u64,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub broadcast: Amount,
    pub without_address: Vec<Unpayable>,
    pub chain: Option<ChainReport>,
}

/// A provider owed money the pool holds because it bound no payout address.
#[derive(Clone, Debug, Serialize)]
pub struct Unpayable {
    pub provider: String,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub owed: Amount,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChainReport {
    pub chain_id: u64,
    pub symbol: String,
    pub contract: String,
    pub rpc: String,
    /// The token the contract holds, in the token's units as a decimal string; absent when the chain
    /// could not be asked, with the reason in `error`.
    pub deposit: Option<String>,
    /// True when the deposit cannot cover the payouts waiting for a transaction: they are paid once
    /// the contract is topped up.
    pub deposit_short: bool,
    pub error: Option<String>,
}

/// Reads the books of the pool kept in `dir`.
pub fn books(dir: &Path) -> Result<PoolReport, StoreError> {
    let conn = store::open(&dir.join("pool.sqlite"))?;
    let books = chain_store::books(&conn)?;
    let without_address = chain_store::owed_without_address(&conn)?
        .into_iter()
        .map(|(provider, owed)| Unpayable {
            provider: provider.to_string(),
            owed,
        })
        .collect();
    Ok(PoolReport {
        owed: books.unsettled,
        paid_count: books.paid.0,
        paid: books.paid.1,
        pending_count: books.due.0,
        pending: books.due.1,
        broadcast_count: books.in_flight.0,
        broadcast: books.in_flight.1,
        without_address,
        chain: None,
    })
}

/// The pool's chain as it was started with, if it pays on one.
pub fn chain_of(dir: &Path) -> Option<PoolChain> {
    PoolChain::load(&dir.join(CHAIN_FILE)).ok()
}

/// Adds what the chain says of the deposit.
pub async fn with_deposit(mut report: PoolReport, chain: &PoolChain) -> PoolReport {
    let terms = &chain.terms;
    let deposit = idlegrid_chain::check::balance(&chain.rpc, terms.token, terms.contract).await;
    let waiting = report.pending_waiting();
    report.chain = Some(ChainReport {
        chain_id: terms.chain_id,
        symbol: terms.symbol.clone(),
        contract: terms.contract.to_string(),
        rpc: chain.rpc.clone(),
        deposit: deposit.as_ref().ok().map(|units| terms.format(*units)),
        deposit_short: deposit
            .as_ref()
            .is_ok_and(|units| *units < terms.units(waiting.micros())),
        error: deposit.err().map(|e| e.to_string()),
    });
    report
}

impl PoolReport {
    /// Payouts fixed and not yet carried by a transaction.
    fn pending_waiting(&self) -> Amount {
        Amount::from_micros(
            self.pending
                .micros()
                .saturating_sub(self.broadcast.micros()),
        )
    }

    /// The books as a person reads them.
    pub fn describe(&self) -> String {
        let unit = self
            .chain
            .as_ref()
            .map_or(String::new(), |c| format!(" {}", c.symbol));
        let mut out = String::new();
        if let Some(chain) = &self.chain {
            out += &format!(
                "chain:     {} (contract {}, via {})\n",
                chain.chain_id, chain.contract, chain.rpc
            );
            match (&chain.deposit, &chain.error) {
                (Some(deposit), _) => out += &format!("deposit:   {deposit}{unit}\n"),
                (None, Some(error)) => out += &format!("deposit:   unknown ({error})\n"),
                _ => {}
            }
            if chain.deposit_short {
                out += &format!(
                    "the deposit cannot cover the {}{unit} of payouts waiting: top up the contract {} \
                     and they are paid then, once each\n",
                    self.pending_waiting(),
                    chain.contract
                );
            }
        } else {
            out += "chain:     none (payouts are IOUs signed by the pool)\n";
        }
        out += &format!(
            "owed:      {}{unit} in receipts not yet paid out\n",
            self.owed
        );
        out += &format!(
            "paid:      {}{unit} in {} payouts\n",
            self.paid, self.paid_count
        );
        out += &format!(
            "pending:   {}{unit} in {} payouts ({} broadcast)\n",
            self.pending, self.pending_count, self.broadcast_count
        );
        if self.without_address.is_empty() {
            out += "every provider owed money has a payout address\n";
        } else {
            out += &format!(
                "{} providers owed money have no payout address; their balance is held:\n",
                self.without_address.len()
            );
            for p in &self.without_address {
                out += &format!("  {}  {}{unit}\n", p.provider, p.owed);
            }
        }
        out
    }
}
