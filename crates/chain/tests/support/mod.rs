//! A fresh anvil with the test token and a payouts contract deployed on it: the owner deploys both and
//! deposits, a separate payer key pays, and a stranger holds gas money but no role. Shared by the
//! contract tests and the gas benchmark.

// The tests and the gas bench each use part of it.
#![allow(dead_code)]

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use idlegrid_chain::anvil::{self, Anvil};
use idlegrid_chain::contracts::{Payouts, TestToken};

pub type PayoutsContract = Payouts::PayoutsInstance<DynProvider>;
pub type TokenContract = TestToken::TestTokenInstance<DynProvider>;

pub struct Account {
    pub address: Address,
    pub provider: DynProvider,
}

pub struct Chain {
    pub owner: Account,
    pub payer: Account,
    pub stranger: Account,
    /// The contract as the payer sees it.
    pub payouts: PayoutsContract,
    /// The token as the owner sees it.
    pub token: TokenContract,
    // Last, so the chain outlives the providers above while they drop.
    _anvil: Anvil,
}

impl Chain {
    /// Deploys the token and the contract, and deposits `deposit` units into the contract.
    pub async fn start(deposit: u64) -> anyhow::Result<Self> {
        let anvil = Anvil::start(&anvil::setup_binary(), &[])?;
        let owner = account(anvil.endpoint()).await?;
        let payer = account(anvil.endpoint()).await?;
        let stranger = account(anvil.endpoint()).await?;
        let token = TestToken::deploy(owner.provider.clone()).await?;
        let payouts =
            Payouts::deploy(owner.provider.clone(), *token.address(), payer.address).await?;
        let payouts = Payouts::new(*payouts.address(), payer.provider.clone());
        let chain = Self {
            owner,
            payer,
            stranger,
            payouts,
            token,
            _anvil: anvil,
        };
        chain.mint(chain.owner.address, deposit).await?;
        chain.deposit(deposit).await?;
        Ok(chain)
    }

    /// The contract as `account` sees it.
    pub fn payouts_as(&self, account: &Account) -> PayoutsContract {
        Payouts::new(*self.payouts.address(), account.provider.clone())
    }

    pub async fn mint(&self, to: Address, amount: u64) -> anyhow::Result<()> {
        succeed(
            self.token
                .mint(to, U256::from(amount))
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        Ok(())
    }

    /// The owner funds the contract with a plain token transfer to its address.
    pub async fn deposit(&self, amount: u64) -> anyhow::Result<()> {
        let call = self
            .token
            .transfer(*self.payouts.address(), U256::from(amount));
        succeed(call.send().await?.get_receipt().await?)?;
        Ok(())
    }

    pub async fn balance(&self, of: Address) -> anyhow::Result<U256> {
        Ok(self.token.balanceOf(of).call().await?)
    }

    pub async fn deposit_left(&self) -> anyhow::Result<U256> {
        self.balance(*self.payouts.address()).await
    }

    pub async fn paid(&self, id: u64) -> anyhow::Result<bool> {
        Ok(self.payouts.paid(U256::from(id)).call().await?)
    }
}

/// A new key with gas money, signing its own transactions as the pool's will.
async fn account(endpoint: &str) -> anyhow::Result<Account> {
    let signer = PrivateKeySigner::random();
    let address = signer.address();
    // The nonce is asked of the node for every transaction: the default cache keeps a nonce that a call
    // refused at estimation never used, and every later transaction of that key then waits forever.
    idlegrid_chain::install_crypto_provider();
    let provider = ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(endpoint.parse()?)
        .erased();
    let ether = U256::from(10).pow(U256::from(18));
    let _: () = provider
        .raw_request(
            "anvil_setBalance".into(),
            (address, ether * U256::from(100)),
        )
        .await?;
    Ok(Account { address, provider })
}

/// An address that has never held anything.
pub fn fresh_address() -> Address {
    PrivateKeySigner::random().address()
}

pub fn succeed(receipt: TransactionReceipt) -> anyhow::Result<TransactionReceipt> {
    anyhow::ensure!(
        receipt.status(),
        "transaction {} reverted",
        receipt.transaction_hash
    );
    Ok(receipt)
}

/// The events of type `E` in the receipt, in order.
pub fn events<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<E>().ok())
        .map(|log| log.inner.data)
        .collect()
}

pub fn units(values: &[u64]) -> Vec<U256> {
    values.iter().map(|&v| U256::from(v)).collect()
}
