//! What a payout on a chain is, as pools and providers exchange it: the chain a pool pays on
//! (`PoolChain`, told to every provider), the on-chain payment a `Payout` statement names
//! (`ChainPayment`), and the unsigned notice a pool sends while the payment waits for its
//! confirmations (`PendingPayout`).
//!
//! A chain payout's `Payout` statement has rail [`RAIL`] and carries the `ChainPayment` as JSON in its
//! `reference`. Keeping it there, rather than adding fields to the statement, keeps every payout signed
//! before chains existed decodable and verifiable from its stored bytes; the JSON is parsed in one
//! place, here, and a reference that does not parse is not a chain payment.

use idlegrid_chain::check::ClaimedPayment;
use idlegrid_chain::{Address, B256, U256};
use serde::{Deserialize, Serialize};

pub use idlegrid_chain::{ChainFile as PoolChain, ChainTerms};

use crate::amount::Amount;
use crate::statement::{Id, Payout};

/// The rail name of payouts made on an EVM chain.
pub const RAIL: &str = "evm";
/// The rail name of payouts that are the pool's signed word only.
pub const IOU_RAIL: &str = "statement";

/// One payout as the chain carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPayment {
    pub chain_id: u64,
    pub contract: Address,
    pub token: Address,
    pub symbol: String,
    pub decimals: u8,
    /// The recipient, bound by the provider's latest address binding.
    pub to: Address,
    /// The pool-assigned id the contract pays each payout under at most once.
    pub seq: u64,
    /// The amount in the token's own units.
    pub units: U256,
    pub tx_hash: B256,
    /// The block the pool saw it mined in (absent in a notice sent before it was mined).
    #[serde(default)]
    pub block: Option<u64>,
}

impl ChainPayment {
    /// The chain payment a payout statement names, if it was made on a chain.
    pub fn of(payout: &Payout) -> Option<ChainPayment> {
        (payout.rail == RAIL)
            .then(|| serde_json::from_str(&payout.reference).ok())
            .flatten()
    }

    pub fn to_reference(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The terms this payment was made under, for checking it without the pool.
    pub fn terms(&self, confirmations: u64) -> ChainTerms {
        ChainTerms {
            chain_id: self.chain_id,
            token: self.token,
            symbol: self.symbol.clone(),
            decimals: self.decimals,
            contract: self.contract,
            confirmations,
            explorer: None,
        }
    }

    pub fn claim(&self) -> ClaimedPayment {
        ClaimedPayment {
            tx_hash: self.tx_hash,
            seq: self.seq,
            to: self.to,
            units: self.units,
        }
    }

    /// Whether `amount` (the statement's, in 10^-6) is what `units` says on chain.
    pub fn matches(&self, amount: Amount) -> bool {
        self.terms(1).units(amount.micros()) == self.units
    }
}

/// A payout the pool has broadcast and not yet signed: shown to the provider as pending, never
/// counted as paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPayout {
    /// The id the signed payout will have.
    pub payout: Id,
    pub amount: Amount,
    pub receipts: u32,
    pub payment: ChainPayment,
}

/// An EVM address from `0x` and 40 hex digits.
pub fn parse_address(text: &str) -> Result<[u8; 20], String> {
    let address: Address = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an address (0x and 40 hex digits)"))?;
    Ok(address.0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::SecretKey;

    fn payment() -> ChainPayment {
        ChainPayment {
            chain_id: 31337,
            contract: Address::repeat_byte(1),
            token: Address::repeat_byte(2),
            symbol: "tUSD".into(),
            decimals: 18,
            to: Address::repeat_byte(3),
            seq: 7,
            units: U256::from(1_200) * U256::from(10).pow(U256::from(12)),
            tx_hash: B256::repeat_byte(4),
            block: Some(12),
        }
    }

    #[test]
    fn a_chain_payout_carries_its_payment_in_the_reference() {
        let key = SecretKey::generate();
        let payout = Payout {
            pool: key.public(),
            provider: key.public(),
            receipts: vec![],
            amount: Amount::from_micros(1_200),
            rail: RAIL.into(),
            reference: payment().to_reference(),
            issued_at_ms: 0,
        };
        assert_eq!(ChainPayment::of(&payout), Some(payment()));
        assert!(payment().matches(payout.amount));
        assert!(!payment().matches(Amount::from_micros(1_201)));
        let iou = Payout {
            rail: IOU_RAIL.into(),
            ..payout.clone()
        };
        assert_eq!(ChainPayment::of(&iou), None);
        let garbled = Payout {
            reference: "0xdeadbeef".into(),
            ..payout
        };
        assert_eq!(ChainPayment::of(&garbled), None);
    }

    #[test]
    fn the_pools_chain_and_a_notice_cross_the_wire_intact() {
        let chain = PoolChain {
            rpc: "http://127.0.0.1:8545".into(),
            terms: payment().terms(2),
        };
        let bytes = postcard::to_allocvec(&chain).unwrap();
        assert_eq!(postcard::from_bytes::<PoolChain>(&bytes).unwrap(), chain);
        let notice = PendingPayout {
            payout: Id([5; 32]),
            amount: Amount::from_micros(1_200),
            receipts: 3,
            payment: ChainPayment {
                block: None,
                ..payment()
            },
        };
        let bytes = postcard::to_allocvec(&notice).unwrap();
        assert_eq!(
            postcard::from_bytes::<PendingPayout>(&bytes).unwrap(),
            notice
        );
    }

    #[test]
    fn addresses_parse_with_or_without_checksum_case() {
        let lower = parse_address("0x000000000000000000000000000000000000dead").unwrap();
        assert_eq!(lower[19], 0xad);
        assert!(parse_address("0xdead").is_err());
        assert!(parse_address("not an address").is_err());
    }
}
