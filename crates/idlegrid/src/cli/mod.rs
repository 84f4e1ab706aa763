//! The network commands of `idlegrid` (pool, provide, submit, earnings, relay) and the chain ones
//! (chain deploy, pool status, wallet, verify-earnings). Thin: each parses its flags, loads the identity
//! and calls the engine.

pub mod chain;
pub mod network;
pub mod relay;
