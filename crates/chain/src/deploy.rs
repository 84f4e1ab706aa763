//! `idlegrid chain deploy`: puts a pool's payouts contract on a chain (and, for tests and demos, a
//! mintable test token funded into it), and describes the result as a chain file.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::contracts::{Payouts, TestToken};
use crate::{ChainError, ChainFile, ChainTerms, install_crypto_provider};

/// What to deploy.
#[derive(Clone, Debug)]
pub struct DeployPlan {
    pub rpc: String,
    /// The token to pay in; `None` deploys the test token, mints `test_mint` units to the deployer
    /// and deposits `test_deposit` of them into the contract.
    pub token: Option<Address>,
    pub test_mint: U256,
    pub test_deposit: U256,
    /// The key that may pay (the pool's `--chain-key-file`); the deployer's own when `None`.
    pub payer: Option<Address>,
    pub confirmations: u64,
    pub explorer: Option<String>,
}

pub async fn deploy(plan: &DeployPlan, key: PrivateKeySigner) -> Result<ChainFile, ChainError> {
    install_crypto_provider();
    let deployer = key.address();
    let url = plan
        .rpc
        .parse()
        .map_err(|_| ChainError::BadUrl(plan.rpc.clone()))?;
    let rpc: DynProvider = ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(key))
        .connect_http(url)
        .erased();
    let failed = |e: &dyn std::fmt::Display| ChainError::Deploy(e.to_string());
    let chain_id = rpc.get_chain_id().await.map_err(|e| failed(&e))?;
    let token = match plan.token {
        Some(token) => token,
        None => *TestToken::deploy(rpc.clone())
            .await
            .map_err(|e| failed(&e))?
            .address(),
    };
    let erc20 = TestToken::new(token, rpc.clone());
    let symbol = erc20.symbol().call().await.map_err(|e| failed(&e))?;
    let decimals = erc20.decimals().call().await.map_err(|e| failed(&e))?;
    let terms = ChainTerms {
        chain_id,
        token,
        symbol,
        decimals,
        contract: Address::ZERO,
        confirmations: plan.confirmations,
        explorer: plan.explorer.clone(),
    };
    terms.check()?;
    let payouts = Payouts::deploy(rpc.clone(), token, plan.payer.unwrap_or(deployer))
        .await
        .map_err(|e| failed(&e))?;
    let contract = *payouts.address();
    if plan.token.is_none() {
        let mined = |r: alloy::rpc::types::TransactionReceipt| {
            r.status()
                .then_some(())
                .ok_or_else(|| ChainError::Deploy("funding the test token reverted".to_owned()))
        };
        let mint = erc20.mint(deployer, plan.test_mint).send().await;
        mined(
            mint.map_err(|e| failed(&e))?
                .get_receipt()
                .await
                .map_err(|e| failed(&e))?,
        )?;
        let deposit = erc20.transfer(contract, plan.test_deposit).send().await;
        mined(
            deposit
                .map_err(|e| failed(&e))?
                .get_receipt()
                .await
                .map_err(|e| failed(&e))?,
        )?;
    }
    Ok(ChainFile {
        rpc: plan.rpc.clone(),
        terms: ChainTerms { contract, ..terms },
    })
}
