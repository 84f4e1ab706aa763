//! The commands of `idlegrid` beyond running a job: pool, provide, submit and earnings (`network`),
//! embed (`embed`) and the OpenAI-compatible endpoint (`serve`). Thin: each parses its flags,
//! loads the identity and calls the engine.

pub mod embed;
pub mod network;
pub mod serve;
