//! The commands of `idlegrid` beyond running a job, each thin (it parses its flags, loads the identity
//! and calls the engine): pool, provide, submit and earnings (`network`), relay (`relay`), the chain
//! ones (`chain`: chain deploy, pool status, wallet, verify-earnings), embed (`embed`) and the
//! OpenAI-compatible endpoint (`serve`).

pub mod chain;
pub mod embed;
pub mod network;
pub mod relay;
pub mod serve;
