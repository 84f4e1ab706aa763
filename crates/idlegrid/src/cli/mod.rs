//! The network commands of `idlegrid`: pool, provide, submit and earnings. Thin: each parses its flags,
//! loads the identity and calls the engine.

pub mod network;
