//! Idlegrid on an EVM chain: the payouts contract's typed bindings (built from the committed artifacts in
//! `contracts/artifacts/`, so Rust and the deployed bytecode cannot drift apart) and a local anvil chain.
//! The pool's chain rail and the provider's on-chain checks build on this crate.

pub mod anvil;
pub mod contracts;
