//! Idlegrid on an EVM chain: the payouts contract's typed bindings (built from the committed artifacts in
//! `contracts/artifacts/`, so Rust and the deployed bytecode cannot drift apart), a local anvil chain,
//! and what the engine does on a chain: deploying (`deploy`), paying as a pool (`payer`) and checking a
//! payout as a provider, trusting nothing but the chain (`check`). The engine keeps the state; this
//! crate only speaks to the chain.

pub mod anvil;
pub mod check;
pub mod contracts;
pub mod deploy;
pub mod payer;
pub mod terms;

pub use alloy::primitives::{Address, B256, U256};
pub use terms::{ChainFile, ChainTerms};

/// What can go wrong on a chain, each in words a pool operator or provider can act on.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the chain at {rpc} did not answer: {message}")]
    Rpc { rpc: String, message: String },
    #[error("the RPC at {rpc} serves chain {actual}, not chain {expected}")]
    WrongChain {
        rpc: String,
        expected: u64,
        actual: u64,
    },
    #[error("{0} is not a valid RPC URL")]
    BadUrl(String),
    #[error("the chain key is not a hex secp256k1 key: {0}")]
    BadKey(String),
    #[error("chain file {path}: {message}")]
    File { path: String, message: String },
    #[error("the token {symbol} has {decimals} decimals; a pool needs at least 6")]
    FewDecimals { symbol: String, decimals: u8 },
    #[error("{0}")]
    Terms(String),
    #[error("could not sign the transaction: {0}")]
    Sign(String),
    #[error("the node refused the transaction: {0}")]
    Refused(String),
    #[error("deploying failed: {0}")]
    Deploy(String),
}

/// Makes ring the process's TLS crypto provider, before any RPC client is built. In this workspace
/// iroh turns on reqwest's `rustls-no-provider` feature (a build unifies features across its crates),
/// and reqwest then refuses to build even a plain-HTTP client until a provider is installed; alone,
/// this crate's own build would not show it. Calling it again changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A read-only client for `rpc`.
pub(crate) fn reader(rpc: &str) -> Result<alloy::providers::DynProvider, ChainError> {
    use alloy::providers::{Provider, ProviderBuilder};
    install_crypto_provider();
    let url = rpc
        .parse()
        .map_err(|_| ChainError::BadUrl(rpc.to_owned()))?;
    Ok(ProviderBuilder::default().connect_http(url).erased())
}

/// An RPC failure as a `ChainError` naming the RPC.
pub(crate) fn rpc_error(
    rpc: &str,
) -> impl Fn(alloy::transports::TransportError) -> ChainError + '_ {
    move |e| ChainError::Rpc {
        rpc: rpc.to_owned(),
        message: e.to_string(),
    }
}

/// Reads a hex secp256k1 key (with or without `0x`, surrounding whitespace ignored).
pub fn parse_key(text: &str) -> Result<alloy::signers::local::PrivateKeySigner, ChainError> {
    text.trim()
        .parse()
        .map_err(|e: alloy::signers::local::LocalSignerError| ChainError::BadKey(e.to_string()))
}

/// Asks `rpc` for its chain id and refuses any other than `expected`.
pub async fn check_chain_id(
    rpc_url: &str,
    rpc: &alloy::providers::DynProvider,
    expected: u64,
) -> Result<(), ChainError> {
    use alloy::providers::Provider;
    let actual = rpc.get_chain_id().await.map_err(rpc_error(rpc_url))?;
    if actual == expected {
        Ok(())
    } else {
        Err(ChainError::WrongChain {
            rpc: rpc_url.to_owned(),
            expected,
            actual,
        })
    }
}

/// A new secp256k1 account key, as 32 bytes (always a valid scalar).
pub fn new_account_key() -> [u8; 32] {
    alloy::signers::local::PrivateKeySigner::random()
        .to_bytes()
        .0
}

/// The account a 32-byte secp256k1 key controls.
pub fn account_address(key: &[u8; 32]) -> Result<Address, ChainError> {
    alloy::signers::local::PrivateKeySigner::from_bytes(&B256::from(*key))
        .map(|signer| signer.address())
        .map_err(|e| ChainError::BadKey(e.to_string()))
}

/// The signer for a 32-byte secp256k1 key.
pub fn account_signer(
    key: &[u8; 32],
) -> Result<alloy::signers::local::PrivateKeySigner, ChainError> {
    alloy::signers::local::PrivateKeySigner::from_bytes(&B256::from(*key))
        .map_err(|e| ChainError::BadKey(e.to_string()))
}
