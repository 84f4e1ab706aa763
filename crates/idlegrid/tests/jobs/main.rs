//! Running jobs on this machine's GPU (llvmpipe in CI): the executor's behaviour, the example jobs
//! against CPU references, every refusal of a bad job, and the sandboxed worker process.

#[path = "../common/mod.rs"]
mod common;

mod embeddings;
mod engine;
mod examples;
mod refusals;
mod sandbox;
mod watchdog;
