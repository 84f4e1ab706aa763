//! A provider's own check of a payout, trusting nothing but the chain it asks: the RPC serves the chain
//! the pool named, the transaction succeeded, the payouts contract logged this payout (id, recipient,
//! amount), the token itself logged the transfer of that amount to that address, and enough blocks sit
//! on top of it.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolEvent;

use crate::contracts::{Payouts, TestToken};
use crate::{ChainError, ChainTerms, check_chain_id, reader, rpc_error};

/// The payment a signed payout (or a pending notice) claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedPayment {
    pub tx_hash: B256,
    pub seq: u64,
    pub to: Address,
    pub units: U256,
}

/// What the chain shows of a claimed payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Everything holds, with the confirmations asked for.
    Confirmed { block: u64, confirmations: u64 },
    /// Not in a block yet, or in one without enough on top.
    Waiting {
        block: Option<u64>,
        confirmations: u64,
    },
    /// The chain does not show this payment; the words say what is missing.
    NotFound(String),
}

/// Checks `claim` against the chain at `rpc`.
pub async fn check_payment(
    rpc_url: &str,
    terms: &ChainTerms,
    claim: &ClaimedPayment,
) -> Result<Finding, ChainError> {
    let rpc = reader(rpc_url)?;
    check_chain_id(rpc_url, &rpc, terms.chain_id).await?;
    let receipt = rpc
        .get_transaction_receipt(claim.tx_hash)
        .await
        .map_err(rpc_error(rpc_url))?;
    let Some(receipt) = receipt else {
        let pending = rpc
            .get_transaction_by_hash(claim.tx_hash)
            .await
            .map_err(rpc_error(rpc_url))?;
        return Ok(match pending {
            Some(_) => Finding::Waiting {
                block: None,
                confirmations: 0,
            },
            None => Finding::NotFound(format!(
                "transaction {} is not on chain {}",
                claim.tx_hash, terms.chain_id
            )),
        });
    };
    if let Some(missing) = missing_evidence(&receipt, terms, claim) {
        return Ok(Finding::NotFound(missing));
    }
    let block = receipt.block_number.unwrap_or_default();
    let head = rpc.get_block_number().await.map_err(rpc_error(rpc_url))?;
    let confirmations = (head + 1).saturating_sub(block);
    Ok(if confirmations >= terms.confirmations {
        Finding::Confirmed {
            block,
            confirmations,
        }
    } else {
        Finding::Waiting {
            block: Some(block),
            confirmations,
        }
    })
}

/// What the receipt lacks to prove the claim, if anything.
fn missing_evidence(
    receipt: &TransactionReceipt,
    terms: &ChainTerms,
    claim: &ClaimedPayment,
) -> Option<String> {
    if !receipt.status() {
        return Some(format!("transaction {} failed on chain", claim.tx_hash));
    }
    let logs = receipt.logs();
    let paid = logs
        .iter()
        .filter(|log| log.address() == terms.contract)
        .filter_map(|log| log.log_decode::<Payouts::Paid>().ok())
        .any(|log| {
            let event = &log.inner.data;
            event.id == U256::from(claim.seq) && event.to == claim.to && event.amount == claim.units
        });
    if !paid {
        return Some(format!(
            "the payouts contract logged no payout {} of {} to {} in transaction {}",
            claim.seq,
            terms.format(claim.units),
            claim.to,
            claim.tx_hash
        ));
    }
    let transferred = logs
        .iter()
        .filter(|log| log.address() == terms.token)
        .filter_map(|log| log.log_decode::<TestToken::Transfer>().ok())
        .any(|log| {
            let event = &log.inner.data;
            event.from == terms.contract && event.to == claim.to && event.value == claim.units
        });
    if !transferred {
        return Some(format!(
            "the token logged no transfer of {} {} to {} in transaction {}",
            terms.format(claim.units),
            terms.symbol,
            claim.to,
            claim.tx_hash
        ));
    }
    None
}

/// One `Paid` event of a payouts contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidEvent {
    pub seq: U256,
    pub to: Address,
    pub units: U256,
    pub tx_hash: Option<B256>,
}

/// Every payout `contract` logged, oldest first.
pub async fn paid_events(rpc_url: &str, contract: Address) -> Result<Vec<PaidEvent>, ChainError> {
    let logs = logs(rpc_url, contract, Payouts::Paid::SIGNATURE_HASH).await?;
    Ok(logs
        .iter()
        .filter_map(|log| {
            let event = log.log_decode::<Payouts::Paid>().ok()?;
            let data = &event.inner.data;
            Some(PaidEvent {
                seq: data.id,
                to: data.to,
                units: data.amount,
                tx_hash: log.transaction_hash,
            })
        })
        .collect())
}

/// Every transfer the token logged from `from`: (to, units), oldest first.
pub async fn transfers_from(
    rpc_url: &str,
    token: Address,
    from: Address,
) -> Result<Vec<(Address, U256)>, ChainError> {
    let logs = logs(rpc_url, token, TestToken::Transfer::SIGNATURE_HASH).await?;
    Ok(logs
        .iter()
        .filter_map(|log| log.log_decode::<TestToken::Transfer>().ok())
        .map(|log| log.inner.data)
        .filter(|event| event.from == from)
        .map(|event| (event.to, event.value))
        .collect())
}

async fn logs(
    rpc_url: &str,
    address: Address,
    event: B256,
) -> Result<Vec<alloy::rpc::types::Log>, ChainError> {
    let filter = alloy::rpc::types::Filter::new()
        .address(address)
        .event_signature(event)
        .from_block(0);
    reader(rpc_url)?
        .get_logs(&filter)
        .await
        .map_err(rpc_error(rpc_url))
}

/// The token balance of `owner`, in units.
pub async fn balance(rpc_url: &str, token: Address, owner: Address) -> Result<U256, ChainError> {
    let rpc = reader(rpc_url)?;
    TestToken::new(token, rpc)
        .balanceOf(owner)
        .call()
        .await
        .map_err(|e| ChainError::Rpc {
            rpc: rpc_url.to_owned(),
            message: e.to_string(),
        })
}

/// The chain id `rpc` serves.
pub async fn chain_id(rpc_url: &str) -> Result<u64, ChainError> {
    reader(rpc_url)?
        .get_chain_id()
        .await
        .map_err(rpc_error(rpc_url))
}
