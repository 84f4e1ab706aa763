//! The commands of `idlegrid` beyond running a job: pool, provide, submit and earnings (`network`),
//! embed (`embed`). Thin: each parses its flags,
//! loads the identity and calls the engine.

pub mod embed;
pub mod network;
