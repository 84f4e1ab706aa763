//! Settlement: when a provider's unpaid receipts reach the threshold, the pool pays them out over a
//! rail and signs a `Payout` naming exactly the receipts it settles. The rail is a trait so a real
//! payment system can replace the first one, which only records the signed statement.

use iroh::PublicKey;

use crate::amount::Amount;
use crate::statement::Id;

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
