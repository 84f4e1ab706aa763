//! Idlegrid on an EVM chain: the payouts contract's typed bindings (built from the committed artifacts in
//! `contracts/artifacts/`, so Rust and the deployed bytecode cannot drift apart) and a local anvil chain.
//! The pool's chain rail and the provider's on-chain checks build on this crate.

pub mod anvil;
pub mod contracts;

/// Makes ring the process's TLS crypto provider, before any RPC client is built. In this workspace
/// iroh turns on reqwest's `rustls-no-provider` feature (a build unifies features across its crates),
/// and reqwest then refuses to build even a plain-HTTP client until a provider is installed; alone,
/// this crate's own build would not show it. Calling it again changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
