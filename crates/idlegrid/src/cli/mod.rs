//! The network commands of `idlegrid`: pool, provide, submit, earnings and relay. Thin: each parses its flags,
//! loads the identity and calls the engine.

pub mod network;
pub mod relay;
