//! The ledger as the views read it: a snapshot of what the providers stored, reloaded when one of
//! them tells the node it stored something ([`crate::ledger::LedgerNews`]), never by looking at the
//! file on a timer.

use std::path::Path;
use std::sync::Arc;

use iroh::PublicKey;

use crate::ledger::{Earnings, Ledger};
use crate::statement::{AddressBinding, Signed};

use super::NodeError;
use super::earnings::PoolSymbols;

pub struct LedgerView {
    ledger: Ledger,
    snapshot: Arc<Earnings>,
    /// The token each pool that pays on a chain pays in, read with the snapshot.
    symbols: Arc<PoolSymbols>,
}

impl LedgerView {
    pub fn open(path: &Path, me: PublicKey) -> Result<LedgerView, NodeError> {
        let ledger = Ledger::open(path, me)?;
        let snapshot = Arc::new(ledger.earnings()?);
        let symbols = Arc::new(symbols(&ledger)?);
        Ok(LedgerView {
            ledger,
            snapshot,
            symbols,
        })
    }

    pub fn snapshot(&self) -> Arc<Earnings> {
        Arc::clone(&self.snapshot)
    }

    pub fn symbols(&self) -> Arc<PoolSymbols> {
        Arc::clone(&self.symbols)
    }

    /// Keeps a binding this provider signed, before any provider asks to be paid at its address.
    pub fn record_own_binding(&self, binding: &Signed<AddressBinding>) -> Result<(), NodeError> {
        Ok(self.ledger.record_own_binding(binding)?)
    }

    /// Reads the ledger again, after a provider wrote to it.
    pub fn reload(&mut self) -> Result<(), NodeError> {
        self.snapshot = Arc::new(self.ledger.earnings()?);
        self.symbols = Arc::new(symbols(&self.ledger)?);
        Ok(())
    }
}

fn symbols(ledger: &Ledger) -> Result<PoolSymbols, NodeError> {
    Ok(ledger
        .pool_chains()?
        .into_iter()
        .map(|(pool, chain)| (pool, chain.terms.symbol))
        .collect())
}
