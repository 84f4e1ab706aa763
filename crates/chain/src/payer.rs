//! The pool's side of the chain: signing a batch of payouts into one raw transaction at a nonce the pool
//! chose, broadcasting stored bytes, and reading back what became of a transaction. It keeps no state:
//! the pool stores every signed transaction before it is broadcast, so a crash at any point can be
//! resumed from the pool's database (see the engine's `pool::chain`).

use alloy::eips::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
pub use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};

use crate::contracts::{Payouts, TestToken};
use crate::{ChainError, ChainFile, ChainTerms, check_chain_id, reader, rpc_error};

/// Gas a batch may use: the transaction's base cost, then a first payout to a fresh address (a cold
/// balance slot and, once in 256, a fresh bitmap word) at most for each. Fixed rather than estimated, so
/// a transaction is signed once and its bytes stored before anything is asked of the node.
pub fn gas_limit(payouts: usize) -> u64 {
    60_000 + 70_000 * payouts as u64
}

/// One payout in a batch: the pool's sequence id, the recipient and the token units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayItem {
    pub seq: u64,
    pub to: Address,
    pub units: U256,
}

/// What a payout transaction offers per gas (EIP-1559).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fees {
    pub max_fee: u128,
    pub tip: u128,
}

impl Fees {
    /// Fees for a replacement at the same nonce: nodes want at least 10 % more of both; this offers
    /// 25 % more, or what the chain asks now if that is higher.
    pub fn bumped(self, now: Fees) -> Fees {
        let up = |old: u128| old.saturating_add(old.div_ceil(4)).max(old + 1);
        Fees {
            max_fee: up(self.max_fee).max(now.max_fee),
            tip: up(self.tip).max(now.tip),
        }
    }
}

/// A signed transaction, ready to broadcast (again and again: the same bytes are the same transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    pub hash: B256,
    pub raw: Vec<u8>,
}

/// What the chain says of one transaction hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// In a block. `paid` lists the sequence ids the contract logged as paid by it.
    Mined {
        block: u64,
        success: bool,
        paid: Vec<u64>,
    },
    /// Known to the node, not in a block yet.
    Pending,
    /// Neither mined nor known: dropped, or never arrived.
    Unknown,
}

pub struct Payer {
    rpc_url: String,
    rpc: DynProvider,
    wallet: EthereumWallet,
    address: Address,
    terms: ChainTerms,
}

impl Payer {
    /// Connects to the chain file's RPC and checks it serves the chain the file names.
    pub async fn connect(file: &ChainFile, key: PrivateKeySigner) -> Result<Payer, ChainError> {
        let rpc = reader(&file.rpc)?;
        check_chain_id(&file.rpc, &rpc, file.terms.chain_id).await?;
        Ok(Payer {
            rpc_url: file.rpc.clone(),
            rpc,
            address: key.address(),
            wallet: EthereumWallet::from(key),
            terms: file.terms.clone(),
        })
    }

    pub fn address(&self) -> Address {
        self.address
    }

    pub fn terms(&self) -> &ChainTerms {
        &self.terms
    }

    /// Transactions of the payer's key in blocks so far: the next nonce the chain will take.
    pub async fn mined_nonce(&self) -> Result<u64, ChainError> {
        self.rpc
            .get_transaction_count(self.address)
            .latest()
            .await
            .map_err(rpc_error(&self.rpc_url))
    }

    pub async fn fees(&self) -> Result<Fees, ChainError> {
        let estimate = self
            .rpc
            .estimate_eip1559_fees()
            .await
            .map_err(rpc_error(&self.rpc_url))?;
        Ok(Fees {
            max_fee: estimate.max_fee_per_gas,
            tip: estimate.max_priority_fee_per_gas,
        })
    }

    /// Signs one `payBatch` of `items` at `nonce`; nothing is sent.
    pub async fn sign(
        &self,
        nonce: u64,
        fees: Fees,
        items: &[PayItem],
    ) -> Result<SignedTx, ChainError> {
        let call = Payouts::payBatchCall {
            ids: items.iter().map(|i| U256::from(i.seq)).collect(),
            to: items.iter().map(|i| i.to).collect(),
            amounts: items.iter().map(|i| i.units).collect(),
        };
        let request = TransactionRequest::default()
            .with_from(self.address)
            .with_to(self.terms.contract)
            .with_input(Bytes::from(call.abi_encode()))
            .with_chain_id(self.terms.chain_id)
            .with_nonce(nonce)
            .with_gas_limit(gas_limit(items.len()))
            .with_max_fee_per_gas(fees.max_fee)
            .with_max_priority_fee_per_gas(fees.tip);
        let envelope = request
            .build(&self.wallet)
            .await
            .map_err(|e| ChainError::Sign(e.to_string()))?;
        Ok(SignedTx {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718(),
        })
    }

    /// Sends stored bytes. A node that already has them is no failure.
    pub async fn broadcast(&self, raw: &[u8]) -> Result<(), ChainError> {
        match self.rpc.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(error) => {
                let message = error.to_string();
                let lower = message.to_lowercase();
                if lower.contains("already known") || lower.contains("already imported") {
                    Ok(())
                } else if lower.contains("error sending request") || lower.contains("connection") {
                    Err(rpc_error(&self.rpc_url)(error))
                } else {
                    Err(ChainError::Refused(message))
                }
            }
        }
    }

    pub async fn status(&self, hash: B256) -> Result<TxStatus, ChainError> {
        let receipt = self
            .rpc
            .get_transaction_receipt(hash)
            .await
            .map_err(rpc_error(&self.rpc_url))?;
        if let Some(receipt) = receipt {
            return Ok(TxStatus::Mined {
                block: receipt.block_number.unwrap_or_default(),
                success: receipt.status(),
                paid: paid_ids(&receipt, self.terms.contract),
            });
        }
        let pending = self
            .rpc
            .get_transaction_by_hash(hash)
            .await
            .map_err(rpc_error(&self.rpc_url))?;
        Ok(if pending.is_some() {
            TxStatus::Pending
        } else {
            TxStatus::Unknown
        })
    }

    pub async fn head(&self) -> Result<u64, ChainError> {
        self.rpc
            .get_block_number()
            .await
            .map_err(rpc_error(&self.rpc_url))
    }

    /// The token the contract holds: what the pool can still pay.
    pub async fn deposit(&self) -> Result<U256, ChainError> {
        TestToken::new(self.terms.token, self.rpc.clone())
            .balanceOf(self.terms.contract)
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                rpc: self.rpc_url.clone(),
                message: e.to_string(),
            })
    }

    /// Whether the contract has paid sequence id `seq`, by any transaction.
    pub async fn paid(&self, seq: u64) -> Result<bool, ChainError> {
        Payouts::new(self.terms.contract, self.rpc.clone())
            .paid(U256::from(seq))
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                rpc: self.rpc_url.clone(),
                message: e.to_string(),
            })
    }
}

impl Payer {
    /// The transaction (hash, block) in which the contract paid `seq`, from its log.
    pub async fn find_payment(&self, seq: u64) -> Result<Option<([u8; 32], u64)>, ChainError> {
        let filter = Filter::new()
            .address(self.terms.contract)
            .event_signature(Payouts::Paid::SIGNATURE_HASH)
            .topic1(B256::from(U256::from(seq)))
            .from_block(0);
        let logs = self
            .rpc
            .get_logs(&filter)
            .await
            .map_err(rpc_error(&self.rpc_url))?;
        Ok(logs
            .iter()
            .find_map(|log| Some((log.transaction_hash?.0, log.block_number?))))
    }
}

/// The sequence ids that `contract` logged as paid in this receipt.
fn paid_ids(receipt: &TransactionReceipt, contract: Address) -> Vec<u64> {
    receipt
        .logs()
        .iter()
        .filter(|log| log.address() == contract)
        .filter_map(|log| log.log_decode::<Payouts::Paid>().ok())
        .filter_map(|log| u64::try_from(log.inner.data.id).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_offers_a_quarter_more_or_what_the_chain_asks_now() {
        let old = Fees {
            max_fee: 100,
            tip: 8,
        };
        let calm = Fees {
            max_fee: 50,
            tip: 1,
        };
        assert_eq!(
            old.bumped(calm),
            Fees {
                max_fee: 125,
                tip: 10
            }
        );
        let spike = Fees {
            max_fee: 400,
            tip: 20,
        };
        assert_eq!(old.bumped(spike), spike);
        let tiny = Fees { max_fee: 1, tip: 0 };
        assert_eq!(tiny.bumped(tiny), Fees { max_fee: 2, tip: 1 });
    }
}
