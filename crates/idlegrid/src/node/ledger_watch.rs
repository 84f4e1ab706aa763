//! Follows the ledger the providers write: a snapshot of it for the views, reloaded only when another
//! connection has committed (SQLite's `data_version`, one cheap query), and what is new since the last
//! snapshot, which becomes the `earned`, `paid` and `problem` events.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use iroh::PublicKey;
use rusqlite::Connection;

use crate::ledger::{CheckEntry, Earnings, Ledger, PayoutEntry, ReceiptEntry, UnpaidWork};

use super::NodeError;

/// What arrived in the ledger between two snapshots.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub receipts: Vec<ReceiptEntry>,
    pub payouts: Vec<PayoutEntry>,
    pub unpaid: Vec<UnpaidWork>,
    pub checks: Vec<CheckEntry>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
            && self.payouts.is_empty()
            && self.unpaid.is_empty()
            && self.checks.is_empty()
    }
}

pub struct LedgerWatch {
    ledger: Ledger,
    /// A connection of its own: `data_version` only changes for commits by other connections.
    probe: Connection,
    version: i64,
    snapshot: Arc<Earnings>,
}

impl LedgerWatch {
    pub fn open(path: &Path, me: PublicKey) -> Result<LedgerWatch, NodeError> {
        let ledger = Ledger::open(path, me)?;
        let probe = Connection::open(path)?;
        let version = data_version(&probe)?;
        let snapshot = Arc::new(ledger.earnings()?);
        Ok(LedgerWatch {
            ledger,
            probe,
            version,
            snapshot,
        })
    }

    pub fn snapshot(&self) -> Arc<Earnings> {
        Arc::clone(&self.snapshot)
    }

    /// Reloads the snapshot if the ledger changed, and returns what is new.
    pub fn refresh(&mut self) -> Result<Changes, NodeError> {
        let version = data_version(&self.probe)?;
        if version == self.version {
            return Ok(Changes::default());
        }
        let fresh = Arc::new(self.ledger.earnings()?);
        let changes = changes(&self.snapshot, &fresh);
        self.version = version;
        self.snapshot = fresh;
        Ok(changes)
    }
}

fn data_version(conn: &Connection) -> Result<i64, NodeError> {
    Ok(conn.pragma_query_value(None, "data_version", |row| row.get(0))?)
}

/// Entries of `new` that `old` lacks, in the ledger's order.
pub fn changes(old: &Earnings, new: &Earnings) -> Changes {
    let receipts: HashSet<&str> = old.receipts.iter().map(|r| r.id.as_str()).collect();
    let payouts: HashSet<&str> = old.payouts.iter().map(|p| p.id.as_str()).collect();
    let unpaid: HashSet<_> = old.unpaid_work.iter().map(unpaid_key).collect();
    let checks: HashSet<&str> = old.checks.iter().map(|c| c.id.as_str()).collect();
    Changes {
        receipts: new
            .receipts
            .iter()
            .filter(|r| !receipts.contains(r.id.as_str()))
            .cloned()
            .collect(),
        payouts: new
            .payouts
            .iter()
            .filter(|p| !payouts.contains(p.id.as_str()))
            .cloned()
            .collect(),
        unpaid: new
            .unpaid_work
            .iter()
            .filter(|u| !unpaid.contains(&unpaid_key(u)))
            .cloned()
            .collect(),
        checks: new
            .checks
            .iter()
            .filter(|c| !checks.contains(c.id.as_str()))
            .cloned()
            .collect(),
    }
}

/// The ledger keeps one entry per pool, job, time and reason.
fn unpaid_key(work: &UnpaidWork) -> (&str, &str, u64, &str) {
    (&work.pool, &work.job, work.at_ms, &work.reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;

    fn earnings(receipts: &[&str], unpaid: &[u64]) -> Earnings {
        Earnings {
            provider: "me".into(),
            receipts: receipts
                .iter()
                .map(|id| ReceiptEntry {
                    id: (*id).into(),
                    pool: "p".into(),
                    job: "j".into(),
                    job_name: "matmul".into(),
                    amount: Amount::from_micros(1),
                    output_hash: "h".into(),
                    issued_at_ms: 0,
                    paid_by: None,
                    signature_verified: true,
                })
                .collect(),
            balance: Amount::ZERO,
            paid: Amount::ZERO,
            total: Amount::ZERO,
            payouts: Vec::new(),
            unpaid_work: unpaid
                .iter()
                .map(|&at_ms| UnpaidWork {
                    pool: "p".into(),
                    job: "j".into(),
                    job_name: "matmul".into(),
                    reason: "timed out".into(),
                    at_ms,
                })
                .collect(),
            checks: Vec::new(),
        }
    }

    #[test]
    fn only_new_entries_are_changes() {
        let old = earnings(&["a", "b"], &[1]);
        let new = earnings(&["a", "c", "b"], &[1, 2]);
        let changes = changes(&old, &new);
        assert_eq!(changes.receipts.len(), 1);
        assert_eq!(changes.receipts[0].id, "c");
        assert_eq!(changes.unpaid.len(), 1);
        assert_eq!(changes.unpaid[0].at_ms, 2);
        assert!(super::changes(&new, &new).is_empty());
    }
}
